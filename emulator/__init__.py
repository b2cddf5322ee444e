"""A local SageMaker for bring-your-own-container images.

>>> from emulator import TrainingJob
>>> TrainingJob  # doctest: +ELLIPSIS
<class 'emulator.training.job.TrainingJob'>
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from emulator.config import EmulatorConfig
from emulator.errors import (
    ContainerFailed,
    DockerUnavailable,
    EmulatorError,
    EndpointNotReady,
    ImageNotFound,
    InputNotFound,
    Interrupted,
    InvalidSpec,
    ModelError,
    ValidationError,
)

if TYPE_CHECKING:
    from emulator.pipelines import PipelineExecution
    from emulator.processing import ProcessingJob
    from emulator.serving import Endpoint, MultiModelEndpoint
    from emulator.training import TrainingJob
    from emulator.transform import TransformJob
    from emulator.tuning import TuningJob

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: The job kinds, imported on first use (PEP 562): ``python -m emulator`` imports this package before the CLI, and
#: botocore, docker and moto take most of a second to load; a Ctrl-C then must reach the CLI's own handler.
_LAZY = {
    "PipelineExecution": "emulator.pipelines",
    "ProcessingJob": "emulator.processing",
    "Endpoint": "emulator.serving",
    "MultiModelEndpoint": "emulator.serving",
    "TrainingJob": "emulator.training",
    "TransformJob": "emulator.transform",
    "TuningJob": "emulator.tuning",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")


__all__ = [
    "ContainerFailed",
    "DockerUnavailable",
    "EmulatorConfig",
    "EmulatorError",
    "Endpoint",
    "EndpointNotReady",
    "ImageNotFound",
    "InputNotFound",
    "Interrupted",
    "InvalidSpec",
    "ModelError",
    "MultiModelEndpoint",
    "PipelineExecution",
    "ProcessingJob",
    "TrainingJob",
    "TransformJob",
    "TuningJob",
    "ValidationError",
]
