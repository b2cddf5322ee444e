"""A local SageMaker for bring-your-own-container images.

>>> from emulator import TrainingJob
>>> TrainingJob  # doctest: +ELLIPSIS
<class 'emulator.training.job.TrainingJob'>
"""

from __future__ import annotations

import logging

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
from emulator.pipelines import PipelineExecution
from emulator.processing import ProcessingJob
from emulator.serving import Endpoint
from emulator.training import TrainingJob
from emulator.transform import TransformJob

logging.getLogger(__name__).addHandler(logging.NullHandler())

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
    "PipelineExecution",
    "ProcessingJob",
    "TrainingJob",
    "TransformJob",
    "ValidationError",
]
