"""SageMaker Pipelines, locally: run a pipeline definition on the Docker engine.

``PipelineExecution(definition, parameters={...}).run()`` takes the JSON that the SageMaker SDK's
``pipeline.definition()`` emits (or the same document as YAML, or a dict), checks it up front (step types,
references, cycles, the Arguments against botocore's model of each Create* request), then runs each step
as soon as its dependencies are met, up to ``max_parallel`` at a time. Data references (``Get``) and
``DependsOn`` make the DAG; a Condition step's ``IfSteps``/``ElseSteps`` run only on their branch. A
failed step stops its dependants (``NotExecuted``), the others go on, and the execution ends ``Failed``.

The execution follows the job contract (:mod:`emulator.runtime.lifecycle`): :meth:`~PipelineExecution.stop`
(from any thread, or Ctrl-C in :meth:`~PipelineExecution.run`) stops every running step's job through its own
``stop()``, runs no further step and ends the execution ``Stopped``.

Supported step types: Processing, Training, Tuning, Transform, Model (CreateModel), Condition, Fail (their executors
are in :mod:`emulator.pipelines.steps`). The results have SageMaker's shapes: :meth:`PipelineExecution.describe`
(DescribePipelineExecution), :meth:`PipelineExecution.list_steps` (ListPipelineExecutionSteps) and each step's
Describe* result.
"""

from __future__ import annotations

import collections
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
from emulator.errors import DockerUnavailable, EmulatorError, InputNotFound, Interrupted, InvalidSpec
from emulator.pipelines.definition import OPERATIONS, SUPPORTED_STEP_TYPES, Parameter, PipelineDefinition, StepDef
from emulator.pipelines.expressions import Scope, conform, resolve, to_text
from emulator.pipelines.steps import (
    DEFAULT_EXECUTORS,
    NEEDS_DOCKER,
    StepContext,
    StepExecutor,
    StepOutcome,
)
from emulator.runtime import session as _session
from emulator.runtime.container import LogSink
from emulator.runtime.docker import DockerSeam
from emulator.runtime.lifecycle import BackgroundJob, Job
from emulator.runtime.session import Session
from emulator.storage.s3 import S3, is_s3, join_uri

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EXECUTORS",
    "SUPPORTED_STEP_TYPES",
    "Parameter",
    "PipelineDefinition",
    "PipelineExecution",
    "StepState",
]

DEFAULT_MAX_PARALLEL = 4
TERMINAL = frozenset({"Succeeded", "Failed", "Stopped", "NotExecuted"})
_RUNNING = ("Starting", "Executing")
_LOG_TAIL_LINES = 30
_STOPPED = "stopped by the user"

StepLogSink = Callable[[str, str, str], None]
"""Called with (step name, host, line) for every line a step's containers print."""


class _StepStopped(Exception):
    """Raised to a step that would start its job after the execution was stopped."""


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


