"""What every operation of the API server shares: the records, the live objects, listing, paging and tags."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator.api.logs import CloudWatchLogs
from emulator.api.protocol import already_exists, not_found, validation
from emulator.api.store import Record, Store
from emulator.processing import ProcessingJob
from emulator.runtime import session as _session
from emulator.runtime.lifecycle import Job
from emulator.runtime.session import Session
from emulator.serving.variants import VariantEndpoint
from emulator.training import TrainingJob
from emulator.transform import TransformJob

logger = logging.getLogger(__name__)

DEFAULT_MAX_RESULTS = 100
#: How often a running job's Describe snapshot is written to the store.
PERSIST_EVERY_S = 1.0


@dataclass(frozen=True)
class Kind:
    """How a resource kind is named in the API."""

    name: str  # "TrainingJob"
    arn_resource: str  # "training-job"
    status_field: str | None  # "TrainingJobStatus"
    summaries: str  # the List* response member
    noun: str  # in messages


KINDS = {
    k.name: k
    for k in (
        Kind("TrainingJob", "training-job", "TrainingJobStatus", "TrainingJobSummaries", "training job"),
        Kind("ProcessingJob", "processing-job", "ProcessingJobStatus", "ProcessingJobSummaries", "processing job"),
        Kind("TransformJob", "transform-job", "TransformJobStatus", "TransformJobSummaries", "transform job"),
        Kind("Model", "model", None, "Models", "model"),
        Kind("EndpointConfig", "endpoint-config", None, "EndpointConfigs", "endpoint configuration"),
        Kind("Endpoint", "endpoint", "EndpointStatus", "Endpoints", "endpoint"),
        Kind("Pipeline", "pipeline", "PipelineStatus", "PipelineSummaries", "pipeline"),
        Kind(
            "PipelineExecution",
            "pipeline-execution",
            "PipelineExecutionStatus",
            "PipelineExecutionSummaries",
            "pipeline execution",
        ),
        Kind(
            "HyperParameterTuningJob",
            "hyper-parameter-tuning-job",
            "HyperParameterTuningJobStatus",
            "HyperParameterTuningJobSummaries",
            "hyperparameter tuning job",
        ),
    )
}
JOB_CLASSES: dict[str, type[Any]] = {
    "TrainingJob": TrainingJob,
    "ProcessingJob": ProcessingJob,
    "TransformJob": TransformJob,
}
_TERMINAL = {"Completed", "Failed", "Stopped", "Succeeded"}


class Registry:
    """The records of one API server, the objects that run, and the operations on records of any kind."""

    def __init__(self, session: Session, store: Store, logs: CloudWatchLogs) -> None:
        self.session = session
        self.config = session.config
        self.store = store
        self.logs = logs
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Record]] = {k: {} for k in KINDS}
        self._live: dict[tuple[str, str], Any] = {}  # (kind, name) -> job, VariantEndpoint or PipelineExecution
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._starting: dict[str, VariantEndpoint] = {}  # endpoints not InService yet

    # -- records -------------------------------------------------------------------------------------------
    def _arn(self, kind: str, name: str) -> str:
        if kind == "PipelineExecution":  # an execution is named by its ARN (the pipeline's ARN + /execution/<id>)
            return name
        return _session.arn(self.config, KINDS[kind].arn_resource, name)

    def _new(self, kind: str, name: str, data: dict[str, Any], tags: list[dict[str, str]] | None) -> Record:
        with self._lock:
            if name in self._records[kind]:
                raise already_exists(KINDS[kind].noun, self._records[kind][name].arn)
            record = Record(kind, name, self._arn(kind, name), _session.now(), data, list(tags or []))
            self._records[kind][name] = record
        self.store.put(record)
        return record

    def _get(self, kind: str, name: str) -> Record:
        with self._lock:
            record = self._records[kind].get(name)
            if record is None:  # names are unique regardless of case: the platform's ARNs carry them lower-cased
                record = next((r for n, r in self._records[kind].items() if n.lower() == name.lower()), None)
        if record is None:
            raise not_found(KINDS[kind].noun, name)
        return record

    def _describe(self, kind: str, name: str) -> dict[str, Any]:
        record = self._get(kind, name)
        live = self._live.get((kind, record.name))
        if live is not None and kind in JOB_CLASSES:
            record.data = live.describe()
        return dict(record.data)

    def _watch(self, kind: str, record: Record, job: Job) -> None:
        """Keep the stored record of a running job current, then store its end."""

        def watch() -> None:
            while True:
                try:
                    job.wait(timeout_s=PERSIST_EVERY_S)
                except Exception as exc:  # the job could not run at all: it failed
                    data = job.describe()
                    status = KINDS[kind].status_field or "Status"
                    data[status] = "Failed"
                    data.setdefault("FailureReason", str(exc).split("\n", 1)[0][:1024])
                    record.data = data
                    break
                record.data = job.describe()
                if getattr(job, "done", False):
                    break
                self.store.put(record)
            self.store.put(record)
            with self._lock:
                self._live.pop((kind, record.name), None)

        t = threading.Thread(target=watch, name=f"watch-{record.name}"[:60], daemon=True)
        self._threads.append(t)
        t.start()

    def _list(self, kind: str, params: Mapping[str, Any], rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        info = KINDS[kind]
        if rows is None:
            with self._lock:
                names = list(self._records[kind])
            rows = [self._describe(kind, n) for n in names]
        contains = params.get("NameContains")
        if contains:
            rows = [r for r in rows if contains.lower() in name_of(kind, r).lower()]
        status = params.get("StatusEquals")
        if status and info.status_field:
            rows = [r for r in rows if r.get(info.status_field) == status]
        after, before = params.get("CreationTimeAfter"), params.get("CreationTimeBefore")
        if isinstance(after, datetime):
            rows = [r for r in rows if isinstance(r.get("CreationTime"), datetime) and r["CreationTime"] > after]
        if isinstance(before, datetime):
            rows = [r for r in rows if isinstance(r.get("CreationTime"), datetime) and r["CreationTime"] < before]
        sort_by = params.get("SortBy", "CreationTime")

        def order(row: Mapping[str, Any]) -> Any:
            if sort_by == "Name":
                return name_of(kind, row)
            if sort_by == "Status" and info.status_field:
                return str(row.get(info.status_field) or "")
            created = row.get("CreationTime")
            return created.timestamp() if isinstance(created, datetime) else 0.0

        rows.sort(key=order, reverse=params.get("SortOrder", "Descending") == "Descending")
        return page(rows, info.summaries, params)

    def _register_step_job(self, job: Any) -> None:
        kind = next((k for k, cls in JOB_CLASSES.items() if isinstance(job, cls)), None)
        if kind is None:
            return
        with self._lock:
            record = Record(kind, job.name, self._arn(kind, job.name), _session.now(), job.describe(), [])
            self._records[kind][job.name] = record
            self._live[(kind, job.name)] = job
        self.store.put(record)
        self._watch(kind, record, job)

    def _delete(self, kind: str, name: str) -> dict[str, Any]:
        self._get(kind, name)
        with self._lock:
            self._records[kind].pop(name, None)
        self.store.delete(kind, name)
        return {}

    # -- tags ----------------------------------------------------------------------------------------------
    def _by_arn(self, arn: str) -> Record:
        with self._lock:
            for records in self._records.values():
                for record in records.values():
                    if record.arn == arn:
                        return record
        raise not_found("resource", arn)

    def add_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._by_arn(p["ResourceArn"])
        merged = {t["Key"]: t.get("Value", "") for t in record.tags}
        merged.update({t["Key"]: t.get("Value", "") for t in p["Tags"]})
        record.tags = [{"Key": k, "Value": v} for k, v in merged.items()]
        self.store.put(record)
        return {"Tags": p["Tags"]}

    def list_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        return page(list(self._by_arn(p["ResourceArn"]).tags), "Tags", p)

    def delete_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._by_arn(p["ResourceArn"])
        record.tags = [t for t in record.tags if t["Key"] not in set(p["TagKeys"])]
        self.store.put(record)
        return {}


def name_of(kind: str, row: Mapping[str, Any]) -> str:
    for key in (f"{kind}Name", "PipelineExecutionDisplayName", "PipelineName"):
        if row.get(key):
            return str(row[key])
    return ""


def page(rows: list[dict[str, Any]], member: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """NextToken paging: the token is the offset of the next page."""
    try:
        start = int(params.get("NextToken") or 0)
    except ValueError:
        raise validation("NextToken is not one this server issued.") from None
    size = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
    out: dict[str, Any] = {member: rows[start : start + size]}
    if start + size < len(rows):
        out["NextToken"] = str(start + size)
    return out
