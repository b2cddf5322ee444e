"""Job specs are SageMaker API requests: load them from YAML/JSON and validate them with botocore's model.

The validator walks the input shape of the operation in the SageMaker service model that botocore ships
(required members, unknown keys, types, enums, lengths, ranges, patterns) and reports every problem with
its path, e.g. ``AlgorithmSpecification.TrainingInputMode: 'Files' is not one of Pipe, File, FastFile``.

Local extension: wherever the API takes an S3 location (a string whose pattern is ``(https|s3)://...``),
a local path is accepted as well.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import gzip
import importlib.util
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.errors import InvalidSpec

if TYPE_CHECKING:
    from botocore.model import OperationModel, Shape

_MAX_ERRORS = 20
#: An enum longer than this is not listed in full (instance types: hundreds).
_MAX_CHOICES = 12


def load_spec(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A spec as a dict: ``source`` is a dict already, or the path of a YAML or JSON file."""
    if isinstance(source, Mapping):
        return dict(source)
    if not isinstance(source, str | Path):
        raise InvalidSpec(
            f"a request must be a mapping or the path of a YAML or JSON file, not {type(source).__name__}"
        )
    path = Path(source)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise InvalidSpec(f"spec file {str(path)!r} {what}; pass the path of a YAML or JSON request")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSpec(
            f"spec file {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise InvalidSpec(
            f"spec file {str(path)!r} cannot be read ({exc.strerror}); fix its permissions or pass another file"
        ) from None
    import yaml  # here: ~20-50 ms of imports a command without a YAML spec does not need

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidSpec(
            f"spec file {str(path)!r} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
            f"{' '.join(str(exc).split())}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidSpec(f"spec file {str(path)!r} must hold a mapping (the API request), not {type(data).__name__}")
    return data


@functools.cache
def _service_model(service: str = "sagemaker") -> Any:
    # Straight from botocore's data files: no session, so no AWS_PROFILE or config file is read (a profile that
    # does not exist must not break a purely local command).
    import botocore.loaders
    from botocore.model import ServiceModel

    loader = botocore.loaders.create_loader()
    return ServiceModel(loader.load_service_model(service, "service-2"), service_name=service)


def operation_model(operation: str, service: str = "sagemaker") -> OperationModel:
    """botocore's model of a SageMaker API operation, e.g. ``CreateTrainingJob``."""
    model: OperationModel = _service_model(service).operation_model(operation)
    return model


def validate(operation: str, params: Mapping[str, Any], *, service: str = "sagemaker") -> None:
    """Check ``params`` against the input shape of ``operation``; raise :class:`InvalidSpec` listing every error."""
    root, shapes = _input_shapes(operation, service)
    errors: list[str] = []
    if root is not None:
        _check(shapes, shapes[root], params, "", errors)
    if errors:
        shown = errors[:_MAX_ERRORS]
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise InvalidSpec(f"invalid {operation} request: " + "; ".join(shown) + more, errors=errors)


def is_s3_location_shape(shape: Shape) -> bool:
    """True for string shapes that hold an S3 URI (where the emulator also takes local paths)."""
    return shape.type_name == "string" and _is_s3_pattern(shape.metadata.get("pattern"))


def _is_s3_pattern(pattern: object) -> bool:
    return str(pattern or "").lstrip("^").startswith("(https|s3)://")


# ---- the trimmed, cached service model -------------------------------------------------------------------
# Validation needs one operation's input shapes, not botocore: importing botocore.model and loading the whole
# SageMaker model (3,400 shapes) take ~0.15-0.25 s, paid by every CLI command. The shapes an operation's input
# reaches are written once per botocore data file to a small JSON file in the user's cache dir and read from it.


@functools.cache
def _input_shapes(operation: str, service: str = "sagemaker") -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The name of ``operation``'s input shape (None: it takes no input) and the shapes it reaches, as raw JSON."""
    source = _model_file(service)
    stat = source.stat()
    cache = _CACHE_DIR / f"{service}-{operation}-{stat.st_size}-{stat.st_mtime_ns}.json"
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        return cached["root"], cached["shapes"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as fh:
        model = json.loads(fh.read())
    if operation not in model["operations"]:
        raise InvalidSpec(f"{service} has no operation {operation!r}")
    root = model["operations"][operation].get("input", {}).get("shape")
    shapes: dict[str, dict[str, Any]] = {}
    todo = [root] if root else []
    while todo:
        name = todo.pop()
        if name in shapes:
            continue
        shapes[name] = shape = model["shapes"][name]
        refs = [*shape.get("members", {}).values(), *(shape[k] for k in ("member", "key", "value") if k in shape)]
        todo += [ref["shape"] for ref in refs]
    with contextlib.suppress(OSError):  # no cache dir (read-only home): the next process reads the model again
        _CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"root": root, "shapes": shapes}), encoding="utf-8")
        os.replace(tmp, cache)
    return root, shapes


