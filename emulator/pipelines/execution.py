"""SageMaker Pipelines, locally: run a pipeline definition on the Docker engine.

``PipelineExecution(definition, parameters={...}).run()`` takes the JSON that the SageMaker SDK's
``pipeline.definition()`` emits (or the same document as YAML, or a dict), checks it up front (step types,
references, cycles, the Arguments against botocore's model of each Create* request), then runs each step
as soon as its dependencies are met, up to ``max_parallel`` at a time. Data references (``Get``) and
``DependsOn`` make the DAG; a Condition step's ``IfSteps``/``ElseSteps`` run only on their branch. A
failed step stops its dependants (``NotExecuted``), the others go on, and the execution ends ``Failed``.

Supported step types: Processing, Training, Transform, Model (CreateModel), Condition, Fail. The results
have SageMaker's shapes: :meth:`PipelineExecution.describe` (DescribePipelineExecution),
:meth:`PipelineExecution.list_steps` (ListPipelineExecutionSteps) and each step's Describe* result.
"""

from __future__ import annotations

import collections
import ctypes
import json
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.errors import EmulatorError, InputNotFound, Interrupted, InvalidSpec
from emulator.pipelines.definition import (
    OPERATIONS,
    SUPPORTED_STEP_TYPES,
    Parameter,
    PipelineDefinition,
    StepDef,
    with_defaults,
)
from emulator.pipelines.expressions import Scope, conform, evaluate_conditions, resolve, to_text
from emulator.runtime import session as _session
from emulator.runtime.cluster import LogSink
from emulator.runtime.docker import DockerSeam
from emulator.storage.s3 import S3, is_s3, join_uri

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EXECUTORS",
    "SUPPORTED_STEP_TYPES",
    "Parameter",
    "PipelineDefinition",
    "PipelineExecution",
    "StepContext",
    "StepOutcome",
    "StepState",
]

DEFAULT_MAX_PARALLEL = 4
TERMINAL = frozenset({"Succeeded", "Failed", "Stopped", "NotExecuted"})
_RUNNING = ("Starting", "Executing")
_LOG_TAIL_LINES = 30

StepLogSink = Callable[[str, str, str], None]
"""Called with (step name, host, line) for every line a step's containers print."""


# -- step executors -----------------------------------------------------------------------------------------
@dataclass
class StepContext:
    """What a step executor gets: the step, its resolved Arguments, its job name and the shared resources."""

    step: StepDef
    arguments: dict[str, Any]
    job_name: str
    config: EmulatorConfig
    s3: S3
    docker: DockerSeam | None
    #: ModelName -> CreateModel request, for models registered by this execution's Model steps.
    models: dict[str, dict[str, Any]]
    log_sink: LogSink


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

    request = with_defaults("Processing", ctx.arguments, ctx.job_name)
    d = ProcessingJob(request, config=ctx.config, docker=ctx.docker, s3=ctx.s3, log_sink=ctx.log_sink).run()
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

    request = with_defaults("Training", ctx.arguments, ctx.job_name)
    d = TrainingJob(request, config=ctx.config, docker=ctx.docker, s3=ctx.s3, log_sink=ctx.log_sink).run()
    metrics = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in d.get("FinalMetricDataList", []))
    return StepOutcome(
        d,
        _JOB_STATUS[d["TrainingJobStatus"]],
        d.get("FailureReason"),
        {"TrainingJob": {"Arn": d["TrainingJobArn"]}},
        metrics,
    )


def run_transform(ctx: StepContext) -> StepOutcome:
    """A Transform step: CreateTransformJob with the models this execution created; DescribeTransformJob."""
    from emulator.transform import TransformJob

    request = with_defaults("Transform", ctx.arguments, ctx.job_name)
    job = TransformJob(
        request, models=dict(ctx.models), config=ctx.config, docker=ctx.docker, s3=ctx.s3, log_sink=ctx.log_sink
    )
    d = job.run()
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

    request = {**ctx.arguments, "ModelName": ctx.job_name}
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
    "Transform": run_transform,
    "Model": run_model,
    "Condition": run_condition,
    "Fail": run_fail,
}
_NEEDS_DOCKER = {"Processing", "Training", "Transform"}


