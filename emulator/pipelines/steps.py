"""The step executors: what each step type does, given its resolved Arguments.

An executor is a function from a :class:`StepContext` to a :class:`StepOutcome`. The job steps (Processing,
Training, Transform) construct their job with the execution's :class:`~emulator.runtime.session.Session` and
the generated job name, and run it through :meth:`StepContext.run_job`, which starts it, waits for its end and
lets :meth:`PipelineExecution.stop` stop it. Each job applies its own defaults (its ``with_defaults``); a step
only names the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.config import EmulatorConfig
from emulator.pipelines.definition import OPERATIONS, StepDef
from emulator.pipelines.expressions import evaluate_conditions, to_text
from emulator.runtime import session as _session
from emulator.runtime.container import LogSink
from emulator.runtime.lifecycle import Job
from emulator.runtime.session import Session

__all__ = [
    "DEFAULT_EXECUTORS",
    "StepContext",
    "StepExecutor",
    "StepOutcome",
    "run_condition",
    "run_fail",
    "run_model",
    "run_processing",
    "run_training",
    "run_transform",
    "run_tuning",
]

JobRunner = Callable[[Job], dict[str, Any]]
"""Starts a job, waits for its end and returns its Describe shape; the execution can stop it meanwhile."""


@dataclass
class StepContext:
    """What a step executor gets: the step, its resolved Arguments, its job name and the shared resources."""

    step: StepDef
    arguments: dict[str, Any]
    job_name: str
    #: The execution's config, Docker client and S3, shared by every step's job.
    session: Session
    #: ModelName -> CreateModel request, for models registered by this execution's Model steps.
    models: dict[str, dict[str, Any]]
    log_sink: LogSink
    run_job: JobRunner

    @property
    def config(self) -> EmulatorConfig:
        """The execution's configuration."""
        return self.session.config

    def request(self) -> dict[str, Any]:
        """The step's Create* request: its Arguments with the generated name (the job fills its own defaults)."""
        return {**self.arguments, OPERATIONS[self.step.type][1]: self.job_name}


@dataclass
class StepOutcome:
    """How a step ended: its properties (the Describe* result), status, reason and API metadata."""

    properties: dict[str, Any]
    status: str = "Succeeded"  # Succeeded | Failed | Stopped
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    note: str = ""


StepExecutor = Callable[[StepContext], StepOutcome]
_JOB_STATUS = {"Completed": "Succeeded", "Failed": "Failed", "Stopped": "Stopped"}


def run_processing(ctx: StepContext) -> StepOutcome:
    """A Processing step: CreateProcessingJob with the generated name; properties = DescribeProcessingJob."""
    from emulator.processing import ProcessingJob

    d = ctx.run_job(ProcessingJob(ctx.request(), session=ctx.session, log_sink=ctx.log_sink))
    outputs = [
        o["S3Output"]["S3Uri"] for o in d.get("ProcessingOutputConfig", {}).get("Outputs", []) if o.get("S3Output")
    ]
    return StepOutcome(
        d,
        _JOB_STATUS[d["ProcessingJobStatus"]],
        d.get("FailureReason"),
        {"ProcessingJob": {"Arn": d["ProcessingJobArn"]}},
        d.get("ExitMessage", "").strip()[:60] or ", ".join(outputs),
    )


def run_training(ctx: StepContext) -> StepOutcome:
    """A Training step: CreateTrainingJob; properties = DescribeTrainingJob."""
    from emulator.training import TrainingJob

    d = ctx.run_job(TrainingJob(ctx.request(), session=ctx.session, log_sink=ctx.log_sink))
    metrics = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in d.get("FinalMetricDataList", []))
    return StepOutcome(
        d,
        _JOB_STATUS[d["TrainingJobStatus"]],
        d.get("FailureReason"),
        {"TrainingJob": {"Arn": d["TrainingJobArn"]}},
        metrics,
    )