class PipelineExecution(BackgroundJob):
    """One execution of a pipeline. Like StartPipelineExecution; :meth:`run` blocks until it ends.

    It follows the job contract: :meth:`start` / :meth:`wait`, :meth:`run` (Ctrl-C stops the running steps'
    jobs and raises :class:`~emulator.errors.Interrupted`), :meth:`stop` from any thread (like
    StopPipelineExecution) and :meth:`describe` at any time.

    Args:
        definition: a :class:`PipelineDefinition`, a dict, the JSON text of ``pipeline.definition()``
            or the path of a JSON/YAML file.
        parameters: parameter overrides (strings are typed by each parameter's Type).
        session: the config, Docker client and S3 every step's job shares (default: one of the execution's
            own, from ``config``, ``docker`` and ``s3``, closed when the execution ends).
        max_parallel: most steps running at once (default: the definition's
            ``ParallelismConfiguration.MaxParallelExecutionSteps``, else 4).
        executors: step type -> executor, replacing the built-in ones (tests inject fakes).
        on_change: called on every status change, e.g. to draw a status table.
        log_sink: called with (step, host, line) for container output.

    Raises:
        InvalidSpec: the definition or a parameter is invalid.
    """

    kind = "pipeline"

    def __init__(
        self,
        definition: PipelineDefinition | str | Path | Mapping[str, Any],
        *,
        parameters: Mapping[str, Any] | None = None,
        session: Session | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        max_parallel: int | None = None,
        executors: Mapping[str, StepExecutor] | None = None,
        on_change: ChangeListener | None = None,
        log_sink: StepLogSink | None = None,
        name: str | None = None,
        on_job: Callable[[Job], None] | None = None,
    ) -> None:
        super().__init__()
        #: Called with each step's job before it starts (the API server answers Describe* for step jobs).
        self._on_job = on_job
        #: The first engine fault a step met: the execution is Failed, and wait() re-raises it (exit 3).
        self._engine_error: DockerUnavailable | None = None
        self.definition = (
            definition if isinstance(definition, PipelineDefinition) else PipelineDefinition.load(definition, name=name)
        )
        self.parameters = self.definition.parameter_values(parameters)
        self.max_parallel = max_parallel or self.definition.max_parallel or DEFAULT_MAX_PARALLEL
        if self.max_parallel < 1:
            raise InvalidSpec(f"max_parallel must be at least 1, got {self.max_parallel}")
        self._session, self._own_session = Session.of(session, config, docker, s3)
        self.config = self._session.config
        self.executors = {**DEFAULT_EXECUTORS, **(executors or {})}
        self.execution_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        self.name = f"execution-{self.execution_id}"
        self.pipeline_arn = _session.arn(self.config, "pipeline", self.definition.name)
        self.arn = f"{self.pipeline_arn}/execution/{self.execution_id}"
        self.states = {n: StepState(n, s.type, s.display_name) for n, s in self.definition.steps.items()}
        self.models: dict[str, dict[str, Any]] = {}
        self._on_change, self._log_sink = on_change, log_sink
        self._created = _session.now()
        #: Job name -> the job a step is running; stop() stops each of them.
        self._jobs: dict[str, Job] = {}
        self._workers: list[threading.Thread] = []
        self._wake = threading.Event()
        self._property_files: dict[tuple[str, str], Any] = {}
        self._update(
            PipelineArn=self.pipeline_arn,
            PipelineExecutionArn=self.arn,
            PipelineExecutionDisplayName=self.name,
            PipelineExecutionStatus="Executing",
            CreationTime=self._created,
            LastModifiedTime=self._created,
            ParallelismConfiguration={"MaxParallelExecutionSteps": self.max_parallel},
            PipelineParameters=[{"Name": k, "Value": to_text(v)} for k, v in self.parameters.items()],
        )

    @property
    def status(self) -> str:
        """Executing, Succeeded, Failed or Stopped."""
        return str(self.describe()["PipelineExecutionStatus"])

    @property
    def failure_reason(self) -> str | None:
        """Why the execution failed (or was stopped)."""
        reason = self.describe().get("FailureReason")
        return str(reason) if reason is not None else None

    # -- running (in the execution's thread) ------------------------------------------------------------------
    def _execute(self) -> None:
        """Run every step that can run.

        Raises:
            DockerUnavailable: a step needs containers and no Docker engine answers (re-raised by :meth:`wait`).
        """
        try:
            if any(s.type in NEEDS_DOCKER for s in self.definition.steps.values()):
                self._session.docker  # noqa: B018 - fail fast (exit 3) rather than once per step
            try:
                self._loop()
            except BaseException:
                self.stop()  # a bug in the scheduler: no job may outlive the execution
                for worker in self._workers:
                    worker.join()
                raise
            self._finish()
            if self._engine_error is not None:
                raise self._engine_error
        finally:
            if self._own_session:
                self._session.close()

    def _on_stop(self, grace_s: float | None) -> None:
        """Stop every running step's job (each cleans up its own containers); no further step starts."""
        with self._lock:
            jobs = list(self._jobs.values())
        logger.warning(
            "pipeline execution %s: stopping %s", self.execution_id, ", ".join(j.name for j in jobs) or "no job"
        )
        for job in jobs:
            try:
                job.stop(grace_s)
            except Exception:  # one job's failure to stop must not leave the others running
                logger.exception("stopping job %s failed", job.name)
        self._wake.set()

    def _interrupted_message(self) -> str:
        return (
            f"pipeline execution {self.execution_id} was interrupted (Ctrl-C): running steps were "
            "stopped and their containers removed"
        )

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
        # One thread per running step, at most max_parallel at once; the worker records its own outcome.
        self._set(state, "Starting", start=time.time())
        worker = threading.Thread(target=self._run_step, args=(state.name,), name=f"pipeline-step-{state.name}")
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
        return "the execution was stopped" if self.stop_requested else "run"

    def _run_step(self, name: str) -> None:
        try:
            self._record(name, self._outcome(name))
        finally:
            self._wake.set()

    def _outcome(self, name: str) -> StepOutcome:
        step, state = self.definition.steps[name], self.states[name]
        try:
            if self.stop_requested:
                raise _StepStopped
            job_name = _job_name(self.execution_id, name)
            arguments = self._arguments(step, job_name)
            self._set(state, "Executing", job_name=job_name if step.type in OPERATIONS else None)
            ctx = StepContext(
                step, arguments, job_name, self._session, self.models, self._step_sink(state), self._run_job
            )
            return self.executors[step.type](ctx)
        except (_StepStopped, Interrupted):
            return StepOutcome({}, "Stopped", _STOPPED)
        except EmulatorError as exc:
            if self.stop_requested:  # whatever the stop cut short is not the step's error
                return StepOutcome({}, "Stopped", f"{_STOPPED} ({exc})")
            if isinstance(exc, DockerUnavailable):
                self._engine_error = self._engine_error or exc  # the execution ends Failed, then raises it (exit 3)
            return StepOutcome({}, "Failed", str(exc))
        except Exception as exc:  # a bug, not the user's error: keep the traceback in the log
            logger.exception("step %s: unexpected error", name)
            return StepOutcome({}, "Failed", f"internal error: {type(exc).__name__}: {exc}")

    def _run_job(self, job: Job) -> dict[str, Any]:
        """Start a step's job and wait for its end; until then :meth:`stop` can stop it."""
        with self._lock:  # under the lock: a stop either sees the job here or is seen here
            if self.stop_requested:
                raise _StepStopped
            self._jobs[job.name] = job
        try:
            if self._on_job is not None:
                self._on_job(job)
            job.start()
            return job.wait()
        finally:
            with self._lock:
                self._jobs.pop(job.name, None)

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
        if outcome.status == "Stopped" and not self.stop_requested:
            # A job that stopped on its own (MaxRuntimeInSeconds) did not succeed: its dependants must not run.
            outcome.status = "Failed"
        state = self.states[name]
        with self._lock:
            state.properties, state.metadata = outcome.properties, outcome.metadata
            state.failure_reason = outcome.failure_reason if outcome.status != "Succeeded" else None
        note = outcome.note if outcome.status == "Succeeded" else (outcome.failure_reason or outcome.note)
        self._set(state, outcome.status, note=note, end=time.time())

    def _finish(self) -> None:
        for state in self.states.values():
            if state.status == "Pending":  # its upstream never ended: cannot happen once the loop is done
                self._set(state, "NotExecuted", note="the execution was stopped")
        failed = [s for s in self.states.values() if s.status == "Failed"]
        if self.stop_requested:
            status, reason = "Stopped", _STOPPED
        elif failed:
            status = "Failed"
            reason = "; ".join(f"step {s.name} ({s.type}) failed: {s.failure_reason}" for s in failed)
        else:
            status, reason = "Succeeded", None
        self._update(PipelineExecutionStatus=status, FailureReason=reason, LastModifiedTime=_session.now())
        logger.info("pipeline execution %s: %s", self.execution_id, status)
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
                raw = self._session.s3.read_bytes(location)
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
            self._update(LastModifiedTime=_session.now())
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

    def list_steps(self) -> list[dict[str, Any]]:
        """Like ListPipelineExecutionSteps' ``PipelineExecutionSteps``, in the order the steps started."""
        with self._lock:
            started = sorted((s for s in self.states.values() if s.start is not None), key=lambda s: s.start or 0.0)
            rest = [s for s in self.states.values() if s.start is None]
            return [_step_summary(s, self.definition.steps[s.name]) for s in [*started, *rest]]

    def step_results(self) -> dict[str, dict[str, Any]]:
        """Each step that ran: its Describe*-shaped properties (what ``Steps.<name>.<path>`` reads)."""
        with self._lock:
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
