"""CreateHyperParameterTuningJob -> a :class:`TuningSpec`: validated with botocore's model, pure, no engine.

Defaults are applied once (:func:`with_defaults`), the request is checked against the operation's input shape,
then against the platform's own rules the model cannot say (a range's bounds are numbers and MinValue <= MaxValue,
a Logarithmic range is positive, a ReverseLogarithmic one lies in [0, 1), Grid takes Categorical ranges only, the
objective metric is one of the MetricDefinitions, ...). Every refusal is one line naming the field and the fix.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import constants
from emulator.config import DEFAULT_ROLE_ARN
from emulator.errors import InvalidSpec
from emulator.runtime import session as _session
from emulator.spec import load_spec, validate

OPERATION = "CreateHyperParameterTuningJob"
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")


@dataclass(frozen=True)
class Range:
    """One hyperparameter range: ``kind`` Integer, Continuous or Categorical."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Definition:
    """One training job definition: the CreateTrainingJob request every trial starts from, and its ranges."""

    name: str | None
    training: dict[str, Any]
    ranges: tuple[Range, ...]
    static: dict[str, str]
    objective: dict[str, str]


@dataclass(frozen=True)
class TuningSpec:
    """A CreateHyperParameterTuningJob request, checked, in the terms the tuner needs."""

    name: str
    request: dict[str, Any]
    strategy: str
    objective_type: str  # Maximize | Minimize
    objective_metric: str
    max_jobs: int
    max_parallel: int
    early_stopping: bool
    definitions: tuple[Definition, ...]
    seed: int | None = None
    max_runtime_s: int | None = None
    min_resource: int | None = None
    max_resource: int | None = None
    target_value: float | None = None
    not_improving: int | None = None
    warm_start_parents: tuple[str, ...] = ()
    warm_start_type: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)


def with_defaults(request: Mapping[str, Any]) -> dict[str, Any]:
    """Fill what a local run can default: the name, the role, resources and the stopping condition."""
    req: dict[str, Any] = json.loads(json.dumps(dict(request), default=str))
    req.setdefault("HyperParameterTuningJobName", _tuning_name(req))
    config = req.get("HyperParameterTuningJobConfig")
    if isinstance(config, dict) and config.get("TrainingJobEarlyStoppingType") is False:
        config["TrainingJobEarlyStoppingType"] = "Off"  # YAML 1.1 reads a bare Off as false
    definitions = req.get("TrainingJobDefinitions") or [req.get("TrainingJobDefinition") or {}]
    for d in definitions:
        if not isinstance(d, dict):
            continue
        d.setdefault("RoleArn", DEFAULT_ROLE_ARN)
        algo = d.setdefault("AlgorithmSpecification", {})
        if isinstance(algo, dict):
            algo.setdefault("TrainingInputMode", "File")
        if "HyperParameterTuningResourceConfig" not in d:
            res = d.setdefault("ResourceConfig", {})
            if isinstance(res, dict) and not res.get("InstanceGroups"):  # groups give their own types and counts
                res.setdefault("InstanceType", constants.DEFAULT_INSTANCE_TYPE)
                res.setdefault("InstanceCount", 1)
            if isinstance(res, dict):
                res.setdefault("VolumeSizeInGB", constants.DEFAULT_VOLUME_SIZE_GB)
        stop = d.setdefault("StoppingCondition", {})
        if isinstance(stop, dict):
            stop.setdefault("MaxRuntimeInSeconds", constants.DEFAULT_MAX_RUNTIME_S)
        out = d.setdefault("OutputDataConfig", {})
        if isinstance(out, dict):
            out.setdefault("S3OutputPath", "output")
    if "TrainingJobDefinition" not in req and "TrainingJobDefinitions" not in req:
        req["TrainingJobDefinition"] = definitions[0]
    return req


def _tuning_name(req: Mapping[str, Any]) -> str:
    # The platform's tuning names are at most 32 characters: the SDK's <stem>-YYMMDD-HHMM pattern.
    stamp = _session.now().strftime("%y%m%d-%H%M%S")
    return f"tuning-{stamp}"


