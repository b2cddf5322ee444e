"""One configuration object; the environment is read in one place, and only when asked."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from emulator.constants import (
    CHECKPOINT_SYNC_INTERVAL_S,
    SERVING_STOP_GRACE_S,
    STARTUP_TIMEOUT_S,
    TRAINING_STOP_GRACE_S,
)
from emulator.errors import InvalidConfig

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/SageMakerEmulator"
DEFAULT_TRAINING_STOP_GRACE_S = TRAINING_STOP_GRACE_S
DEFAULT_SERVING_STOP_GRACE_S = SERVING_STOP_GRACE_S
DEFAULT_STARTUP_TIMEOUT_S = STARTUP_TIMEOUT_S
#: How often /ping is polled while waiting for readiness.
DEFAULT_PING_INTERVAL_S = 0.02

_ENV_PREFIX = "SM_EMULATOR_"


@dataclass(frozen=True)
class EmulatorConfig:
    """Settings shared by every job kind; the CLI flags and the pytest options build the same object."""

    docker_host: str | None = None
    work_dir: str | None = None
    keep_containers: bool = False
    s3_endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    training_stop_grace_s: float = DEFAULT_TRAINING_STOP_GRACE_S
    serving_stop_grace_s: float = DEFAULT_SERVING_STOP_GRACE_S
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    ping_interval_s: float = DEFAULT_PING_INTERVAL_S
    pull_missing_images: bool = False
    stream_logs: bool = True
    #: How often a running job's checkpoint dir is synced to CheckpointConfig.S3Uri (seconds, more than 0).
    checkpoint_sync_interval_s: float = CHECKPOINT_SYNC_INTERVAL_S
    #: Run ml.p*/ml.g* jobs on the CPU when the engine has no GPUs (else they are refused).
    allow_cpu_for_gpu: bool = False
    #: The engine cannot see this machine's files (inputs travel as volumes): None decides by DOCKER_HOST
    #: (tcp://, ssh://: remote; a unix socket: local), see emulator/runtime/remote.py.
    remote_engine: bool | None = None
    #: Training as root on a local engine with a root image: model/ and output/ are read-write binds of the job's
    #: temp dir, read with no archive call (docs/training.md). False keeps them volumes read through the archive API.
    bind_outputs: bool = True

    def __post_init__(self) -> None:
        for name in ("training_stop_grace_s", "serving_stop_grace_s", "startup_timeout_s", "ping_interval_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise InvalidConfig(f"{name}={value!r}: give a number of seconds, 0 or more")
        interval = self.checkpoint_sync_interval_s
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval < float("inf"):
            raise InvalidConfig(f"checkpoint_sync_interval_s={interval!r}: give a number of seconds, more than 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EmulatorConfig:
        """Build a config from ``SM_EMULATOR_<FIELD>`` variables (plus DOCKER_HOST, AWS_ENDPOINT_URL_S3).

        Keyword overrides that are not None win over the environment.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("DOCKER_HOST"):
            values["docker_host"] = env["DOCKER_HOST"]
        if env.get("AWS_ENDPOINT_URL_S3"):
            values["s3_endpoint_url"] = env["AWS_ENDPOINT_URL_S3"]
        for f in fields(cls):
            raw = env.get(_ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> EmulatorConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


def _parse(name: str, type_name: object, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind.startswith("bool"):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise InvalidConfig(
            f"{_ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.split()[0]}; fix or unset the variable"
        ) from None
    return raw