def run_tuning(ctx: StepContext) -> StepOutcome:
    """A Tuning step: CreateHyperParameterTuningJob; properties = DescribeHyperParameterTuningJob plus
    ``TrainingJobSummaries`` best first (what the SDK's ``TuningStep.get_top_model_s3_uri`` reads)."""
    from emulator.tuning import TuningJob, list_training_jobs

    # Tuning job names are at most 32 characters: pipelines-<the step job name's random token>.
    request = {**ctx.arguments, "HyperParameterTuningJobName": "pipelines-" + ctx.job_name.rsplit("-", 1)[-1]}
    job = TuningJob(request, session=ctx.session, log_sink=ctx.log_sink)
    d = ctx.run_job(job)
    order = "Descending" if job.spec.objective_type == "Maximize" else "Ascending"
    summaries = list_training_jobs(job.training_job_summaries(), sort_by="FinalObjectiveMetricValue", sort_order=order)
    best = d.get("BestTrainingJob") or {}
    return StepOutcome(
        {**d, "TrainingJobSummaries": summaries},
        _JOB_STATUS.get(d["HyperParameterTuningJobStatus"], "Failed"),
        d.get("FailureReason"),
        {"TuningJob": {"Arn": d["HyperParameterTuningJobArn"]}},
        f"best {best['TrainingJobName']}" if best else "",
    )


def run_transform(ctx: StepContext) -> StepOutcome:
    """A Transform step: CreateTransformJob with the models this execution created; DescribeTransformJob."""
    from emulator.transform import TransformJob

    job = TransformJob(ctx.request(), models=dict(ctx.models), session=ctx.session, log_sink=ctx.log_sink)
    d = ctx.run_job(job)
    return StepOutcome(
        d,
        _JOB_STATUS[d["TransformJobStatus"]],
        d.get("FailureReason"),
        {"TransformJob": {"Arn": d["TransformJobArn"]}},
        d["TransformOutput"]["S3OutputPath"],
    )


def run_model(ctx: StepContext) -> StepOutcome:
    """A Model step: like CreateModel, registered for this execution's Transform steps; DescribeModel shape."""
    from emulator.serving import ModelDefinition

    request = ctx.request()
    ModelDefinition.from_request(request)  # validates, and refuses what cannot be served locally
    ctx.models[ctx.job_name] = request
    arn = _session.arn(ctx.config, "model", ctx.job_name)
    properties = {**request, "ModelArn": arn, "CreationTime": _session.now()}
    properties.setdefault("EnableNetworkIsolation", False)
    container = request.get("PrimaryContainer") or {}
    note = f"{container.get('Image', '')} {container.get('ModelDataUrl', '')}".strip()
    return StepOutcome(properties, metadata={"Model": {"Arn": arn}}, note=note)


def run_condition(ctx: StepContext) -> StepOutcome:
    """A Condition step: ``Outcome`` is True when every condition holds."""
    outcome = evaluate_conditions(ctx.arguments["Conditions"])
    return StepOutcome(
        {"Outcome": outcome},
        metadata={"Condition": {"Outcome": str(outcome)}},
        note=f"Outcome {outcome}: {'IfSteps' if outcome else 'ElseSteps'} run",
    )


def run_fail(ctx: StepContext) -> StepOutcome:
    """A Fail step: the execution fails with ``ErrorMessage``."""
    message = to_text(ctx.arguments.get("ErrorMessage", "")) or f"Fail step {ctx.step.name} reached"
    return StepOutcome({"ErrorMessage": message}, "Failed", message, {"Fail": {"ErrorMessage": message}}, message)


DEFAULT_EXECUTORS: dict[str, StepExecutor] = {
    "Processing": run_processing,
    "Training": run_training,
    "Tuning": run_tuning,
    "Transform": run_transform,
    "Model": run_model,
    "Condition": run_condition,
    "Fail": run_fail,
}
#: Step types whose executors start containers.
NEEDS_DOCKER = frozenset({"Processing", "Training", "Tuning", "Transform"})
