"""SageMaker Pipelines, locally: a definition (``definition``), its expressions (``expressions``), the
step executors (``steps``) and the execution that schedules them (``execution``)."""

from emulator.pipelines.definition import SUPPORTED_STEP_TYPES, Parameter, PipelineDefinition
from emulator.pipelines.execution import DEFAULT_EXECUTORS, PipelineExecution, StepContext, StepOutcome, StepState

__all__ = [
    "DEFAULT_EXECUTORS",
    "SUPPORTED_STEP_TYPES",
    "Parameter",
    "PipelineDefinition",
    "PipelineExecution",
    "StepContext",
    "StepOutcome",
    "StepState",
]
