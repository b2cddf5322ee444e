"""SageMaker Pipelines, locally: a definition (``definition``), its expressions (``expressions``), the
step executors (``steps``) and the execution that schedules them (``execution``)."""

from emulator.pipelines.definition import SUPPORTED_STEP_TYPES, Parameter, PipelineDefinition
from emulator.pipelines.execution import PipelineExecution, StepState
from emulator.pipelines.steps import DEFAULT_EXECUTORS, StepContext, StepOutcome

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