def parse(request: Mapping[str, Any] | str | Path) -> TuningSpec:
    """The :class:`TuningSpec` of a CreateHyperParameterTuningJob request (a dict, or a YAML/JSON file).

    Raises:
        InvalidSpec: the request does not fit the API, or breaks one of the platform's rules.
    """
    raw = load_spec(request)
    try:
        req = with_defaults(raw)
    except (AttributeError, TypeError):
        validate(OPERATION, raw)
        raise InvalidSpec(f"invalid {OPERATION} request: a block is not a mapping; fix the spec") from None
    validate(OPERATION, req)
    name: str = req["HyperParameterTuningJobName"]
    if req.get("TrainingJobDefinition") and req.get("TrainingJobDefinitions"):
        raise InvalidSpec("give TrainingJobDefinition or TrainingJobDefinitions, not both")
    if req.get("Autotune"):
        raise InvalidSpec("Autotune is not supported locally; give HyperParameterTuningJobConfig's ranges instead")
    config = req["HyperParameterTuningJobConfig"]
    strategy = config["Strategy"]
    objective = config.get("HyperParameterTuningJobObjective")
    raw_defs = req.get("TrainingJobDefinitions") or [req["TrainingJobDefinition"]]
    definitions = tuple(_definition(d, config, i, len(raw_defs) > 1) for i, d in enumerate(raw_defs))
    if objective is None:
        objective = definitions[0].objective
    limits = config["ResourceLimits"]
    if strategy == "Grid":
        max_jobs = sum(math.prod(len(r.values) for r in d.ranges) for d in definitions)
        if limits.get("MaxNumberOfTrainingJobs"):
            max_jobs = min(max_jobs, int(limits["MaxNumberOfTrainingJobs"]))
    else:
        max_jobs = int(limits.get("MaxNumberOfTrainingJobs") or constants.DEFAULT_TUNING_MAX_JOBS)
    hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    if hyperband and strategy != "Hyperband":
        raise InvalidSpec("StrategyConfig.HyperbandStrategyConfig: only with Strategy Hyperband")
    lo, hi = hyperband.get("MinResource"), hyperband.get("MaxResource")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidSpec(f"HyperbandStrategyConfig: MinResource {lo} is above MaxResource {hi}")
    criteria = config.get("TuningJobCompletionCriteria") or {}
    warm = req.get("WarmStartConfig") or {}
    parents = tuple(p["HyperParameterTuningJobName"] for p in warm.get("ParentHyperParameterTuningJobs", []))
    if warm and not all(parents):
        raise InvalidSpec("WarmStartConfig.ParentHyperParameterTuningJobs: each needs HyperParameterTuningJobName")
    return TuningSpec(
        name=name,
        request=req,
        strategy=strategy,
        objective_type=objective["Type"],
        objective_metric=objective["MetricName"],
        max_jobs=max_jobs,
        max_parallel=int(limits["MaxParallelTrainingJobs"]),
        early_stopping=config.get("TrainingJobEarlyStoppingType", "Off") == "Auto",
        definitions=definitions,
        seed=config.get("RandomSeed"),
        max_runtime_s=limits.get("MaxRuntimeInSeconds"),
        min_resource=lo,
        max_resource=hi,
        target_value=criteria.get("TargetObjectiveMetricValue"),
        not_improving=(criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving"),
        warm_start_parents=parents,
        warm_start_type=warm.get("WarmStartType"),
        tags=list(req.get("Tags") or []),
    )


def _definition(d: Mapping[str, Any], config: Mapping[str, Any], index: int, several: bool) -> Definition:
    where = f"TrainingJobDefinitions[{index}]" if several else "TrainingJobDefinition"
    objective = d.get("TuningObjective") or config.get("HyperParameterTuningJobObjective")
    if objective is None:
        raise InvalidSpec(
            f"{where}: no objective; set HyperParameterTuningJobConfig.HyperParameterTuningJobObjective "
            "(Type Maximize or Minimize, MetricName)"
        )
    ranges_block = d.get("HyperParameterRanges") or config.get("ParameterRanges") or {}
    if ranges_block.get("AutoParameters"):
        raise InvalidSpec(f"{where}: AutoParameters need Autotune, which is not supported locally; give ranges")
    ranges = _ranges(ranges_block, where)
    if not ranges:
        raise InvalidSpec(
            f"{where}: no hyperparameter ranges; give ParameterRanges (Integer, Continuous or Categorical)"
        )
    strategy = config["Strategy"]
    if strategy == "Grid" and any(r.kind != "Categorical" for r in ranges):
        raise InvalidSpec("Strategy Grid takes CategoricalParameterRanges only; use Random or Bayesian for ranges")
    static = {str(k): str(v) for k, v in (d.get("StaticHyperParameters") or {}).items()}
    clash = sorted(set(static) & {r.name for r in ranges})
    if clash:
        raise InvalidSpec(f"{where}: {clash[0]!r} is both a static hyperparameter and a tuned one; keep one")
    algo = d["AlgorithmSpecification"]
    if not algo.get("TrainingImage"):
        raise InvalidSpec(f"{where}.AlgorithmSpecification.TrainingImage: missing; give the training image")
    metrics = {m["Name"] for m in algo.get("MetricDefinitions") or []}
    if objective["MetricName"] not in metrics:
        raise InvalidSpec(
            f"{where}: A metric is required for this hyperparameter tuning job objective "
            f"({objective['MetricName']!r}). Provide a metric in the metric definitions "
            "(AlgorithmSpecification.MetricDefinitions: Name and Regex)"
        )
    return Definition(d.get("DefinitionName"), training_base(d), ranges, static, dict(objective))


def training_base(d: Mapping[str, Any]) -> dict[str, Any]:
    """The CreateTrainingJob request every training job of a definition starts from (no name, no tuned values)."""
    algo = {k: v for k, v in d["AlgorithmSpecification"].items()}
    out: dict[str, Any] = {
        "AlgorithmSpecification": algo,
        "RoleArn": d["RoleArn"],
        "OutputDataConfig": d["OutputDataConfig"],
        "StoppingCondition": d["StoppingCondition"],
    }
    if d.get("HyperParameterTuningResourceConfig"):
        rc = d["HyperParameterTuningResourceConfig"]
        first = (rc.get("InstanceConfigs") or [{}])[0]
        out["ResourceConfig"] = {
            "InstanceType": rc.get("InstanceType") or first.get("InstanceType") or constants.DEFAULT_INSTANCE_TYPE,
            "InstanceCount": rc.get("InstanceCount") or first.get("InstanceCount") or 1,
            "VolumeSizeInGB": rc.get("VolumeSizeInGB")
            or first.get("VolumeSizeInGB")
            or constants.DEFAULT_VOLUME_SIZE_GB,
        }
    else:
        out["ResourceConfig"] = d["ResourceConfig"]
    for key in (
        "InputDataConfig",
        "VpcConfig",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
        "CheckpointConfig",
        "RetryStrategy",
        "Environment",
    ):
        if d.get(key) is not None:
            out[key] = d[key]
    return out


def _ranges(block: Mapping[str, Any], where: str) -> tuple[Range, ...]:
    out: list[Range] = []
    for kind, key in (("Integer", "IntegerParameterRanges"), ("Continuous", "ContinuousParameterRanges")):
        for i, r in enumerate(block.get(key) or []):
            at = f"{where} {key}[{i}] ({r['Name']})"
            low, high = _number(r["MinValue"], kind, f"{at}.MinValue"), _number(r["MaxValue"], kind, f"{at}.MaxValue")
            if low > high:
                raise InvalidSpec(f"{at}: MinValue {r['MinValue']} is above MaxValue {r['MaxValue']}; swap them")
            scaling = r.get("ScalingType", "Auto")
            if scaling == "Logarithmic" and low <= 0:
                raise InvalidSpec(f"{at}: Logarithmic scaling needs MinValue above 0; use Linear or raise MinValue")
            if scaling == "ReverseLogarithmic" and (kind == "Integer" or not 0 <= low < high < 1):
                raise InvalidSpec(
                    f"{at}: ReverseLogarithmic scaling is for Continuous ranges within [0, 1); use Linear"
                )
            out.append(Range(r["Name"], kind, low, high, scaling))
    for i, r in enumerate(block.get("CategoricalParameterRanges") or []):
        values = tuple(str(v) for v in r["Values"])
        if len(set(values)) != len(values):
            raise InvalidSpec(f"{where} CategoricalParameterRanges[{i}] ({r['Name']}): a value is given twice")
        out.append(Range(r["Name"], "Categorical", values=values))
    names = [r.name for r in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidSpec(f"{where}: hyperparameter {twice[0]!r} has more than one range; give it one")
    return tuple(out)


def _number(text: str, kind: str, where: str) -> float:
    try:
        value = float(text) if kind == "Continuous" else int(text)
    except ValueError:
        what = "an integer" if kind == "Integer" else "a number"
        raise InvalidSpec(f'{where}: {text!r} is not {what} (the API takes it as a string, e.g. "10")') from None
    if not math.isfinite(value):
        raise InvalidSpec(f"{where}: {text!r} is not a finite number")
    return float(value)


def training_job_name(tuning_name: str, number: int) -> str:
    """The platform's name of a tuning job's training job: ``<tuning-job-name>-NNN-<8 hex>`` (``number`` from 1).

    >>> import re
    >>> re.fullmatch(r"doc-007-[0-9a-f]{8}", training_job_name("doc", 7)) is not None
    True
    """
    return f"{tuning_name}-{number:03d}-{secrets.token_hex(4)}"
