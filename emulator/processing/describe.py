"""DescribeProcessingJob from the plan and what running it gave: pure functions, no engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from emulator import constants
from emulator.runtime.plan import JobPlan
from emulator.runtime.runner import RunResult


def initial(plan: JobPlan, created: datetime) -> dict[str, Any]:
    """The Describe shape of a job just created: InProgress."""
    return {
        **{k: v for k, v in plan.request.items() if k not in ("Tags", "ExperimentConfig")},
        "ProcessingJobArn": plan.arn,
        "ProcessingJobStatus": "InProgress",
        "CreationTime": created,
        "LastModifiedTime": created,
    }


def final(result: RunResult, now: datetime) -> dict[str, Any]:
    """What the run sets: times, ExitMessage (the first 1 KB of /opt/ml/output/message), status and reason."""
    outcome = result.outcome
    fields: dict[str, Any] = {
        "ProcessingStartTime": datetime.fromtimestamp(outcome.start_time, UTC),
        "ProcessingEndTime": datetime.fromtimestamp(outcome.end_time, UTC),
        "LastModifiedTime": now,
    }
    raw = b"".join(files.get(constants.MESSAGE_FILE) or b"" for files in result.files)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fields["ProcessingJobStatus"] = "Failed"
        fields["FailureReason"] = (
            "ClientError: /opt/ml/output/message is not valid UTF-8; write the message as UTF-8 text"
        )
        return fields
    message = text.encode()[: constants.MAX_EXIT_MESSAGE_BYTES].decode("utf-8", "ignore")
    if message:
        fields["ExitMessage"] = message
    status, reason = _status(result)
    fields["ProcessingJobStatus"] = status
    if reason:
        fields["FailureReason"] = reason
    return fields


def _status(result: RunResult) -> tuple[str, str | None]:
    outcome = result.outcome
    if outcome.stopped_reason == "MaxRuntimeExceeded":
        return "Stopped", "Processing job exceeded MaxRuntimeInSeconds"
    if outcome.stopped_reason:
        return "Stopped", "Processing job stopped by the user (interrupted)"
    if outcome.succeeded:
        return "Completed", None
    failed = outcome.first_failure
    return (
        "Failed",
        f"AlgorithmError: See job logs for more information, exit code: {failed.exit_code if failed else '?'}",
    )