#: Where the trimmed models are kept (one small file per operation and botocore data file).
_CACHE_DIR = Path.home() / ".cache" / "sagemaker-emulator" / "service-models"


def _model_file(service: str) -> Path:
    """botocore's service-2.json(.gz) for ``service``, newest API version, found without importing botocore."""
    spec = importlib.util.find_spec("botocore")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for base in locations:
        versions = sorted((Path(base) / "data" / service).glob("*/service-2.json*"), reverse=True)
        if versions:
            return versions[0]
    raise InvalidSpec(f"botocore's model of {service} is not installed; reinstall botocore")


def _check(shapes: Mapping[str, Any], shape: Mapping[str, Any], value: Any, path: str, errors: list[str]) -> None:
    where = path or "request"
    kind = shape.get("type")
    if kind == "structure":
        if not isinstance(value, Mapping):
            errors.append(f"{where}: expected a mapping, got {_describe(value)}")
            return
        members: Mapping[str, Any] = shape.get("members", {})
        for name in shape.get("required", []):
            if name not in value or value[name] is None:
                errors.append(f"{_join(path, name)}: missing (required)")
        for key, item in value.items():
            if key not in members:
                hint = difflib.get_close_matches(str(key), list(members), n=1)
                allowed = f"did you mean {hint[0]!r}?" if hint else "allowed: " + ", ".join(sorted(members))
                errors.append(f"{_join(path, str(key))}: unknown field; {allowed}")
                continue
            if item is not None:
                _check(shapes, shapes[members[key]["shape"]], item, _join(path, key), errors)
        return
    if kind == "list":
        if not isinstance(value, list | tuple):
            errors.append(f"{where}: expected a list, got {_describe(value)}")
            return
        _check_size(shape, len(value), where, "items", errors)
        for i, item in enumerate(value):
            _check(shapes, shapes[shape["member"]["shape"]], item, f"{path}[{i}]", errors)
        return
    if kind == "map":
        if not isinstance(value, Mapping):
            errors.append(f"{where}: expected a mapping, got {_describe(value)}")
            return
        _check_size(shape, len(value), where, "entries", errors)
        for key, item in value.items():
            _check(shapes, shapes[shape["key"]["shape"]], key, f"{where} key {key!r}", errors)
            _check(shapes, shapes[shape["value"]["shape"]], item, f"{where}.{key}", errors)
        return
    if kind == "string":
        if not isinstance(value, str):
            fix = f' (quote it: "{value}")' if isinstance(value, int | float | bool) else ""
            errors.append(f"{where}: expected a string, got {_describe(value)}{fix}")
            return
        choices: list[str] = shape.get("enum") or []
        if choices and value not in choices:
            hint = difflib.get_close_matches(value, choices, n=1)
            dym = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = (
                ", ".join(choices) if len(choices) <= _MAX_CHOICES else f"{len(choices)} values ({choices[0]}, ...)"
            )
            errors.append(f"{where}: {value!r} is not one of {allowed}{dym}")
            return
        pattern = shape.get("pattern")
        if _is_s3_pattern(pattern) and not value.startswith(("s3://", "https://")):
            return  # a local path: checked when the job resolves it
        _check_size(shape, len(value), where, "characters", errors)
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and value and not compiled.fullmatch(value):
            errors.append(f"{where}: {value!r} does not match the pattern {pattern}")
        return
    if kind in {"integer", "long"}:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: expected an integer, got {_describe(value)}")
            return
        _check_range(shape, value, where, errors)
        return
    if kind in {"float", "double"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{where}: expected a number, got {_describe(value)}")
            return
        _check_range(shape, value, where, errors)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected true or false, got {_describe(value)}")
        return
    if kind == "timestamp":
        if not isinstance(value, datetime | str | int | float):
            errors.append(f"{where}: expected a timestamp, got {_describe(value)}")
        return
    if kind == "blob" and not isinstance(value, bytes | bytearray | str):
        errors.append(f"{where}: expected bytes, got {_describe(value)}")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # Java-only syntax such as \p{...}: skip rather than reject good input
        return None


def _check_size(shape: Mapping[str, Any], size: int, where: str, unit: str, errors: list[str]) -> None:
    lo, hi = shape.get("min"), shape.get("max")
    if lo is not None and size < lo:
        errors.append(f"{where}: {size} {unit}, at least {lo} required")
    if hi is not None and size > hi:
        errors.append(f"{where}: {size} {unit}, at most {hi} allowed")


def _check_range(shape: Mapping[str, Any], value: float, where: str, errors: list[str]) -> None:
    lo, hi = shape.get("min"), shape.get("max")
    if lo is not None and value < lo:
        errors.append(f"{where}: {value} is below the minimum {lo}")
    if hi is not None and value > hi:
        errors.append(f"{where}: {value} is above the maximum {hi}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}"
