"""A pipeline definition, parsed and checked before anything runs.

The JSON that the SageMaker SDK's ``pipeline.definition()`` emits (or the same document as YAML): parameters
with their types, the steps (those nested in a Condition's IfSteps/ElseSteps included), and the DAG that
data references (``Get``) and ``DependsOn`` make. Checked up front: step types, names, references,
property files, cycles, and each step's Arguments against botocore's model of its Create* request.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.errors import InvalidSpec
from emulator.pipelines.expressions import (
    EXECUTION_VARIABLES,
    iter_gets,
    referenced_steps,
    static_errors,
    step_of,
    to_text,
)
from emulator.spec import load_spec

logger = logging.getLogger(__name__)

SUPPORTED_STEP_TYPES = ("Processing", "Training", "Tuning", "Transform", "Model", "Condition", "Fail")
_HINTS = {
    "RegisterModel": "the Model Registry is not emulated; for a local run use a Model step (model.create())",
    "Lambda": "Lambda functions are not emulated",
    "Callback": "callbacks need SQS and are not emulated",
}
#: Step type -> (Create* operation, the request's name field).
OPERATIONS = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "Model": ("CreateModel", "ModelName"),
}


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter: ``{"Name", "Type": String|Integer|Float|Boolean, "DefaultValue"}``."""

    name: str
    type: str
    default: Any = None
    has_default: bool = False
    enum_values: tuple[str, ...] = ()

    def parse(self, value: Any) -> Any:
        """``value`` (a command-line string or a Python value) typed as the parameter's Type.

        Raises:
            InvalidSpec: the value does not fit the type (or the EnumValues).
        """
        try:
            typed = _typed(self.type, value)
        except (TypeError, ValueError):
            raise InvalidSpec(
                f"parameter {self.name}: {value!r} is not a valid {self.type}; "
                f"pass e.g. {self.name}={_EXAMPLES[self.type]}"
            ) from None
        if self.enum_values and typed not in self.enum_values:
            raise InvalidSpec(f"parameter {self.name}: {typed!r} is not one of {', '.join(self.enum_values)}")
        return typed


_EXAMPLES = {"String": "text", "Integer": "3", "Float": "0.5", "Boolean": "true"}


def _typed(kind: str, value: Any) -> Any:
    if kind == "String":
        return value if isinstance(value, str) else to_text(value)
    if kind == "Boolean":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "false"):
            return str(value).strip().lower() == "true"
        raise ValueError(value)
    if isinstance(value, bool):
        raise ValueError(value)
    if kind == "Integer":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value) if not isinstance(value, str) else int(value.strip())
    return float(value)


@dataclass
class StepDef:
    """One step of the definition (steps nested in a Condition's branches included)."""

    name: str
    type: str
    arguments: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    display_name: str | None = None
    description: str | None = None
    property_files: tuple[Mapping[str, Any], ...] = ()
    #: (condition step, outcome that runs this step) for steps in IfSteps (True) / ElseSteps (False).
    branch: tuple[str, bool] | None = None
    upstream: set[str] = field(default_factory=set)


