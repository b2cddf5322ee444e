"""DescribeTrainingJob from the plan and what running it gave: pure functions, no engine."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from emulator import constants
from emulator.runtime.plan import JobPlan
from emulator.runtime.runner import RunResult
from emulator.training.plan import metric_patterns


def initial(plan: JobPlan, created: datetime) -> dict[str, Any]:
    """The Describe shape of a job just created: InProgress / Starting."""
    req = plan.request
    d: dict[str, Any] = {
        "TrainingJobName": plan.name,
        "TrainingJobArn": plan.arn,
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "HyperParameters": req.get("HyperParameters") or {},
        "AlgorithmSpecification": req["AlgorithmSpecification"],
        "RoleArn": req["RoleArn"],
        # The platform answers KmsKeyId "" when the request gave none (the SDK's Estimator.attach reads it).
        "OutputDataConfig": {"KmsKeyId": "", **req["OutputDataConfig"]},
        "ResourceConfig": req["ResourceConfig"],
        "StoppingCondition": req["StoppingCondition"],
        "CreationTime": created,
        "LastModifiedTime": created,
        "SecondaryStatusTransitions": [],
        "EnableNetworkIsolation": bool(req.get("EnableNetworkIsolation", False)),
        "EnableInterContainerTrafficEncryption": bool(req.get("EnableInterContainerTrafficEncryption", False)),
        "EnableManagedSpotTraining": bool(req.get("EnableManagedSpotTraining", False)),
        "ModelArtifacts": {"S3ModelArtifacts": ""},
    }
    for key in ("InputDataConfig", "Environment", "CheckpointConfig", "VpcConfig", "RetryStrategy"):
        if req.get(key):
            d[key] = req[key]
    return d


def result_fields(plan: JobPlan, result: RunResult) -> dict[str, Any]:
    """What the run adds to the Describe shape: artifacts, times, billable seconds, final metrics."""
    outcome = result.outcome
    seconds = max(1, round(outcome.end_time - outcome.start_time))
    fields: dict[str, Any] = {
        "ModelArtifacts": {"S3ModelArtifacts": result.exported.get("model", "")},
        "TrainingStartTime": datetime.fromtimestamp(outcome.start_time, UTC),
        "TrainingEndTime": datetime.fromtimestamp(outcome.end_time, UTC),
        # Both are wall-clock seconds; the API says to multiply BillableTimeInSeconds by InstanceCount for compute.
        "TrainingTimeInSeconds": seconds,
        "BillableTimeInSeconds": seconds,
    }
    definitions = plan.request["AlgorithmSpecification"].get("MetricDefinitions") or []
    metrics = final_metrics(definitions, (line for _, line in outcome.log_lines), outcome.end_time)
    if metrics:
        fields["FinalMetricDataList"] = metrics
    return fields


def end_status(result: RunResult) -> tuple[str, str, str, str | None]:
    """(TrainingJobStatus, SecondaryStatus, its message, FailureReason) of a finished run."""
    outcome = result.outcome
    if outcome.stopped_reason == "MaxRuntimeExceeded":
        return "Stopped", "MaxRuntimeExceeded", "Training job runtime exceeded MaxRuntimeInSeconds provided", None
    if outcome.stopped_reason:
        return "Stopped", "Stopped", "Training job stopped by the user (interrupted)", None
    if outcome.succeeded:
        return "Completed", "Completed", "Training job completed", None
    return "Failed", "Failed", "Training job failed", failure_reason(result)


def failure_reason(result: RunResult) -> str:
    """/opt/ml/output/failure of the host that failed first (1024 characters at most), else the exit code."""
    outcome = result.outcome
    failed = outcome.first_failure
    index = outcome.hosts.index(failed) if failed else 0
    raw = result.files[index].get(constants.FAILURE_FILE) if index < len(result.files) else None
    text = raw.decode("utf-8", "replace") if raw else ""
    if text.strip():
        return text[: constants.MAX_FAILURE_REASON_CHARS]
    if failed and failed.oom_killed:
        return "AlgorithmError: the container ran out of memory (OOMKilled), exit code: 137"
    return f"AlgorithmError: , exit code: {failed.exit_code if failed else None}"


def final_metrics(
    definitions: Sequence[Mapping[str, str]], lines: Iterable[str], end_time: float | None = None
) -> list[dict[str, Any]]:
    """The last value each MetricDefinitions regex captured in the logs (first group, parsed as a float).

    >>> [m["Value"] for m in final_metrics([{"Name": "acc", "Regex": "acc=([0-9.]+)"}], ["acc=0.5", "acc=0.9"])]
    [0.9]
    """
    found: dict[str, float] = {}
    compiled = metric_patterns(definitions)
    for line in lines:
        for name, rx in compiled:
            for m in rx.finditer(line):
                try:
                    found[name] = float(m.group(1) if rx.groups else m.group(0))
                except (ValueError, IndexError):
                    continue
    stamp = datetime.fromtimestamp(end_time or time.time(), UTC)
    return [{"MetricName": n, "Value": v, "Timestamp": stamp} for n, v in found.items()]
