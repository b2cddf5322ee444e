"""Hyperparameter tuning jobs, like SageMaker's CreateHyperParameterTuningJob / DescribeHyperParameterTuningJob.

``TuningJob(request).run()`` parses the request (:mod:`emulator.tuning.spec`), then runs training jobs
(:class:`~emulator.training.TrainingJob`, named ``<tuning-job-name>-NNN-<8 hex>`` as on the platform) up to
MaxNumberOfTrainingJobs, MaxParallelTrainingJobs at once (bounded by this machine's cores and memory), each with
the hyperparameters the strategy (:mod:`emulator.tuning.strategy`) asks for. The objective is read from each
job's logs with its MetricDefinitions: every match is an intermediate value (early stopping compares them), the
last one is the job's final objective. A job that emits none ends Failed with the platform's reason. The result is
DescribeHyperParameterTuningJob's shape; :meth:`TuningJob.training_job_summaries` is
ListTrainingJobsForHyperParameterTuningJob's.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator import constants
from emulator.config import EmulatorConfig
from emulator.errors import DockerUnavailable, EmulatorError, InvalidSpec
from emulator.runtime import session as _session
from emulator.runtime.container import LogSink, default_log_sink
from emulator.runtime.docker import DockerSeam
from emulator.runtime.names import UniqueNameJob
from emulator.runtime.resources import resources_for
from emulator.runtime.session import Session
from emulator.storage.locations import absolute, is_s3
from emulator.storage.s3 import S3
from emulator.training import TrainingJob
from emulator.training.groups import instance_groups
from emulator.training.plan import metric_patterns
from emulator.tuning.spec import Definition, TuningSpec, parse, training_job_name
from emulator.tuning.strategy import Strategy, Trial

__all__ = ["TuningJob", "list_training_jobs", "local_parallelism"]

logger = logging.getLogger(__name__)

#: How often the scheduler looks at its running jobs.
_TICK_S = 0.2
#: Finished tuning jobs of this process: name -> their training job summaries (WarmStartConfig reads them).
_finished: dict[str, list[dict[str, Any]]] = {}
_finished_lock = threading.Lock()
#: The file a tuning job leaves beside its training jobs' outputs (a later WarmStartConfig reads it).
RESULTS_FILE = "tuning-job.json"


@dataclass
class _Run:
    """One training job of the tuning job, while it runs and after."""

    trial: Trial
    definition: int
    job: TrainingJob
    summary: dict[str, Any]
    regex: Any
    steps: int = 0
    last: float | None = None
    trails: bool = False
    lines: list[str] = field(default_factory=list)


def local_parallelism(requested: int, instance_type: str, instance_count: int = 1) -> tuple[int, str]:
    """How many training jobs run at once here: MaxParallelTrainingJobs, bounded by cores and memory.

    Returns the number and a note saying what bounded it.
    """
    cores = os.cpu_count() or 1
    try:
        memory = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        memory = 0
    per_job = resources_for(instance_type).memory_bytes * max(1, instance_count)
    by_memory = max(1, memory // per_job) if memory and per_job else requested
    by_cores = max(1, cores // max(1, instance_count))
    n = max(1, min(requested, by_cores, by_memory))
    gib = memory / 2**30
    note = f"{n} at once (MaxParallelTrainingJobs {requested}; this machine: {cores} cores, {gib:.0f} GiB"
    note += f", {instance_type} x {instance_count} needs {per_job / 2**30:.0f} GiB)" if per_job else ")"
    return n, note


class TuningJob(UniqueNameJob):
    """One hyperparameter tuning job. Like CreateHyperParameterTuningJob; :meth:`run` blocks and returns the
    DescribeHyperParameterTuningJob shape.

    Args:
        request: a CreateHyperParameterTuningJob request (dict, or a YAML/JSON file).
        session: the process's shared Docker client and S3 (a new one, closed at the end, if not given).
        log_sink: called with (``<training-job>/<host>``, line) for every line the containers print.
        on_training_job: called with each :class:`TrainingJob` before it starts (the API server records it).
        sink_for: the log sink of one training job, by its name (instead of ``log_sink``).
        parents: WarmStartConfig's parents, name -> their training job summaries (default: the parents that ran
            in this process, or whose results file lies beside this job's output).
        max_parallel: at most this many at once (default: :func:`local_parallelism`).

    Raises:
        InvalidSpec: the request does not fit CreateHyperParameterTuningJob (nothing has run).
    """

    kind = "tuning"

    def __init__(
        self,
        request: Mapping[str, Any] | str | Path,
        *,
        session: Session | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
        sink_for: Callable[[str], LogSink | None] | None = None,
        on_training_job: Callable[[TrainingJob], None] | None = None,
        on_change: Callable[[TuningJob], None] | None = None,
        parents: Mapping[str, list[dict[str, Any]]] | None = None,
        max_parallel: int | None = None,
    ) -> None:
        super().__init__()
        self.spec: TuningSpec = parse(request)
        self.session, self._owns_session = Session.of(session, config, docker, s3)
        self.config = self.session.config
        self.name = self.spec.name
        self.request = self.spec.request
        self.arn = _session.arn(self.config, "hyper-parameter-tuning-job", self.name)
        # A heterogeneous cluster counts all its hosts, each as big as its largest instance type (an upper bound).
        groups = instance_groups(self.spec.definitions[0].training["ResourceConfig"])
        largest = max(groups, key=lambda g: resources_for(g.instance_type).memory_bytes)
        bound, self.parallelism_note = local_parallelism(
            self.spec.max_parallel, largest.instance_type, sum(g.count for g in groups)
        )
        self.parallel = max(1, min(bound, max_parallel or bound))
        self._sink = log_sink
        self._sink_for = sink_for
        self._on_training_job = on_training_job
        self._on_change = on_change
        self._runs: list[_Run] = []
        self._strategies = [
            Strategy(
                self.spec.strategy,
                d.ranges,
                maximize=self.spec.objective_type == "Maximize",
                early_stopping=self.spec.early_stopping,
                seed=self.spec.seed,
                min_resource=self.spec.min_resource,
                max_resource=self.spec.max_resource,
            )
            for d in self.spec.definitions
        ]
        try:
            self.warm_started = self._warm_start(parents)
            # Each definition's training request is checked now, before any container: a bad one is bad input.
            for d in self.spec.definitions:
                check = self._training_request(d, "check", dict.fromkeys((r.name for r in d.ranges), "0"))
                TrainingJob(check, session=self.session)
        except BaseException:
            if self._owns_session:
                self.session.close()
            raise
        #: (status, time) of each change of HyperParameterTuningJobStatus.
        self.transitions: list[tuple[str, datetime]] = []
        created = _session.now()
        self._describe = self._initial(created)
        self.transitions.append(("InProgress", created))

    # -- the Describe shapes -------------------------------------------------------------------------------
    def _initial(self, created: datetime) -> dict[str, Any]:
        req = self.request
        d: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobConfig": req["HyperParameterTuningJobConfig"],
            "HyperParameterTuningJobStatus": "InProgress",
            "CreationTime": created,
            "LastModifiedTime": created,
            "TrainingJobStatusCounters": dict.fromkeys(
                ("Completed", "InProgress", "RetryableError", "NonRetryableError", "Stopped"), 0
            ),
            "ObjectiveStatusCounters": dict.fromkeys(("Succeeded", "Pending", "Failed"), 0),
        }
        for key in ("TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig"):
            if req.get(key):
                d[key] = req[key]
        return d

    def training_job_summaries(self) -> list[dict[str, Any]]:
        """Every training job so far, in ListTrainingJobsForHyperParameterTuningJob's summary shape (launch order)."""
        with self._lock:
            return [copy.deepcopy(r.summary) for r in self._runs]

    def training_jobs(self) -> list[TrainingJob]:
        """The training job objects, in launch order (the best one's model serves like any training job's)."""
        with self._lock:
            return [r.job for r in self._runs]

    def best_training_job(self) -> TrainingJob | None:
        """The best job's :class:`TrainingJob` (None before one completed with an objective); its ``describe()`` is
        what ``Endpoint(..., model_data=...)`` and transform jobs take as a model."""
        best = self.describe().get("BestTrainingJob")
        return next((j for j in self.training_jobs() if best and j.name == best["TrainingJobName"]), None)

    # -- the work ------------------------------------------------------------------------------------------
    def _execute(self) -> None:
        try:
            self._schedule()
        finally:
            self._remember()
            if self._owns_session:
                self.session.close()

    def _schedule(self) -> None:
        spec = self.spec
        deadline = (_session.now().timestamp() + spec.max_runtime_s) if spec.max_runtime_s else None
        launched = 0
        running: list[_Run] = []
        ended_by = ""
        error: BaseException | None = None
        logger.info("tuning job %s: %d training jobs, %s", self.name, spec.max_jobs, self.parallelism_note)
        while True:
            if self.stop_requested:
                ended_by = "stop"
            elif deadline is not None and _session.now().timestamp() >= deadline:
                ended_by = ended_by or "deadline"
            elif not ended_by:
                ended_by = self._criteria_met()
            while not ended_by and error is None and len(running) < self.parallel and launched < spec.max_jobs:
                launched += 1
                running.append(self._launch(launched))
            for run in list(running):
                if run.steps and not run.trails:  # the jobs that ended since its last value may change the verdict
                    run.trails = self._strategies[run.definition].trails(run.trial)
                if run.trails and not run.job.stop_requested:
                    logger.info("%s: early stopping (its objective trails the median)", run.job.name)
                    run.job.stop()
                if ended_by in ("stop", "deadline") and not run.job.stop_requested:
                    run.job.stop(self._stop_grace_s if ended_by == "stop" else None)
                if run.job.done:
                    running.remove(run)
                    try:
                        self._finished_run(run)
                    except DockerUnavailable as exc:
                        error = exc
                        ended_by = "stop"
            if not running and (ended_by or error is not None or launched >= spec.max_jobs):
                break
            time.sleep(_TICK_S)
        self._end(ended_by)
        if error is not None:
            raise error

    def _criteria_met(self) -> str:
        spec = self.spec
        with self._lock:
            counters = self._describe["TrainingJobStatusCounters"]
            best = self._describe.get("BestTrainingJob")
            done = [r for r in self._runs if r.summary["TrainingJobStatus"] != "InProgress"]
        if not counters["Completed"] and counters["NonRetryableError"] >= constants.TUNING_FAILED_JOBS_BEFORE_FAILING:
            return "failures"
        if best is not None and spec.target_value is not None:
            value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
            if (value >= spec.target_value) if spec.objective_type == "Maximize" else (value <= spec.target_value):
                return "target"
        if best is not None and spec.not_improving:
            after = [r for r in done if r.summary["CreationTime"] > best["CreationTime"]]
            if len(after) >= spec.not_improving:
                self._update(TuningJobCompletionDetails={"NumberOfTrainingJobsObjectiveNotImproving": len(after)})
                return "not-improving"
        return ""

    def _launch(self, number: int) -> _Run:
        index = (number - 1) % len(self.spec.definitions)
        definition = self.spec.definitions[index]
        trial = self._strategies[index].ask()
        name = training_job_name(self.name, number)
        request = self._training_request(definition, name, trial.hyperparameters)
        regex = dict(metric_patterns(request["AlgorithmSpecification"]["MetricDefinitions"]))[
            definition.objective["MetricName"]
        ]
        holder: list[_Run] = []
        outer = (self._sink_for(name) if self._sink_for else None) or self._sink

        def sink(host: str, line: str) -> None:
            if holder:
                self._intermediate(holder[0], line)
            if outer is not None:
                outer(f"{name}/{host}" if self._sink_for is None else host, line)
            else:
                default_log_sink(f"{name}/{host}", line)

        job = TrainingJob(request, session=self.session, log_sink=sink)
        job._update(TuningJobArn=self.arn)
        now = _session.now()
        summary: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": job.arn,
            "TuningJobName": self.name,
            "CreationTime": now,
            "TrainingJobStatus": "InProgress",
            "TunedHyperParameters": dict(trial.hyperparameters),
            "ObjectiveStatus": "Pending",
        }
        if definition.name:
            summary["TrainingJobDefinitionName"] = definition.name
        run = _Run(trial, index, job, summary, regex)
        holder.append(run)
        with self._lock:
            self._runs.append(run)
            self._count(run, +1)
            self._describe["LastModifiedTime"] = now
        if self._on_training_job is not None:
            self._on_training_job(job)
        logger.info("%s: %s", name, " ".join(f"{k}={v}" for k, v in trial.hyperparameters.items()))
        job.start()
        self._changed()
        return run

    def _training_request(self, definition: Definition, name: str, tuned: Mapping[str, str]) -> dict[str, Any]:
        request: dict[str, Any] = copy.deepcopy(definition.training)
        request["TrainingJobName"] = name
        request["HyperParameters"] = {**definition.static, **tuned}
        return request

    def _intermediate(self, run: _Run, line: str) -> None:
        """A log line of a running job: each objective match is a step; the pruner says if the job trails."""
        for m in run.regex.finditer(line):
            try:
                value = float(m.group(1) if run.regex.groups else m.group(0))
            except (ValueError, IndexError):
                continue
            if not math.isfinite(value):
                continue
            run.steps += 1
            run.last = value
            if self._strategies[run.definition].report(run.trial, run.steps, value):
                run.trails = True

    def _finished_run(self, run: _Run) -> None:
        """A training job ended: its status, objective and the tuning job's counters and best job."""
        metric = self.spec.definitions[run.definition].objective["MetricName"]
        reason = None
        try:
            result = run.job.wait(0)
        except DockerUnavailable:
            self._settle(run, "Failed", None, "InternalServerError: the Docker engine stopped answering")
            raise
        except EmulatorError as exc:
            result = run.job.describe()
            reason = str(exc).split("\n", 1)[0]
        status = result.get("TrainingJobStatus", "Failed")
        value = next((m["Value"] for m in result.get("FinalMetricDataList", []) if m["MetricName"] == metric), None)
        if value is not None and not math.isfinite(value):  # "nan" or "inf" matched the regex: no objective
            value = None
        if status == "Completed" and value is None:
            status, reason = "Failed", constants.NO_OBJECTIVE_REASON
            run.job._update(TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=reason)
        elif status == "Stopped" and value is None:
            value = run.last
        if status == "Failed" and reason is None:
            reason = result.get("FailureReason") or "AlgorithmError: the training job failed"
        for key in ("TrainingStartTime", "TrainingEndTime"):
            if result.get(key):
                run.summary[key] = result[key]
        self._settle(run, status, value, reason, seconds=int(result.get("BillableTimeInSeconds") or 0))

    def _settle(self, run: _Run, status: str, value: float | None, reason: str | None, *, seconds: int = 0) -> None:
        early = status == "Stopped" and run.trails
        self._strategies[run.definition].tell(run.trial, value if status == "Completed" else None, stopped_early=early)
        with self._lock:
            self._count(run, -1)
            run.summary["TrainingJobStatus"] = status
            if reason:
                run.summary["FailureReason"] = reason[: constants.MAX_FAILURE_REASON_CHARS]
            if value is not None:
                run.summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                    "Type": self.spec.objective_type,
                    "MetricName": self.spec.definitions[run.definition].objective["MetricName"],
                    "Value": value,
                }
            run.summary["ObjectiveStatus"] = "Succeeded" if value is not None else "Failed"
            self._count(run, +1)
            consumed = self._describe.setdefault("ConsumedResources", {"RuntimeInSeconds": 0})
            consumed["RuntimeInSeconds"] += seconds
            if status == "Completed" and value is not None and _better(self.spec, run.summary, self._describe):
                self._describe["BestTrainingJob"] = dict(run.summary)
                self._describe["OverallBestTrainingJob"] = dict(run.summary)
            self._describe["LastModifiedTime"] = _session.now()
        logger.info(
            "%s: %s%s",
            run.job.name,
            status,
            f", {run.summary['ObjectiveStatus']} objective {value:g}"
            if value is not None
            else f" ({reason})"
            if reason
            else "",
        )
        self._changed()

    def _count(self, run: _Run, delta: int) -> None:
        status = run.summary["TrainingJobStatus"]
        key = {"Failed": "NonRetryableError"}.get(status, status)
        self._describe["TrainingJobStatusCounters"][key] += delta
        self._describe["ObjectiveStatusCounters"][run.summary["ObjectiveStatus"]] += delta

    def _end(self, ended_by: str) -> None:
        with self._lock:
            counters = self._describe["TrainingJobStatusCounters"]
            if ended_by == "stop":
                status = "Stopped"
            elif counters["Completed"] == 0 or "BestTrainingJob" not in self._describe:
                status = "Failed"
                failed = counters["NonRetryableError"]
                self._describe["FailureReason"] = (
                    f"No training job succeeded after {failed} attempts. Please take a look at the training job "
                    "failures to get more details."
                    if failed
                    else "No training job ended with an objective metric."
                )
            else:
                status = "Completed"
            now = _session.now()
            self._describe["HyperParameterTuningJobStatus"] = status
            self._describe["HyperParameterTuningEndTime"] = now
            self._describe["LastModifiedTime"] = now
            self.transitions.append((status, now))
        self._changed()

    def _on_stop(self, grace_s: float | None) -> None:
        with self._lock:
            if self._describe.get("HyperParameterTuningJobStatus") == "InProgress":
                self._describe["HyperParameterTuningJobStatus"] = "Stopping"
                self.transitions.append(("Stopping", _session.now()))
            runs = [r for r in self._runs if not r.job.done]
        for run in runs:
            run.job.stop(grace_s)

    def _interrupted_message(self) -> str:
        return f"tuning job {self.name} was interrupted (Ctrl-C): its training jobs were stopped and removed"

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self)
            except Exception:  # a display must not end the tuning job
                logger.debug("on_change failed", exc_info=True)

    # -- warm start ----------------------------------------------------------------------------------------
    def _warm_start(self, parents: Mapping[str, list[dict[str, Any]]] | None) -> int:
        """Feed the parents' finished jobs to the strategy; returns how many were taken."""
        if not self.spec.warm_start_parents:
            return 0
        taken = 0
        for parent in self.spec.warm_start_parents:
            summaries = (parents or {}).get(parent)
            if summaries is None:
                summaries = self._parent_results(parent)
            for s in summaries:
                metric = s.get("FinalHyperParameterTuningJobObjectiveMetric")
                if not metric or s.get("TrainingJobStatus") != "Completed":
                    continue
                for strategy in self._strategies:
                    if strategy.seen(s.get("TunedHyperParameters") or {}, float(metric["Value"])):
                        taken += 1
                        break
        logger.info("tuning job %s: warm start from %d earlier training jobs", self.name, taken)
        return taken

    def _parent_results(self, parent: str) -> list[dict[str, Any]]:
        with _finished_lock:
            if parent in _finished:
                return _finished[parent]
        path = self._results_path(parent)
        if path is not None and path.is_file():
            data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["TrainingJobSummaries"]
            return data
        raise InvalidSpec(
            f"WarmStartConfig: parent tuning job {parent!r} is unknown (it did not run in this process and "
            f"{path or 'its results file'} does not exist); run it first or fix the name"
        )

    def _results_path(self, name: str) -> Path | None:
        output = str(self.spec.definitions[0].training["OutputDataConfig"]["S3OutputPath"])
        return None if is_s3(output) else Path(absolute(output)) / name / RESULTS_FILE

    def _remember(self) -> None:
        summaries = self.training_job_summaries()
        with _finished_lock:
            _finished[self.name] = summaries
        path = self._results_path(self.name)
        if path is None or not summaries:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            body = {"Describe": self.describe(), "TrainingJobSummaries": summaries}
            path.write_text(json.dumps(body, default=str, indent=1), encoding="utf-8")
        except OSError as exc:
            logger.warning("could not write %s: %s", path, exc)


