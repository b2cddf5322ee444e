"""Expressions and conditions of a SageMaker Pipelines definition, evaluated locally.

The JSON the SageMaker SDK emits (``pipeline.definition()``) holds, anywhere inside a step's ``Arguments``:

* ``{"Get": "Parameters.<name>"}``, ``{"Get": "Execution.<variable>"}`` and
  ``{"Get": "Steps.<step>.<path>"}`` where ``<path>`` walks the step's Describe* result with the SDK's
  syntax: ``ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri`` (lists are indexed by an item's name,
  e.g. ``OutputName`` or ``MetricName``, or by position: ``[0]``);
* ``{"Std:Join": {"On": "/", "Values": [...]}}``;
* ``{"Std:JsonGet": {"PropertyFile": {"Get": "Steps.<step>.PropertyFiles.<name>"}, "Path": "a.b[0]"}}``
  (or ``"S3Uri": ...`` instead of ``PropertyFile``).

Conditions (a Condition step's ``Conditions``) are ``{"Type": "Equals" | "GreaterThan" |
"GreaterThanOrEqualTo" | "LessThan" | "LessThanOrEqualTo", "LeftValue", "RightValue"}``,
``{"Type": "In", "QueryValue", "Values"}``, ``{"Type": "Not", "Expression"}`` and
``{"Type": "Or", "Conditions"}``.

>>> scope = Scope(parameters={"Bucket": "b"}, execution={"PipelineExecutionId": "abc"})
>>> resolve({"Std:Join": {"On": "/", "Values": ["s3:/", {"Get": "Parameters.Bucket"},
...          {"Get": "Execution.PipelineExecutionId"}]}}, scope)
's3://b/abc'
>>> get_path({"Outputs": [{"OutputName": "train", "S3Uri": "s3://b/t"}]}, "Outputs['train'].S3Uri")
's3://b/t'
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from emulator.errors import InvalidSpec

EXPRESSION_KEYS = frozenset({"Get", "Std:Join", "Std:JsonGet"})
EXECUTION_VARIABLES = frozenset(
    {
        "PipelineExecutionId",
        "PipelineExecutionArn",
        "PipelineName",
        "PipelineArn",
        "StartDateTime",
        "CurrentDateTime",
        "TrainingJobName",
        "ProcessingJobName",
    }
)
COMPARISONS = frozenset({"Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"})
CONDITION_TYPES = COMPARISONS | {"In", "Not", "Or"}

_TOKEN = re.compile(r"""\.?([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


class ExpressionError(InvalidSpec):
    """Raised when an expression cannot be evaluated (unknown name, missing property, unreadable file)."""


@dataclass
class Scope:
    """What expressions can see: parameter values, execution variables, finished steps' properties."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: (step name, property file name) -> the parsed JSON document.
    property_file: Callable[[str, str], Any] | None = None
    #: location (s3:// or local path) -> the parsed JSON document, for ``Std:JsonGet`` with ``S3Uri``.
    read_json: Callable[[str], Any] | None = None


def is_expression(value: Any) -> bool:
    """True for ``{"Get": ...}``, ``{"Std:Join": ...}`` and ``{"Std:JsonGet": ...}``."""
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def iter_gets(value: Any) -> Iterator[str]:
    """Every ``Get`` path inside ``value`` (nested in Join and JsonGet too)."""
    if isinstance(value, Mapping):
        if set(value) == {"Get"} and isinstance(value["Get"], str):
            yield value["Get"]
            return
        for item in value.values():
            yield from iter_gets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_gets(item)


def step_of(path: str) -> str | None:
    """``Steps.Train.ModelArtifacts.S3ModelArtifacts`` -> ``Train``; None for other paths."""
    if not path.startswith("Steps."):
        return None
    return re.split(r"[.\[]", path[len("Steps.") :], maxsplit=1)[0] or None


def referenced_steps(value: Any) -> set[str]:
    """The names of the steps that ``value``'s expressions read (the implicit DAG edges)."""
    return {name for name in (step_of(p) for p in iter_gets(value)) if name}


# -- evaluation ---------------------------------------------------------------------------------------------
def resolve(value: Any, scope: Scope) -> Any:
    """``value`` with every expression replaced by its value (containers are copied, never changed)."""
    if isinstance(value, Mapping):
        if is_expression(value):
            return _evaluate(value, scope)
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, scope) for v in value]
    return value


def _evaluate(expr: Mapping[str, Any], scope: Scope) -> Any:
    key, body = next(iter(expr.items()))
    if key == "Get":
        return _get(str(body), scope)
    if key == "Std:Join":
        if not isinstance(body, Mapping) or not isinstance(body.get("Values", []), list):
            raise ExpressionError(f'Std:Join: expected {{"On": "/", "Values": [...]}}, got {body!r}')
        # YAML 1.1 (PyYAML) reads an unquoted On as the boolean true: take that key as "On" too.
        on = body.get("On", body.get(True, ""))
        return str(on).join(to_text(resolve(v, scope)) for v in body.get("Values", []))
    return _json_get(body, scope)


