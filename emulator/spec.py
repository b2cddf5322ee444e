"""Job specs are SageMaker API requests: load them from YAML/JSON and validate them with botocore's model.

The validator walks the input shape of the operation in the SageMaker service model that botocore ships
(required members, unknown keys, types, enums, lengths, ranges, patterns) and reports every problem with
its path, e.g. ``AlgorithmSpecification.TrainingInputMode: 'Files' is not one of Pipe, File, FastFile``.

Local extension: wherever the API takes an S3 location (a string whose pattern is ``(https|s3)://...``),
a local path is accepted as well.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.loaders
import yaml
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from emulator.errors import InvalidSpec

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
    loader = botocore.loaders.create_loader()
    return ServiceModel(loader.load_service_model(service, "service-2"), service_name=service)


def operation_model(operation: str, service: str = "sagemaker") -> OperationModel:
    """botocore's model of a SageMaker API operation, e.g. ``CreateTrainingJob``."""
    model: OperationModel = _service_model(service).operation_model(operation)
    return model


def validate(operation: str, params: Mapping[str, Any], *, service: str = "sagemaker") -> None:
    """Check ``params`` against the input shape of ``operation``; raise :class:`InvalidSpec` listing every error."""
    shape = operation_model(operation, service).input_shape
    errors: list[str] = []
    if shape is not None:
        _check(shape, params, "", errors)
    if errors:
        shown = errors[:_MAX_ERRORS]
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise InvalidSpec(f"invalid {operation} request: " + "; ".join(shown) + more, errors=errors)


def is_s3_location_shape(shape: Shape) -> bool:
    """True for string shapes that hold an S3 URI (where the emulator also takes local paths)."""
    pattern = str(shape.metadata.get("pattern", ""))
    return shape.type_name == "string" and pattern.lstrip("^").startswith("(https|s3)://")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # Java-only syntax such as \p{...}: skip rather than reject good input
        return None


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    where = path or "request"
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            errors.append(f"{where}: expected a mapping, got {_describe(value)}")
            return
        for name in shape.required_members:
            if name not in value or value[name] is None:
                errors.append(f"{_join(path, name)}: missing (required)")
        for key, item in value.items():
            if key not in shape.members:
                hint = difflib.get_close_matches(str(key), list(shape.members), n=1)
                allowed = f"did you mean {hint[0]!r}?" if hint else "allowed: " + ", ".join(sorted(shape.members))
                errors.append(f"{_join(path, str(key))}: unknown field; {allowed}")
                continue
            if item is not None:
                _check(shape.members[key], item, _join(path, key), errors)
        return
    if isinstance(shape, ListShape):
        if not isinstance(value, list | tuple):
            errors.append(f"{where}: expected a list, got {_describe(value)}")
            return
        _check_size(shape, len(value), where, "items", errors)
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", errors)
        return
    if isinstance(shape, MapShape):
        if not isinstance(value, Mapping):
            errors.append(f"{where}: expected a mapping, got {_describe(value)}")
            return
        _check_size(shape, len(value), where, "entries", errors)
        for key, item in value.items():
            _check(shape.key, key, f"{where} key {key!r}", errors)
            _check(shape.value, item, f"{where}.{key}", errors)
        return
    if kind == "string":
        if not isinstance(value, str):
            fix = f' (quote it: "{value}")' if isinstance(value, int | float | bool) else ""
            errors.append(f"{where}: expected a string, got {_describe(value)}{fix}")
            return
        choices: list[str] = getattr(shape, "enum", None) or []
        if choices and value not in choices:
            hint = difflib.get_close_matches(value, choices, n=1)
            dym = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = (
                ", ".join(choices) if len(choices) <= _MAX_CHOICES else f"{len(choices)} values ({choices[0]}, ...)"
            )
            errors.append(f"{where}: {value!r} is not one of {allowed}{dym}")
            return
        if is_s3_location_shape(shape) and not value.startswith(("s3://", "https://")):
            return  # a local path: checked when the job resolves it
        _check_size(shape, len(value), where, "characters", errors)
        pattern = shape.metadata.get("pattern")
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


def _check_size(shape: Shape, size: int, where: str, unit: str, errors: list[str]) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if lo is not None and size < lo:
        errors.append(f"{where}: {size} {unit}, at least {lo} required")
    if hi is not None and size > hi:
        errors.append(f"{where}: {size} {unit}, at most {hi} allowed")


def _check_range(shape: Shape, value: float, where: str, errors: list[str]) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if lo is not None and value < lo:
        errors.append(f"{where}: {value} is below the minimum {lo}")
    if hi is not None and value > hi:
        errors.append(f"{where}: {value} is above the maximum {hi}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}"
