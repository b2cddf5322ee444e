"""Hyperparameter tuning jobs: Create, Describe, Stop, List and ListTrainingJobsFor... over
:class:`~emulator.tuning.TuningJob`.

Each training job of a tuning job is recorded like any other (DescribeTrainingJob, ListTrainingJobs, logs in
CloudWatch, its model deployable), with ``TuningJobArn`` set. ListTrainingJobsForHyperParameterTuningJob reads
the live tuning job, or, after a restart, the stored training jobs that name the tuning job.
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.api.protocol import already_exists, validation
from emulator.api.registry import KINDS, Registry, page
from emulator.errors import EmulatorError
from emulator.tuning import TuningJob, list_training_jobs

logger = logging.getLogger(__name__)

KIND = "HyperParameterTuningJob"


class TuningOperations(Registry):
    """The hyperparameter tuning operations."""

    def create_hyper_parameter_tuning_job(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["HyperParameterTuningJobName"]
        with self._lock:
            if name in self._records[KIND]:
                raise already_exists(KINDS[KIND].noun, self._records[KIND][name].arn)
        request = {k: v for k, v in p.items() if k != "Tags"}
        try:
            job = TuningJob(
                request,
                session=self.session,
                sink_for=lambda training: self.logs.job_sink("training", training),
                on_training_job=self._register_step_job,
                on_change=self._store_training_jobs,
                parents=self._tuning_parents(request),
            )
        except EmulatorError as exc:
            raise validation(str(exc)) from None
        record = self._new(KIND, name, job.describe(), p.get("Tags"))
        with self._lock:
            self._live[(KIND, name)] = job
        job.start()
        self._watch(KIND, record, job)
        return {"HyperParameterTuningJobArn": record.arn}

    def describe_hyper_parameter_tuning_job(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._get(KIND, p["HyperParameterTuningJobName"])
        live = self._live.get((KIND, record.name))
        if live is not None:
            record.data = live.describe()
        return dict(record.data)

    def stop_hyper_parameter_tuning_job(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._get(KIND, p["HyperParameterTuningJobName"])
        live = self._live.get((KIND, record.name))
        if live is not None:
            live.stop()
        return {}

    def list_hyper_parameter_tuning_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            names = list(self._records[KIND])
        rows: list[dict[str, Any]] = []
        keep = (
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobArn",
            "HyperParameterTuningJobStatus",
            "CreationTime",
            "HyperParameterTuningEndTime",
            "LastModifiedTime",
            "TrainingJobStatusCounters",
            "ObjectiveStatusCounters",
        )
        for name in names:
            d = self.describe_hyper_parameter_tuning_job({"HyperParameterTuningJobName": name})
            config = d["HyperParameterTuningJobConfig"]
            row = {k: d[k] for k in keep if k in d}
            row.update(Strategy=config["Strategy"], ResourceLimits=config["ResourceLimits"])
            rows.append(row)
        return self._list(KIND, p, rows)

    def list_training_jobs_for_hyper_parameter_tuning_job(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._get(KIND, p["HyperParameterTuningJobName"])
        live = self._live.get((KIND, record.name))
        summaries = live.training_job_summaries() if live is not None else self._stored_summaries(record.data)
        try:
            rows = list_training_jobs(
                summaries,
                status_equals=p.get("StatusEquals"),
                sort_by=p.get("SortBy", "Name"),
                sort_order=p.get("SortOrder", "Ascending"),
            )
        except EmulatorError as exc:
            raise validation(str(exc)) from None
        return page(rows, "TrainingJobSummaries", p)

    # -- helpers -------------------------------------------------------------------------------------------
    def _store_training_jobs(self, job: TuningJob) -> None:
        """After each change: the stored records of its ended training jobs (a job without an objective is Failed)."""
        for training in job.training_jobs():
            if not training.done:
                continue
            with self._lock:
                record = self._records["TrainingJob"].get(training.name)
            if record is not None:
                record.data = training.describe()
                self.store.put(record)

    def _stored_summaries(self, describe: dict[str, Any]) -> list[dict[str, Any]]:
        """The summaries of a tuning job that ran before a restart, from its stored training jobs."""
        arn = describe.get("HyperParameterTuningJobArn")
        objective = describe["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") or {}
        with self._lock:
            trainings = [r.data for r in self._records["TrainingJob"].values() if r.data.get("TuningJobArn") == arn]
        config = describe["HyperParameterTuningJobConfig"]
        definitions = describe.get("TrainingJobDefinitions") or [describe.get("TrainingJobDefinition") or {}]
        tuned = {
            r["Name"]
            for block in [
                config.get("ParameterRanges") or {},
                *(d.get("HyperParameterRanges") or {} for d in definitions),
            ]
            for ranges in block.values()
            for r in ranges
        }
        out = []
        for t in trainings:
            summary: dict[str, Any] = {
                "TrainingJobName": t["TrainingJobName"],
                "TrainingJobArn": t["TrainingJobArn"],
                "TuningJobName": describe["HyperParameterTuningJobName"],
                "CreationTime": t["CreationTime"],
                "TrainingJobStatus": t["TrainingJobStatus"],
                "TunedHyperParameters": {k: v for k, v in (t.get("HyperParameters") or {}).items() if k in tuned},
            }
            for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
                if t.get(key):
                    summary[key] = t[key]
            value = next(
                (
                    m["Value"]
                    for m in t.get("FinalMetricDataList", [])
                    if m["MetricName"] == objective.get("MetricName")
                ),
                None,
            )
            if value is not None:
                summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                    "Type": objective.get("Type"),
                    "MetricName": objective["MetricName"],
                    "Value": value,
                }
            summary["ObjectiveStatus"] = "Succeeded" if value is not None else "Failed"
            out.append(summary)
        return out

    def _tuning_parents(self, request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """WarmStartConfig's parents this server knows, name -> their training job summaries."""
        parents: dict[str, list[dict[str, Any]]] = {}
        for entry in (request.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []:
            name = entry.get("HyperParameterTuningJobName") if isinstance(entry, dict) else None
            if not name:
                continue
            try:
                parents[name] = self.list_training_jobs_for_hyper_parameter_tuning_job(
                    {"HyperParameterTuningJobName": name, "MaxResults": 10**6}
                )["TrainingJobSummaries"]
            except Exception:  # an unknown parent: the tuning job's own check names it
                logger.debug("parent %s not found", name, exc_info=True)
        return parents
