"""CreateModel for the emulator: what a model request says about the one container it runs, and a registry.

``ModelDefinition.from_request`` validates a CreateModel request with botocore's model and refuses what cannot
run locally (model packages); a model of several Containers (an inference pipeline, or Direct multi-container)
keeps each container's own definition in ``containers``. :func:`create_model` remembers models in
this process so that a transform job can name them. :mod:`emulator.serving` re-exports all of it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.errors import InvalidSpec
from emulator.runtime import session as _session
from emulator.spec import load_spec, validate

ModelSource = str | os.PathLike[str] | Mapping[str, Any] | None
"""A model.tar.gz or model dir (local or s3://), a ModelDataSource dict, or a DescribeTrainingJob result."""
_ENV_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: CreateModel allows at most 32 KB of environment across a model's containers.
_MAX_ENV_BYTES = 32 * 1024


@dataclass(frozen=True)
class ModelDefinition:
    """What a CreateModel request says about the one container the emulator runs."""

    name: str
    image: str
    model_data: ModelSource = None
    environment: Mapping[str, str] = field(default_factory=dict)
    network_isolation: bool = False
    hostname: str | None = None
    #: Mode MultiModel: ModelDataUrl is a prefix of model .tar.gz files, loaded per TargetModel (serving.multimodel).
    multi_model: bool = False
    #: MultiModelConfig.ModelCacheSetting Enabled (keep loaded models) or Disabled (unload after each invocation).
    model_cache: bool = True
    #: A multi-container model (CreateModel.Containers, 2-15): each container's own definition, in calling order
    #: (the fields above are the first one's); empty for a one-container model (see serving.instances).
    containers: tuple[ModelDefinition, ...] = ()
    #: InferenceExecutionConfig.Mode of a multi-container model: Serial (an inference pipeline) or Direct.
    execution_mode: str = "Serial"

    @classmethod
    def from_request(cls, request: Mapping[str, Any] | str | Path) -> ModelDefinition:
        """Parse and validate a CreateModel request (dict, or a YAML/JSON file).

        Raises:
            InvalidSpec: the request does not fit CreateModel, or asks for what the emulator cannot run
                (model packages).
        """
        req = load_spec(request)
        req.setdefault("ModelName", _session.job_name("model"))
        validate("CreateModel", req)
        containers = [req["PrimaryContainer"]] if req.get("PrimaryContainer") else list(req.get("Containers") or [])
        if not containers:
            raise InvalidSpec("CreateModel: PrimaryContainer is missing; give PrimaryContainer.Image (what to serve)")
        if len(containers) > 1:
            return _multi_container(req, containers)
        c = containers[0]
        multi_model = c.get("Mode") == "MultiModel"
        if multi_model and not c.get("ModelDataUrl"):
            raise InvalidSpec(
                "PrimaryContainer.ModelDataUrl: a MultiModel container needs the S3 prefix (or local directory) that "
                "holds its model .tar.gz files; give ModelDataUrl"
            )
        if not c.get("Image"):
            raise InvalidSpec("PrimaryContainer.Image: missing; model packages cannot run locally, name the image")
        env = dict(c.get("Environment") or {})
        check_env(env, "PrimaryContainer.Environment")
        source = c.get("ModelDataUrl") or c.get("ModelDataSource")
        return cls(
            name=req["ModelName"],
            image=c["Image"],
            model_data=source,
            environment=env,
            network_isolation=bool(req.get("EnableNetworkIsolation")),
            hostname=c.get("ContainerHostname"),
            multi_model=multi_model,
            model_cache=(c.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled") != "Disabled",
        )


def _multi_container(req: Mapping[str, Any], containers: Sequence[Mapping[str, Any]]) -> ModelDefinition:
    """A model of several containers: each checked as a PrimaryContainer would be, then as a whole."""
    parts: list[ModelDefinition] = []
    for i, c in enumerate(containers):
        one = {"ModelName": req["ModelName"], "PrimaryContainer": c}
        if "EnableNetworkIsolation" in req:
            one["EnableNetworkIsolation"] = req["EnableNetworkIsolation"]
        try:
            parts.append(ModelDefinition.from_request(one))
        except InvalidSpec as exc:
            raise InvalidSpec(str(exc).replace("PrimaryContainer", f"Containers[{i}]")) from None
    mode = str((req.get("InferenceExecutionConfig") or {}).get("Mode", "Serial"))
    names = [p.hostname for p in parts if p.hostname]
    if mode == "Direct" and len(names) < len(parts):
        raise InvalidSpec(
            "CreateModel.Containers: InferenceExecutionConfig Mode Direct needs a ContainerHostname on every "
            "container (InvokeEndpoint's TargetContainerHostname names one); add them"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidSpec(f"CreateModel.Containers: ContainerHostname {twice[0]!r} is used twice; make them unique")
    _check_env_size(sum(_env_bytes(p.environment) for p in parts), "CreateModel.Containers' Environment")
    return dataclasses.replace(parts[0], containers=tuple(parts), execution_mode=mode)


_models: dict[str, ModelDefinition] = {}
_models_lock = threading.Lock()


def create_model(request: Mapping[str, Any] | str | Path) -> dict[str, str]:
    """Like CreateModel: validate the request and remember the model in this process (for TransformJob).

    Raises:
        InvalidSpec: the request is invalid, or a model of that name exists already.
    """
    model = ModelDefinition.from_request(request)
    with _models_lock:
        if model.name in _models:
            raise InvalidSpec(f"model {model.name!r} exists already; delete_model() it first or pick another ModelName")
        _models[model.name] = model
    return {"ModelArn": _session.arn(EmulatorConfig(), "model", model.name)}


def get_model(name: str, models: Mapping[str, Any] | None = None) -> ModelDefinition:
    """A model by name: from ``models`` (name -> CreateModel request or ModelDefinition), else the registry.

    Raises:
        InvalidSpec: no model of that name.
    """
    if models is not None and name in models:
        found = models[name]
        if isinstance(found, ModelDefinition):
            return found
        return ModelDefinition.from_request({"ModelName": name, **found})
    with _models_lock:
        if name in _models:
            return _models[name]
    raise InvalidSpec(f"ModelName {name!r}: no such model; create_model() it first, or pass the image and model data")


def delete_model(name: str) -> None:
    """Like DeleteModel: forget a model (no error if it is unknown)."""
    with _models_lock:
        _models.pop(name, None)


def model_location(source: ModelSource) -> tuple[str | None, bool]:
    """(location, is an uncompressed prefix/dir) of a model source."""
    if source is None or source == "":
        return None, False
    if isinstance(source, Mapping):
        if "ModelArtifacts" in source:
            status = source.get("TrainingJobStatus", "Completed")
            if status != "Completed":
                raise InvalidSpec(
                    f"training job {source.get('TrainingJobName', '?')} is {status}; only a Completed "
                    "job's model can be served"
                )
            return str(source["ModelArtifacts"]["S3ModelArtifacts"]), False
        ds = source.get("S3DataSource", source)
        kind, compression = ds.get("S3DataType"), ds.get("CompressionType")
        if kind == "S3Prefix" and compression == "None":
            return str(ds["S3Uri"]), True
        if kind == "S3Object" and compression == "Gzip":
            return str(ds["S3Uri"]), False
        raise InvalidSpec(
            f"ModelDataSource {kind}/{compression} is not emulated; use S3Object with Gzip "
            "(a model.tar.gz) or S3Prefix with None (a directory)"
        )
    return os.fspath(source), False


def local_dir(location: str) -> Path:
    path = Path(location.removeprefix("file://")).expanduser()
    if not path.is_dir():
        raise InvalidSpec(f"model {location!r} is an S3Prefix model but not a directory; pass the model directory")
    return path


def check_env(env: Mapping[str, Any], where: str) -> None:
    bad = [k for k, v in env.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise InvalidSpec(f"{where}: values must be strings, not {', '.join(map(repr, bad[:5]))}; quote them")
    names = [k for k in env if not _ENV_NAME.fullmatch(k)]
    if names:
        raise InvalidSpec(
            f"{where}: {names[0]!r} is not a variable name (letters, digits, '_'; not starting with a digit); rename it"
        )
    _check_env_size(_env_bytes(env), where)


def _env_bytes(env: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in env.items())


def _check_env_size(size: int, where: str) -> None:
    if size > _MAX_ENV_BYTES:
        raise InvalidSpec(
            f"{where}: {size} bytes of environment, over CreateModel's 32 KB; pass less (e.g. a file "
            "in the model archive)"
        )