class PipelineDefinition:
    """A checked pipeline definition: parameters, steps and their dependencies."""

    def __init__(self, document: Mapping[str, Any], *, name: str = "local-pipeline") -> None:
        self.document = dict(document)
        self.name = name
        if not isinstance(self.document.get("Steps"), list) or not self.document["Steps"]:
            raise InvalidSpec("pipeline definition: 'Steps' must be a non-empty list of steps")
        self.parameters = {
            p.name: p for p in (_parameter(raw, i) for i, raw in enumerate(self.document.get("Parameters") or []))
        }
        self.steps: dict[str, StepDef] = {}
        self._pending_refs: list[tuple[str, tuple[str, bool], str]] = []
        self._collect(self.document["Steps"], "Steps", None)
        self._link()
        self.order = self._topological_order()
        self._check_arguments()
        parallelism = self.document.get("ParallelismConfiguration") or {}
        self.max_parallel: int | None = parallelism.get("MaxParallelExecutionSteps")

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any], *, name: str | None = None) -> PipelineDefinition:
        """From a dict, the JSON text ``pipeline.definition()`` returns, or a .json/.yaml file."""
        if isinstance(source, str) and source.lstrip().startswith("{"):
            try:
                return cls(json.loads(source), name=name or "local-pipeline")
            except json.JSONDecodeError as exc:
                raise InvalidSpec(f"pipeline definition is not valid JSON: {exc}") from None
        document = load_spec(source)
        stem = Path(source).stem if isinstance(source, str | Path) else "local-pipeline"
        return cls(document, name=name or re.sub(r"[^A-Za-z0-9-]", "-", stem))

    def parameter_values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every parameter's value: the override (typed by the parameter's Type), else its default.

        Raises:
            InvalidSpec: an unknown name, a value that does not fit the type, or a parameter with no value.
        """
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.parameters))
        if unknown:
            known = ", ".join(self.parameters) or "none"
            raise InvalidSpec(f"unknown parameter {unknown[0]!r}; this pipeline's parameters are: {known}")
        values = {}
        for p in self.parameters.values():
            if p.name in overrides:
                values[p.name] = p.parse(overrides[p.name])
            elif p.has_default:
                values[p.name] = p.parse(p.default)
            else:
                raise InvalidSpec(f"parameter {p.name} has no DefaultValue; pass --param {p.name}=VALUE")
        return values

    # -- parsing and checks -------------------------------------------------------------------------------
    def _collect(self, raw_steps: Any, where: str, branch: tuple[str, bool] | None) -> None:
        if not isinstance(raw_steps, list):
            raise InvalidSpec(f"{where}: expected a list of steps")
        for i, raw in enumerate(raw_steps):
            if isinstance(raw, str) and branch is not None:
                self._pending_refs.append((raw, branch, f"{where}[{i}]"))
                continue
            step = _step(raw, f"{where}[{i}]", branch)
            if step.name in self.steps:
                raise InvalidSpec(f"{where}[{i}]: a second step named {step.name!r}; step names must be unique")
            self.steps[step.name] = step
            if step.type == "Condition":
                args = raw["Arguments"]
                self._collect(args.get("IfSteps") or [], f"step {step.name} IfSteps", (step.name, True))
                self._collect(args.get("ElseSteps") or [], f"step {step.name} ElseSteps", (step.name, False))

    def _link(self) -> None:
        for ref, branch, where in self._pending_refs:  # IfSteps/ElseSteps that name a top-level step
            if ref not in self.steps:
                raise InvalidSpec(f"{where}: no step named {ref!r}")
            if self.steps[ref].branch is not None:
                raise InvalidSpec(f"{where}: step {ref!r} is in two condition branches; a step can be in only one")
            self.steps[ref].branch = branch
        for step in self.steps.values():
            self._check_references(step)
            step.upstream = set(step.depends_on) | referenced_steps(step.arguments)
            if step.branch:
                step.upstream.add(step.branch[0])

    def _check_references(self, step: StepDef) -> None:
        where = f"step {step.name}"
        for dep in step.depends_on:
            if dep not in self.steps or dep == step.name:
                raise InvalidSpec(f"{where}: DependsOn names {dep!r}, which is not another step of this pipeline")
        for path in iter_gets(step.arguments):
            head, _, rest = path.partition(".")
            target = step_of(path)
            if head == "Parameters" and rest not in self.parameters:
                raise InvalidSpec(f"{where}: Get {path}: no such parameter; declare it under Parameters")
            elif head == "Execution" and rest not in EXECUTION_VARIABLES:
                raise InvalidSpec(f"{where}: Get {path}: unknown; use one of {', '.join(sorted(EXECUTION_VARIABLES))}")
            elif head == "Steps" and (target is None or target not in self.steps or target == step.name):
                raise InvalidSpec(f"{where}: Get {path}: {target!r} is not another step of this pipeline")
            elif head == "Steps" and ".PropertyFiles." in path:
                self._check_property_file(where, path, self.steps[str(target)])
            elif head not in ("Parameters", "Execution", "Steps"):
                raise InvalidSpec(f"{where}: Get {path}: expected Parameters.*, Execution.* or Steps.*")

    @staticmethod
    def _check_property_file(where: str, path: str, target: StepDef) -> None:
        name = path.split(".PropertyFiles.", 1)[1]
        found = [p for p in target.property_files if p.get("PropertyFileName") == name]
        if not found:
            raise InvalidSpec(f"{where}: Get {path}: step {target.name} declares no PropertyFile named {name!r}")
        outputs = {o.get("OutputName") for o in target.arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])}
        if found[0].get("OutputName") not in outputs:
            raise InvalidSpec(
                f"step {target.name}: PropertyFile {name!r} names the output "
                f"{found[0].get('OutputName')!r}, which is not one of its outputs {sorted(outputs)}"
            )

    def _topological_order(self) -> list[str]:
        remaining = {name: set(step.upstream) for name, step in self.steps.items()}
        order: list[str] = []
        while remaining:
            ready = [n for n in self.steps if n in remaining and not remaining[n]]
            if not ready:
                raise InvalidSpec(
                    f"the steps {', '.join(sorted(_cycle(remaining)))} depend on each other in a cycle; "
                    "remove a DependsOn or a Get reference"
                )
            for n in ready:
                order.append(n)
                del remaining[n]
            for deps in remaining.values():
                deps.difference_update(ready)
        return order

    def _check_arguments(self) -> None:
        for step in self.steps.values():
            if step.type in OPERATIONS:
                errors = static_errors(OPERATIONS[step.type][0], _request_for_check(step.type, step.arguments))
                if errors:
                    raise InvalidSpec(f"step {step.name} ({step.type}): invalid Arguments: {'; '.join(errors[:10])}")
            elif step.type == "Condition" and not isinstance(step.arguments.get("Conditions"), list):
                raise InvalidSpec(f"step {step.name}: a Condition step needs Arguments.Conditions (a list)")


def _cycle(remaining: dict[str, set[str]]) -> set[str]:
    """The steps left after dropping, again and again, those that no remaining step waits for."""
    stuck = {name: set(deps) for name, deps in remaining.items()}
    while True:
        needed = set().union(*stuck.values())
        dropped = [name for name in stuck if name not in needed]
        if not dropped:
            return set(stuck)
        for name in dropped:
            del stuck[name]


def _parameter(raw: Any, index: int) -> Parameter:
    where = f"Parameters[{index}]"
    if not isinstance(raw, Mapping) or not raw.get("Name") or raw.get("Type") not in _EXAMPLES:
        raise InvalidSpec(f"{where}: expected {{Name, Type: String|Integer|Float|Boolean, DefaultValue}}, got {raw!r}")
    p = Parameter(
        str(raw["Name"]),
        str(raw["Type"]),
        raw.get("DefaultValue"),
        "DefaultValue" in raw,
        tuple(raw.get("EnumValues") or ()),
    )
    if p.has_default:
        p.parse(p.default)  # a default that does not fit the type is the definition's error
    return p


def _step(raw: Any, where: str, branch: tuple[str, bool] | None) -> StepDef:
    if not isinstance(raw, Mapping) or not raw.get("Name") or not raw.get("Type"):
        raise InvalidSpec(f"{where}: expected a step with Name, Type and Arguments, got {str(raw)[:80]!r}")
    name, kind = str(raw["Name"]), str(raw["Type"])
    if kind not in SUPPORTED_STEP_TYPES:
        hint = _HINTS.get(kind, "remove it or run it on SageMaker")
        raise InvalidSpec(
            f"step {name!r} has Type {kind!r}, which the emulator cannot run ({hint}); "
            f"supported types: {', '.join(SUPPORTED_STEP_TYPES)}"
        )
    args = raw.get("Arguments") or {}
    if not isinstance(args, Mapping):
        raise InvalidSpec(f"step {name}: Arguments must be a mapping")
    if kind == "Condition":
        args = {"Conditions": args.get("Conditions")}
    for key in ("CacheConfig", "RetryPolicies"):
        if raw.get(key):
            logger.warning("step %s: %s is not emulated (every step runs once)", name, key)
    return StepDef(
        name,
        kind,
        dict(args),
        tuple(raw.get("DependsOn") or ()),
        raw.get("DisplayName"),
        raw.get("Description"),
        tuple(raw.get("PropertyFiles") or ()),
        branch,
    )


def _request_for_check(kind: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The request a step's job would see, for the up-front check only: its Arguments, a name and the job
    module's own defaults (the one place they are written; at run time the job applies them itself)."""
    from emulator import processing, training, transform
    from emulator.tuning import spec as tuning_spec

    request = {**arguments, OPERATIONS[kind][1]: "pipelines-check"}
    if kind == "Processing":
        return processing.with_defaults(request)
    if kind == "Training":
        return training.with_defaults(request)
    if kind == "Transform":
        return transform.with_defaults(request)
    if kind == "Tuning":
        return tuning_spec.with_defaults({**request, OPERATIONS[kind][1]: "pipelines-check"})
    return request
