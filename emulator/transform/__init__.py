"""Batch transform: CreateTransformJob in, DescribeTransformJob out.

``objects`` lists input objects and publishes outputs, ``records`` splits and assembles records,
``dataprocessing`` applies DataProcessing's filters, ``settings`` resolves the batch settings with the
container's /execution-parameters, ``job`` runs it all through one serving container.
"""

from typing import TYPE_CHECKING

from emulator._lazy import exports

if TYPE_CHECKING:
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
# Imported on first use (emulator._lazy).
__getattr__ = exports(
    __name__,
    {
        **dict.fromkeys(("FileResult", "TransformJob", "with_defaults"), "emulator.transform.job"),
        **dict.fromkeys(("FileProgress", "ProgressPrinter"), "emulator.transform.progress"),
        **dict.fromkeys(("BatchSettings", "BatchSettingsError", "resolve_settings"), "emulator.transform.settings"),
    },
)
