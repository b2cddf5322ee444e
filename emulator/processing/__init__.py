"""Processing jobs: CreateProcessingJob in, DescribeProcessingJob out.

The exports are imported on first use (:mod:`emulator._lazy`).
"""

from typing import TYPE_CHECKING

from emulator._lazy import exports

if TYPE_CHECKING:
    from emulator.processing.job import ProcessingJob, with_defaults

__all__ = ["ProcessingJob", "with_defaults"]
__getattr__ = exports(
    __name__, {"ProcessingJob": "emulator.processing.job", "with_defaults": "emulator.processing.job"}
)