def _better(spec: TuningSpec, summary: Mapping[str, Any], describe: Mapping[str, Any]) -> bool:
    best = describe.get("BestTrainingJob")
    if best is None:
        return True
    new = summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    old = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    return bool(new > old if spec.objective_type == "Maximize" else new < old)


_SORT_KEYS = ("Name", "CreationTime", "Status", "FinalObjectiveMetricValue")


def list_training_jobs(
    summaries: Iterable[Mapping[str, Any]],
    *,
    status_equals: str | None = None,
    sort_by: str = "Name",
    sort_order: str = "Ascending",
) -> list[dict[str, Any]]:
    """ListTrainingJobsForHyperParameterTuningJob's filter and order over summaries.

    ``sort_by`` is Name (the API's default), CreationTime, Status or FinalObjectiveMetricValue; jobs without an
    objective value come last whatever the order, as on the platform.
    """
    if sort_by not in _SORT_KEYS:
        raise InvalidSpec(f"SortBy {sort_by!r} is not one of {', '.join(_SORT_KEYS)}")
    rows = [dict(s) for s in summaries if status_equals is None or s.get("TrainingJobStatus") == status_equals]
    reverse = sort_order == "Descending"
    if sort_by == "FinalObjectiveMetricValue":
        with_value = [r for r in rows if "FinalHyperParameterTuningJobObjectiveMetric" in r]
        without = [r for r in rows if "FinalHyperParameterTuningJobObjectiveMetric" not in r]
        with_value.sort(key=lambda r: r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=reverse)
        return with_value + without
    key: Callable[[Mapping[str, Any]], Any] = {
        "Name": lambda r: r["TrainingJobName"],
        "CreationTime": lambda r: r["CreationTime"],
        "Status": lambda r: r["TrainingJobStatus"],
    }[sort_by]
    return sorted(rows, key=key, reverse=reverse)
