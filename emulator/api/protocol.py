"""The AWS JSON 1.1 protocol of SageMaker, driven by botocore's service model.

Requests are checked with :func:`emulator.spec.validate` (the same validator the library uses); responses are
cut to the members of the operation's output shape and serialized as botocore's JSON parser reads them
(timestamps as epoch seconds, blobs as base64). Errors are ``{"__type": ..., "message": ...}`` with the status
the platform uses.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from emulator.errors import InvalidSpec
from emulator.spec import operation_model, validate


class ApiError(Exception):
    """Raised by an operation to answer with an AWS error: its code (``__type``), message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation(message: str) -> ApiError:
    """A ValidationException (400): what the platform answers for a bad request and a missing resource."""
    return ApiError("ValidationException", message)


def not_found(kind: str, name: str) -> ApiError:
    """A missing resource, as the SDK expects it: a ValidationException whose message says "Could not find"."""
    return validation(f"Could not find {kind} '{name}'.")


def already_exists(kind: str, arn: str) -> ApiError:
    """Create of a name in use, as the SDK expects it (Pipeline.upsert matches "already exists")."""
    return validation(f"Cannot create a duplicate {kind} ({arn}): it already exists.")


def parse_request(operation: str, body: bytes, service: str = "sagemaker") -> dict[str, Any]:
    """The operation's parameters from a JSON 1.1 body, validated with botocore's model.

    Raises:
        ApiError: not JSON, or not the operation's input shape (ValidationException).
    """
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        raise ApiError("SerializationException", "the request body is not JSON") from None
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    shape = operation_model(operation, service).input_shape
    if shape is not None:
        params = dict(_decode(shape, params))
    try:
        validate(operation, params, service=service)
    except InvalidSpec as exc:
        raise validation(str(exc)) from None
    return params


def serialize_output(operation: str, data: Mapping[str, Any], service: str = "sagemaker") -> bytes:
    """The JSON body of an operation's answer: only the members of its output shape."""
    shape = operation_model(operation, service).output_shape
    if shape is None:
        return b"{}"
    return json.dumps(_encode(shape, data)).encode()


def error_body(error: ApiError) -> bytes:
    """An error's JSON body, as botocore's JSON parser reads it."""
    return json.dumps({"__type": error.code, "message": error.message}).encode()


def _decode(shape: Shape, value: Any) -> Any:
    """Request values as the library takes them: timestamps (epoch numbers) become datetimes."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {k: _decode(shape.members[k], v) if k in shape.members else v for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_decode(shape.member, v) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: _decode(shape.value, v) for k, v in value.items()}
    if shape.type_name == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        from datetime import UTC

        return datetime.fromtimestamp(value, UTC)
    return value


def _encode(shape: Shape, value: Any) -> Any:
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            return None
        out = {}
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                encoded = _encode(member, value[name])
                if encoded is not None:
                    out[name] = encoded
        return out
    if isinstance(shape, ListShape):
        return [_encode(shape.member, v) for v in value] if isinstance(value, list | tuple) else None
    if isinstance(shape, MapShape):
        return {str(k): _encode(shape.value, v) for k, v in value.items()} if isinstance(value, Mapping) else None
    kind = shape.type_name
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value.timestamp()
        return value if isinstance(value, int | float) else None
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    if kind == "boolean":
        return bool(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    return value if isinstance(value, str) else str(value)
