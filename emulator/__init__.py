"""A local SageMaker for bring-your-own-container images.

>>> from emulator import TrainingJob
>>> TrainingJob  # doctest: +ELLIPSIS
<class 'emulator.training.TrainingJob'>
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
    InvalidSpec,
    ModelError,
    ValidationError,
)
from emulator.processing import ProcessingJob
from emulator.training import TrainingJob

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ContainerFailed",
    "DockerUnavailable",
    "EmulatorConfig",
    "EmulatorError",
    "EndpointNotReady",
    "ImageNotFound",
    "InputNotFound",
    "InvalidSpec",
    "ModelError",
    "ProcessingJob",
    "TrainingJob",
    "ValidationError",
]
