"""Processing jobs: CreateProcessingJob in, DescribeProcessingJob out."""

from emulator.processing.job import ProcessingJob, with_defaults

__all__ = ["ProcessingJob", "with_defaults"]
