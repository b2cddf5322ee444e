"""Training jobs: CreateTrainingJob in, DescribeTrainingJob out.

``plan`` turns a request into a typed plan (pure), ``job`` runs it on the runtime.
"""

from emulator.training.job import TrainingJob, with_defaults

__all__ = ["TrainingJob", "with_defaults"]