def _get(path: str, scope: Scope) -> Any:
    head, _, rest = path.partition(".")
    if head == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"Get {path}: no parameter {rest!r}; declare it under Parameters")
        return scope.parameters[rest]
    if head == "Execution":
        if rest not in scope.execution:
            known = ", ".join(sorted(scope.execution)) or "none yet"
            raise ExpressionError(f"Get {path}: unknown execution variable {rest!r}; known: {known}")
        return scope.execution[rest]
    step = step_of(path)
    if head == "Steps" and step:
        if step not in scope.steps:
            raise ExpressionError(f"Get {path}: step {step!r} has not run (yet); add it to DependsOn or fix the name")
        sub = rest[len(step) :].lstrip(".")
        return get_path(scope.steps[step], sub, where=f"Get {path}") if sub else scope.steps[step]
    raise ExpressionError(f"Get {path}: expected Parameters.<name>, Execution.<variable> or Steps.<step>.<path>")


def _json_get(body: Any, scope: Scope) -> Any:
    if not isinstance(body, Mapping) or "Path" not in body:
        raise ExpressionError(f'Std:JsonGet: expected {{"PropertyFile": ..., "Path": ...}}, got {body!r}')
    source = body.get("PropertyFile")
    if source is not None:
        ref = source.get("Get", "") if isinstance(source, Mapping) else ""
        match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", str(ref))
        if not match or scope.property_file is None:
            raise ExpressionError(
                f"Std:JsonGet: PropertyFile must be {{'Get': 'Steps.<step>.PropertyFiles.<name>'}}, got {source!r}"
            )
        document = scope.property_file(match.group(1), match.group(2))
        where = f"Std:JsonGet {ref} Path {body['Path']!r}"
    elif "S3Uri" in body and scope.read_json is not None:
        uri = to_text(resolve(body["S3Uri"], scope))
        document = scope.read_json(uri)
        where = f"Std:JsonGet {uri} Path {body['Path']!r}"
    else:
        raise ExpressionError("Std:JsonGet: give PropertyFile (or S3Uri) and Path")
    return json_path(document, str(body["Path"]), where=where)


def get_path(root: Any, path: str, *, where: str = "") -> Any:
    """Walk ``root`` along an SDK property path (``A.B['name'].C[0]``); lists are indexed by an item's name."""
    node = root
    walked = ""
    for name, index, quoted, dquoted in _tokens(path, where):
        key = quoted if quoted is not None else dquoted
        if name is not None:
            node = _member(node, name, walked, where)
            walked = f"{walked}.{name}" if walked else name
        elif index is not None:
            node = _item(node, int(index), walked, where)
            walked += f"[{index}]"
        else:
            node = _named(node, str(key), walked, where)
            walked += f"['{key}']"
    return node


def _tokens(path: str, where: str) -> list[tuple[str | None, str | None, str | None, str | None]]:
    tokens = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"{where}: cannot parse {path[pos:]!r} in the path {path!r}")
        name, index, quoted, dquoted = match.groups()
        tokens.append((name, index, quoted, dquoted))
        pos = match.end()
    return tokens


def _member(node: Any, name: str, walked: str, where: str) -> Any:
    if isinstance(node, Mapping) and name in node:
        return node[name]
    known = ", ".join(sorted(map(str, node))) if isinstance(node, Mapping) else type(node).__name__
    raise ExpressionError(f"{where}: no {name!r} at {walked or 'the top'} (there: {known})")


def _item(node: Any, index: int, walked: str, where: str) -> Any:
    if isinstance(node, list) and -len(node) <= index < len(node):
        return node[index]
    size = len(node) if isinstance(node, list) else "not a list"
    raise ExpressionError(f"{where}: index [{index}] is out of range at {walked or 'the top'} ({size})")


def _named(node: Any, key: str, walked: str, where: str) -> Any:
    if isinstance(node, Mapping):
        if key in node:
            return node[key]
        raise ExpressionError(f"{where}: no key {key!r} at {walked} (there: {', '.join(sorted(map(str, node)))})")
    if isinstance(node, list):
        for item in node:
            # Lists are keyed by their items' *Name member: OutputName, MetricName, ChannelName, InputName ...
            if isinstance(item, Mapping) and any(k.endswith("Name") and v == key for k, v in item.items()):
                return item
        names = [v for item in node if isinstance(item, Mapping) for k, v in item.items() if k.endswith("Name")]
        raise ExpressionError(f"{where}: no item named {key!r} in {walked} (names there: {names})")
    raise ExpressionError(f"{where}: cannot index {type(node).__name__} at {walked} by {key!r}")


