"""Training jobs: CreateTrainingJob in, DescribeTrainingJob out.

``plan`` turns a request into a typed plan (pure), ``job`` runs it on the runtime. The exports are imported
on first use (:mod:`emulator._lazy`): ``emulator.training.plan`` alone does not import the runner.
"""

from typing import TYPE_CHECKING

from emulator._lazy import exports

if TYPE_CHECKING:
    from emulator.training.job import TrainingJob, with_defaults

__all__ = ["TrainingJob", "with_defaults"]
__getattr__ = exports(__name__, {"TrainingJob": "emulator.training.job", "with_defaults": "emulator.training.job"})
