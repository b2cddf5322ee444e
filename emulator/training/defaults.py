"""CreateTrainingJob's local defaults and its validation: light, so a bad request is refused in milliseconds.

:mod:`emulator.training.plan` builds on this; the CLI calls :func:`validated` before it imports the job kind,
the runner and the Docker client (about 150 ms that a refused request never needs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emulator import constants
from emulator.config import DEFAULT_ROLE_ARN
from emulator.errors import InvalidSpec
from emulator.runtime.session import job_name
from emulator.spec import validate


def with_defaults(request: Mapping[str, Any]) -> dict[str, Any]:
    """Fill what a local run can default (name, role, resources, stopping condition); the rest is the user's."""
    req: dict[str, Any] = json.loads(json.dumps(dict(request), default=str))
    req.setdefault("TrainingJobName", job_name(_image_stem(req)))
    req.setdefault("RoleArn", DEFAULT_ROLE_ARN)
    algo = req.setdefault("AlgorithmSpecification", {})
    algo.setdefault("TrainingInputMode", "File")
    res = req.setdefault("ResourceConfig", {})
    if not res.get("InstanceGroups"):  # a heterogeneous cluster gives each group's type and count
        res.setdefault("InstanceType", constants.DEFAULT_INSTANCE_TYPE)
        res.setdefault("InstanceCount", 1)
    res.setdefault("VolumeSizeInGB", constants.DEFAULT_VOLUME_SIZE_GB)
    req.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", constants.DEFAULT_MAX_RUNTIME_S)
    req.setdefault("OutputDataConfig", {}).setdefault("S3OutputPath", "output")
    return req


def validated(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The request with its defaults, checked against CreateTrainingJob's input shape.

    Raises:
        InvalidSpec: the request does not fit CreateTrainingJob.
    """
    try:
        req = with_defaults(raw)
    except (AttributeError, TypeError):  # a block that is not a mapping: let the model name it
        validate("CreateTrainingJob", raw)
        raise InvalidSpec("invalid CreateTrainingJob request: a block is not a mapping; fix the spec") from None
    validate("CreateTrainingJob", req)
    return req


def _image_stem(req: Mapping[str, Any]) -> str:
    image = str(req.get("AlgorithmSpecification", {}).get("TrainingImage", "training"))
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0] or "training"
