"""Batch transform: CreateTransformJob in, DescribeTransformJob out.

``objects`` lists input objects and publishes outputs, ``records`` splits and assembles records,
``dataprocessing`` applies DataProcessing's filters, ``settings`` resolves the batch settings with the
container's /execution-parameters, ``job`` runs it all through one serving container.
"""

from emulator.transform.job import FileResult, TransformJob, with_defaults
from emulator.transform.progress import FileProgress, ProgressPrinter
from emulator.transform.settings import BatchSettings, BatchSettingsError, resolve_settings

__all__ = [
    "BatchSettings",
    "BatchSettingsError",
    "FileProgress",
    "FileResult",
    "ProgressPrinter",
    "TransformJob",
    "resolve_settings",
    "with_defaults",
]