def json_path(document: Any, path: str, *, where: str = "") -> Any:
    """The value at a JsonGet path (``metrics.accuracy.value``, ``$.a[0]``, ``a['b c']``)."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    return get_path(document, text.lstrip("."), where=where or f"JsonGet {path!r}") if text else document


def to_text(value: Any) -> str:
    """A value as ``Std:Join`` writes it (JSON spelling for booleans and null)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping | list):
        return json.dumps(value, default=str)
    return str(value)


# -- conditions ---------------------------------------------------------------------------------------------
def evaluate_conditions(conditions: list[Any], scope: Scope | None = None) -> bool:
    """True when every condition holds (the Condition step's ``Outcome``)."""
    return all(evaluate_condition(c, scope or Scope()) for c in conditions)


def evaluate_condition(condition: Any, scope: Scope) -> bool:
    """One condition: a comparison, In, Not or Or (values may still be expressions)."""
    if not isinstance(condition, Mapping) or condition.get("Type") not in CONDITION_TYPES:
        kind = condition.get("Type") if isinstance(condition, Mapping) else condition
        raise ExpressionError(f"condition type {kind!r} is not one of {', '.join(sorted(CONDITION_TYPES))}")
    kind = condition["Type"]
    if kind == "Not":
        inner = condition.get("Expression", condition.get("Condition"))
        return not evaluate_condition(inner, scope)
    if kind == "Or":
        return any(evaluate_condition(c, scope) for c in condition.get("Conditions", []))
    if kind == "In":
        query = resolve(condition.get("QueryValue"), scope)
        return any(_equal(query, resolve(v, scope)) for v in condition.get("Values", []))
    left, right = resolve(condition.get("LeftValue"), scope), resolve(condition.get("RightValue"), scope)
    if kind == "Equals":
        return _equal(left, right)
    a, b = _number(left, kind), _number(right, kind)
    return {
        "GreaterThan": a > b,
        "GreaterThanOrEqualTo": a >= b,
        "LessThan": a < b,
        "LessThanOrEqualTo": a <= b,
    }[kind]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return to_text(a).lower() == to_text(b).lower()
    if isinstance(a, int | float) or isinstance(b, int | float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _number(value: Any, kind: str) -> float:
    if isinstance(value, bool):
        raise ExpressionError(f"{kind}: cannot compare the boolean {value} by size; use Equals")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExpressionError(f"{kind}: {value!r} is not a number; {kind} compares numbers") from None


# -- arguments against the API's shapes ---------------------------------------------------------------------
def conform(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Resolved Arguments fitted to the API's types, as the service does when it substitutes values:
    numbers and booleans become strings where the API takes a string (e.g. HyperParameters), numeric
    strings become numbers where it takes a number."""
    from emulator.spec import operation_model

    shape = operation_model(operation).input_shape
    if shape is None:  # every Create* operation has an input; a None here is a wrong operation name
        raise InvalidSpec(f"{operation} takes no request")
    fitted: dict[str, Any] = _conform(shape, params)
    return fitted


def _conform(shape: Shape, value: Any) -> Any:
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        return {k: _conform(shape.members[k], v) if k in shape.members else v for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_conform(shape.member, v) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, Mapping):
        return {k: _conform(shape.value, v) for k, v in value.items()}
    kind = shape.type_name
    if kind == "string" and isinstance(value, bool | int | float):
        return to_text(value)
    if kind in ("integer", "long") and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    if kind in ("integer", "long") and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind in ("float", "double") and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def static_errors(operation: str, arguments: Mapping[str, Any]) -> list[str]:
    """What botocore's model says is wrong with ``arguments`` before any expression is evaluated.

    Expressions are left out of the check (their values are known only at run time, and are checked then).
    """
    from emulator.spec import validate

    holes: list[str] = []
    try:
        validate(operation, _holes(arguments, "", holes))
    except InvalidSpec as exc:
        return [e for e in exc.errors if not any(e.startswith((h + ":", h + ".", h + "[")) for h in holes)]
    return []


def _holes(value: Any, path: str, holes: list[str]) -> Any:
    """``value`` with each expression replaced by None; their paths (as the validator writes them) go to holes."""
    if is_expression(value):
        holes.append(path or "request")
        return None
    if isinstance(value, Mapping):
        return {k: _holes(v, f"{path}.{k}" if path else str(k), holes) for k, v in value.items()}
    if isinstance(value, list):
        return [_holes(v, f"{path}[{i}]", holes) for i, v in enumerate(value)]
    return value