# -- the execution ------------------------------------------------------------------------------------------
@dataclass
class StepState:
    """A step's live state (what the status table shows and ListPipelineExecutionSteps returns)."""

    name: str
    type: str
    display_name: str | None = None
    status: str = "Pending"
    start: float | None = None
    end: float | None = None
    job_name: str | None = None
    note: str = ""
    failure_reason: str | None = None
    properties: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    log_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=_LOG_TAIL_LINES))

    @property
    def duration_s(self) -> float | None:
        """Seconds since the start (or from start to end)."""
        if self.start is None:
            return None
        return (self.end or time.time()) - self.start


ChangeListener = Callable[["PipelineExecution", StepState | None], None]
"""Called after each step's status changes (with its state) and on each tick of the scheduler (None)."""


class PipelineExecution:
    """One execution of a pipeline. Like StartPipelineExecution; :meth:`run` blocks until it ends.

    Args:
        definition: a :class:`PipelineDefinition`, a dict, the JSON text of ``pipeline.definition()``
            or the path of a JSON/YAML file.
        parameters: parameter overrides (strings are typed by each parameter's Type).
        max_parallel: most steps running at once (default: the definition's
            ``ParallelismConfiguration.MaxParallelExecutionSteps``, else 4).
        executors: step type -> executor, replacing the built-in ones (tests inject fakes).
        s3: the S3 every step shares (default: one per execution, a moto server started on demand).
        on_change: called on every status change, e.g. to draw a status table.
        log_sink: called with (step, host, line) for container output.

    Raises:
        InvalidSpec: the definition or a parameter is invalid.
    """

    def __init__(
        self,
        definition: PipelineDefinition | str | Path | Mapping[str, Any],
        *,
        parameters: Mapping[str, Any] | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        max_parallel: int | None = None,
        executors: Mapping[str, StepExecutor] | None = None,
        on_change: ChangeListener | None = None,
        log_sink: StepLogSink | None = None,
        name: str | None = None,
    ) -> None:
        self.definition = (
            definition if isinstance(definition, PipelineDefinition) else PipelineDefinition.load(definition, name=name)
        )
        self.config = config or EmulatorConfig()
        self.parameters = self.definition.parameter_values(parameters)
        self.max_parallel = max_parallel or self.definition.max_parallel or DEFAULT_MAX_PARALLEL
        if self.max_parallel < 1:
            raise InvalidSpec(f"max_parallel must be at least 1, got {self.max_parallel}")
        self.executors = {**DEFAULT_EXECUTORS, **(executors or {})}
        self.execution_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        name = self.definition.name
        self.pipeline_arn = _session.arn(self.config, "pipeline", name)
        self.arn = f"{self.pipeline_arn}/execution/{self.execution_id}"
        self.states = {n: StepState(n, s.type, s.display_name) for n, s in self.definition.steps.items()}
        self.models: dict[str, dict[str, Any]] = {}
        self.status = "Executing"
        self.failure_reason: str | None = None
        self._docker, self._s3, self._own_s3 = docker, s3, s3 is None
        self._on_change, self._log_sink = on_change, log_sink
        self._created = _session.now()
        self._ended: datetime | None = None
        self._lock = threading.RLock()
        self._threads: dict[str, int] = {}
        self._workers: list[threading.Thread] = []
        self._wake = threading.Event()
        self._stopping = False
        self._property_files: dict[tuple[str, str], Any] = {}

    # -- running ------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run every step that can run and return the DescribePipelineExecution shape.

        Raises:
            Interrupted: Ctrl-C; running jobs were stopped and cleaned up first (see :meth:`describe`).
            DockerUnavailable: a step needs containers and no Docker engine answers.
        """
        if self._workers:
            raise InvalidSpec(f"execution {self.execution_id} has run already; start a new PipelineExecution")
        if self._docker is None and any(s.type in _NEEDS_DOCKER for s in self.definition.steps.values()):
            from emulator.runtime.docker import DockerClient

            DockerClient(self.config)  # fail fast (exit 3) rather than once per step
        s3 = self._s3 = self._s3 or S3(self.config)
        try:
            self._loop()
        except BaseException as exc:
            self._stop()  # Ctrl-C, or a bug in the scheduler: either way no job may outlive this call
            if not isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            if self._own_s3:
                s3.close()
        self._finish()
        if self.status == "Stopped":
            raise Interrupted(
                f"pipeline execution {self.execution_id} was interrupted (Ctrl-C): running steps were "
                "stopped and their containers removed"
            )
        return self.describe()

    def _loop(self) -> None:
        while True:
            self._wake.clear()
            self._schedule()
            if not any(s.status in _RUNNING for s in self.states.values()):
                return
            self._wake.wait(0.5)  # a worker sets it when its step ends; the timeout ticks the status table
            self._notify(None)

    def _schedule(self) -> None:
        changed = True
        while changed:  # a step marked NotExecuted may settle its dependants in the same pass
            changed = False
            busy = sum(s.status in _RUNNING for s in self.states.values())
            for name in self.definition.order:
                state = self.states[name]
                if state.status != "Pending":
                    continue
                verdict = self._readiness(self.definition.steps[name])
                if verdict == "wait" or (verdict == "run" and busy >= self.max_parallel):
                    continue
                if verdict == "run":
                    self._start_worker(state)
                    busy += 1
                else:
                    self._set(state, "NotExecuted", note=verdict, end=None)
                    changed = True

    def _start_worker(self, state: StepState) -> None:
        # One thread per running step, at most max_parallel at once. The worker records its own outcome, and
        # _stop waits on these threads: nothing depends on bookkeeping that a Ctrl-C could cut in half.
        self._set(state, "Starting", start=time.time())
        worker = threading.Thread(target=self._execute, args=(state.name,), name=f"pipeline-step-{state.name}")
        self._workers.append(worker)
        worker.start()

    def _readiness(self, step: StepDef) -> str:
        """'run', 'wait', or the reason the step will not run."""
        states = [self.states[u] for u in sorted(step.upstream, key=self.definition.order.index)]
        if any(s.status not in TERMINAL for s in states):
            return "wait"
        for s in states:
            if s.status in ("Failed", "Stopped"):
                return f"upstream step {s.name} {s.status.lower()}"
            if s.status == "NotExecuted":
                return f"upstream step {s.name} was not executed"
        if step.branch:
            cond, wanted = step.branch
            outcome = bool((self.states[cond].properties or {}).get("Outcome"))
            if outcome != wanted:
                return f"condition {cond} is {outcome}; this step is in its {'IfSteps' if wanted else 'ElseSteps'}"
        return "the execution was stopped" if self._stopping else "run"

    def _execute(self, name: str) -> None:
        with self._lock:
            self._threads[name] = threading.get_ident()
        try:
            self._record(name, self._outcome(name))
        except KeyboardInterrupt:  # a Ctrl-C that reached this thread after the job had ended
            self._record(name, StepOutcome({}, "Stopped", "stopped by the user (Ctrl-C)"))
        finally:
            with self._lock:
                self._threads.pop(name, None)
            self._wake.set()

    def _outcome(self, name: str) -> StepOutcome:
        step, state = self.definition.steps[name], self.states[name]
        try:
            if self._stopping:
                raise KeyboardInterrupt
            job_name = _job_name(self.execution_id, name)
            arguments = self._arguments(step, job_name)
            self._set(state, "Executing", job_name=job_name if step.type in OPERATIONS else None)
            ctx = StepContext(
                step,
                arguments,
                job_name,
                self.config,
                self._s3 or S3(self.config),
                self._docker,
                self.models,
                self._step_sink(state),
            )
            return self.executors[step.type](ctx)
        except (KeyboardInterrupt, Interrupted):
            return StepOutcome({}, "Stopped", "stopped by the user (Ctrl-C)")
        except EmulatorError as exc:
            return StepOutcome({}, "Failed", str(exc))
        except Exception as exc:  # a bug, not the user's error: keep the traceback in the log
            logger.exception("step %s: unexpected error", name)
            return StepOutcome({}, "Failed", f"internal error: {type(exc).__name__}: {exc}")

    def _arguments(self, step: StepDef, job_name: str) -> dict[str, Any]:
        execution = {**self._execution_variables(), "CurrentDateTime": _session.now().isoformat()}
        if step.type in ("Processing", "Training"):
            execution[f"{step.type}JobName"] = job_name
        with self._lock:
            done = {n: s.properties for n, s in self.states.items() if s.status == "Succeeded" and s.properties}
        scope = Scope(self.parameters, execution, done, self._property_file, self._read_json)
        resolved: dict[str, Any] = resolve(step.arguments, scope)
        return conform(OPERATIONS[step.type][0], resolved) if step.type in OPERATIONS else resolved

    def _record(self, name: str, outcome: StepOutcome) -> None:
        if outcome.status == "Stopped" and not self._stopping:
            # A job that stopped on its own (MaxRuntimeInSeconds) did not succeed: its dependants must not run.
            outcome.status = "Failed"
        state = self.states[name]
        with self._lock:
            state.properties, state.metadata = outcome.properties, outcome.metadata
            state.failure_reason = outcome.failure_reason if outcome.status != "Succeeded" else None
        note = outcome.note if outcome.status == "Succeeded" else (outcome.failure_reason or outcome.note)
        self._set(state, outcome.status, note=note, end=time.time())

    def _stop(self) -> None:
        """Ctrl-C: stop the running steps (each job cleans up on KeyboardInterrupt) and wait for them."""
        running = [s.name for s in self.states.values() if s.status in _RUNNING]
        logger.warning("interrupted: stopping %s; press Ctrl-C again to kill them now", ", ".join(running) or "-")
        self._stopping = True
        self._interrupt_workers()
        while any(w.is_alive() for w in self._workers):
            try:
                time.sleep(0.05)
            except KeyboardInterrupt:
                self._interrupt_workers()  # the jobs' second Ctrl-C: kill now (no grace period)
        for state in self.states.values():
            if state.status in _RUNNING:  # its worker never got to record an outcome
                self._set(state, "Stopped", note="stopped by the user (Ctrl-C)", end=time.time())
            elif state.status == "Pending":
                self._set(state, "NotExecuted", note="the execution was stopped")

    def _interrupt_workers(self) -> None:
        # Worker threads never see the main thread's KeyboardInterrupt: raise it in each of them, so the job
        # classes run their own Ctrl-C handling (SIGTERM, grace period, removal) exactly as in the CLI.
        with self._lock:
            for ident in self._threads.values():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))

    def _finish(self) -> None:
        failed = [s for s in self.states.values() if s.status == "Failed"]
        if self._stopping:
            self.status, self.failure_reason = "Stopped", "stopped by the user (Ctrl-C)"
        elif failed:
            self.status = "Failed"
            self.failure_reason = "; ".join(f"step {s.name} ({s.type}) failed: {s.failure_reason}" for s in failed)
        else:
            self.status = "Succeeded"
        self._ended = _session.now()
        logger.info("pipeline execution %s: %s", self.execution_id, self.status)
        self._notify(None)

    # -- expressions' data ----------------------------------------------------------------------------------
    def _execution_variables(self) -> dict[str, Any]:
        return {
            "PipelineExecutionId": self.execution_id,
            "PipelineExecutionArn": self.arn,
            "PipelineName": self.definition.name,
            "PipelineArn": self.pipeline_arn,
            "StartDateTime": self._created.isoformat(),
        }

    def _property_file(self, step: str, name: str) -> Any:
        with self._lock:
            if (step, name) in self._property_files:
                return self._property_files[(step, name)]
        spec = next(p for p in self.definition.steps[step].property_files if p.get("PropertyFileName") == name)
        outputs = (self.states[step].properties or {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
        base = next(o["S3Output"]["S3Uri"] for o in outputs if o.get("OutputName") == spec["OutputName"])
        document = self._read_json(join_uri(base, str(spec["FilePath"])), f"property file {name} of step {step}")
        with self._lock:
            self._property_files[(step, name)] = document
        return document

    def _read_json(self, location: str, what: str = "Std:JsonGet") -> Any:
        try:
            if is_s3(location):
                raw = (self._s3 or S3(self.config)).read_bytes(location)
            else:
                raw = Path(location.removeprefix("file://")).expanduser().read_bytes()
        except (InputNotFound, OSError) as exc:
            raise InputNotFound(f"{what}: cannot read {location} ({exc}); does the job write that file?") from None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvalidSpec(f"{what}: {location} is not JSON ({exc})") from None

    # -- state and results ----------------------------------------------------------------------------------
    def _set(self, state: StepState, status: str, **changes: Any) -> None:
        with self._lock:
            state.status = status
            for key, value in changes.items():
                setattr(state, key, value)
        logger.debug("step %s: %s", state.name, status)
        self._notify(state)

    def _notify(self, state: StepState | None) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self, state)
            except Exception:
                logger.exception("pipeline status listener failed")

    def _step_sink(self, state: StepState) -> LogSink:
        def sink(host: str, line: str) -> None:
            state.log_tail.append(f"{host} | {line}")
            if self._log_sink is not None:
                self._log_sink(state.name, host, line)

        return sink

    def describe(self) -> dict[str, Any]:
        """The execution as DescribePipelineExecution returns it (plus its parameters' values)."""
        d: dict[str, Any] = {
            "PipelineArn": self.pipeline_arn,
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": f"execution-{self.execution_id}",
            "PipelineExecutionStatus": self.status,
            "CreationTime": self._created,
            "LastModifiedTime": self._ended or _session.now(),
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": self.max_parallel},
            "PipelineParameters": [{"Name": k, "Value": to_text(v)} for k, v in self.parameters.items()],
        }
        if self.failure_reason:
            d["FailureReason"] = self.failure_reason
        return d

    def list_steps(self) -> list[dict[str, Any]]:
        """Like ListPipelineExecutionSteps' ``PipelineExecutionSteps``, in the order the steps started."""
        started = sorted((s for s in self.states.values() if s.start is not None), key=lambda s: s.start or 0.0)
        rest = [s for s in self.states.values() if s.start is None]
        return [_step_summary(s, self.definition.steps[s.name]) for s in [*started, *rest]]

    def step_results(self) -> dict[str, dict[str, Any]]:
        """Each step that ran: its Describe*-shaped properties (what ``Steps.<name>.<path>`` reads)."""
        return {n: dict(s.properties) for n, s in self.states.items() if s.properties}

    def to_dict(self) -> dict[str, Any]:
        """Everything: the execution, its steps and their results (what ``pipeline run --json`` prints)."""
        return {
            "PipelineExecution": self.describe(),
            "PipelineExecutionSteps": self.list_steps(),
            "StepResults": self.step_results(),
        }


def _step_summary(state: StepState, step: StepDef) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "StepName": state.name,
        "StepDisplayName": state.display_name or state.name,
        "StepStatus": state.status,
        "AttemptCount": 1 if state.start else 0,
        "Metadata": state.metadata,
    }
    if step.description:
        entry["StepDescription"] = step.description
    for key, stamp in (("StartTime", state.start), ("EndTime", state.end)):
        if stamp is not None:
            entry[key] = datetime.fromtimestamp(stamp, UTC)
    if state.failure_reason:
        entry["FailureReason"] = state.failure_reason
    elif state.status == "NotExecuted":
        entry["FailureReason"] = state.note
    return entry


def _job_name(execution_id: str, step: str) -> str:
    """``pipelines-<execution id>-<step>-<random>``, as the service names the jobs it starts (<= 63 chars)."""
    token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(10))
    clean = re.sub(r"[^A-Za-z0-9-]", "-", step).strip("-")[: 63 - len(execution_id) - len(token) - 12] or "step"
    return f"pipelines-{execution_id}-{clean}-{token}"
