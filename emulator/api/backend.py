"""SageMaker's operations over the emulator's own job classes: one method per operation, nothing re-implemented.

Each Create* builds the library's object (``TrainingJob``, ``ProcessingJob``, ``TransformJob``, ``Endpoint``,
``PipelineExecution``) with the server's one :class:`~emulator.runtime.session.Session` and starts it in the
background; Describe* reads the live object's snapshot (or the stored record once it has ended); Stop* calls its
``stop()``. Every record is written to the :class:`~emulator.api.store.Store`, so List*/Describe* answer after a
restart, and endpoints that were InService come back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator.api.logs import CloudWatchLogs
from emulator.api.protocol import ApiError, already_exists, not_found, validation
from emulator.api.store import Record, Store
from emulator.errors import EmulatorError, ModelError, ValidationError
from emulator.pipelines import PipelineDefinition, PipelineExecution
from emulator.processing import ProcessingJob
from emulator.runtime import session as _session
from emulator.runtime.lifecycle import Job
from emulator.runtime.session import Session
from emulator.serving import Endpoint
from emulator.training import TrainingJob
from emulator.transform import TransformJob

logger = logging.getLogger(__name__)

_DEFAULT_MAX_RESULTS = 100
#: How often a running job's Describe snapshot is written to the store.
_PERSIST_EVERY_S = 1.0


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
    )
}
_JOB_CLASSES: dict[str, type[Any]] = {
    "TrainingJob": TrainingJob,
    "ProcessingJob": ProcessingJob,
    "TransformJob": TransformJob,
}
_TERMINAL = {"Completed", "Failed", "Stopped", "Succeeded"}


class SageMakerBackend:
    """The state of one API server: records, live jobs and endpoints, and the operations over them."""

    def __init__(self, session: Session, store: Store, logs: CloudWatchLogs) -> None:
        self.session = session
        self.config = session.config
        self.store = store
        self.logs = logs
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Record]] = {k: {} for k in KINDS}
        self._live: dict[tuple[str, str], Any] = {}  # (kind, name) -> job, Endpoint or PipelineExecution
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._starting: dict[str, Endpoint] = {}  # endpoints not InService yet

    # -- life ----------------------------------------------------------------------------------------------
    def restore(self) -> None:
        """Load the records of an earlier run; what ran then ended with it; InService endpoints come back."""
        revive: list[Record] = []
        for record in self.store.all():
            if record.kind not in KINDS:
                continue
            kind = KINDS[record.kind]
            status = record.data.get(kind.status_field) if kind.status_field else None
            if record.kind == "Endpoint" and status in ("InService", "Creating", "Updating"):
                revive.append(record)
            elif status in ("InProgress", "Executing", "Stopping"):
                record.data[kind.status_field or "Status"] = "Stopped"
                record.data["FailureReason"] = "the API server stopped while it ran"
                self.store.put(record)
            self._records[record.kind][record.name] = record
        for record in revive:
            logger.info("bringing endpoint %s back", record.name)
            self._start_endpoint(record, record.data.get("EndpointConfigName", ""))

    def close(self) -> None:
        """Stop everything that runs (jobs, executions, endpoints) and wait until their containers are gone."""
        self._closing.set()
        with self._lock:
            live = list(self._live.items())
            starting = list(self._starting.values())
        for endpoint in starting:  # ends their readiness wait: bring_up then removes them
            endpoint.stop(grace_s=0)
        for (kind, _), obj in live:
            try:
                if kind == "Endpoint":
                    obj.close()
                else:
                    obj.stop(grace_s=0)
            except Exception:  # best effort: everything must be tried
                logger.exception("could not stop %s", kind)
        for (kind, _), obj in live:
            if kind != "Endpoint":
                try:
                    obj.wait(timeout_s=60)
                except Exception:
                    logger.debug("%s ended with an error while stopping", kind, exc_info=True)
        for t in self._threads:
            t.join(timeout=30)

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
        if live is not None and kind in _JOB_CLASSES:
            record.data = live.describe()
        return dict(record.data)

    def _watch(self, kind: str, record: Record, job: Job) -> None:
        """Keep the stored record of a running job current, then store its end."""

        def watch() -> None:
            while True:
                try:
                    job.wait(timeout_s=_PERSIST_EVERY_S)
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
            rows = [r for r in rows if contains.lower() in _name_of(kind, r).lower()]
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
                return _name_of(kind, row)
            if sort_by == "Status" and info.status_field:
                return str(row.get(info.status_field) or "")
            created = row.get("CreationTime")
            return created.timestamp() if isinstance(created, datetime) else 0.0

        rows.sort(key=order, reverse=params.get("SortOrder", "Descending") == "Descending")
        return _page(rows, info.summaries, params)

    # -- training, processing, transform -------------------------------------------------------------------
    def _create_job(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        name_field = f"{kind}Name"
        name = params[name_field]
        with self._lock:
            if name in self._records[kind]:
                raise already_exists(KINDS[kind].noun, self._records[kind][name].arn)
        request = {k: v for k, v in params.items() if k != "Tags"}
        sink = self.logs.job_sink(kind.removesuffix("Job").lower(), name)
        try:
            if kind == "TransformJob":
                models = {n: r.data["Request"] for n, r in self._records["Model"].items()}
                job: Any = TransformJob(request, models=models, session=self.session, log_sink=sink)
            else:
                job = _JOB_CLASSES[kind](request, session=self.session, log_sink=sink)
        except EmulatorError as exc:
            raise validation(str(exc)) from None
        record = self._new(kind, name, job.describe(), params.get("Tags"))
        with self._lock:
            self._live[(kind, name)] = job
        job.start()
        self._watch(kind, record, job)
        return {f"{kind}Arn": record.arn}

    def _register_step_job(self, job: Any) -> None:
        kind = next((k for k, cls in _JOB_CLASSES.items() if isinstance(job, cls)), None)
        if kind is None:
            return
        with self._lock:
            record = Record(kind, job.name, self._arn(kind, job.name), _session.now(), job.describe(), [])
            self._records[kind][job.name] = record
            self._live[(kind, job.name)] = job
        self.store.put(record)
        self._watch(kind, record, job)

    def _stop_job(self, kind: str, name: str) -> dict[str, Any]:
        record = self._get(kind, name)
        live = self._live.get((kind, record.name))
        if live is not None:
            live.stop()
        return {}

    def create_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._create_job("TrainingJob", p)

    def describe_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        description = self._describe("TrainingJob", p["TrainingJobName"])
        output = description.get("OutputDataConfig")
        if isinstance(output, dict) and "KmsKeyId" not in output:
            # The platform answers KmsKeyId "" when the request gave none; the SDK's Estimator.attach reads it.
            description = {**description, "OutputDataConfig": {"KmsKeyId": "", **output}}
        return description

    def stop_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._stop_job("TrainingJob", p["TrainingJobName"])

    def list_training_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("TrainingJob", p)

    def create_processing_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._create_job("ProcessingJob", p)

    def describe_processing_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("ProcessingJob", p["ProcessingJobName"])

    def stop_processing_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._stop_job("ProcessingJob", p["ProcessingJobName"])

    def list_processing_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("ProcessingJob", p)

    def create_transform_job(self, p: dict[str, Any]) -> dict[str, Any]:
        self._get("Model", p["ModelName"])
        return self._create_job("TransformJob", p)

    def describe_transform_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("TransformJob", p["TransformJobName"])

    def stop_transform_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._stop_job("TransformJob", p["TransformJobName"])

    def list_transform_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("TransformJob", p)

    # -- models and endpoint configs -----------------------------------------------------------------------
    def create_model(self, p: dict[str, Any]) -> dict[str, Any]:
        from emulator.serving import ModelDefinition

        request = {k: v for k, v in p.items() if k != "Tags"}
        try:
            ModelDefinition.from_request(request)
        except EmulatorError as exc:
            raise validation(str(exc)) from None
        name = p["ModelName"]
        arn = self._arn("Model", name)
        data = {**request, "ModelArn": arn, "Request": request}
        record = self._new("Model", name, data, p.get("Tags"))
        record.data["CreationTime"] = record.created
        self.store.put(record)
        return {"ModelArn": record.arn}

    def describe_model(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("Model", p["ModelName"])

    def delete_model(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._delete("Model", p["ModelName"])

    def list_models(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("Model", p)

    def create_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        request = {k: v for k, v in p.items() if k != "Tags"}
        record = self._new("EndpointConfig", name, {}, p.get("Tags"))
        record.data = {**request, "EndpointConfigArn": record.arn, "CreationTime": record.created}
        self.store.put(record)
        return {"EndpointConfigArn": record.arn}

    def describe_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("EndpointConfig", p["EndpointConfigName"])

    def delete_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._delete("EndpointConfig", p["EndpointConfigName"])

    def list_endpoint_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("EndpointConfig", p)

    def _delete(self, kind: str, name: str) -> dict[str, Any]:
        self._get(kind, name)
        with self._lock:
            self._records[kind].pop(name, None)
        self.store.delete(kind, name)
        return {}

    # -- endpoints -----------------------------------------------------------------------------------------
    def create_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name, config_name = p["EndpointName"], p["EndpointConfigName"]
        self._get("EndpointConfig", config_name)
        record = self._new("Endpoint", name, {}, p.get("Tags"))
        self._start_endpoint(record, config_name)
        return {"EndpointArn": record.arn}

    def _start_endpoint(self, record: Record, config_name: str, *, replacing: Endpoint | None = None) -> None:
        """Bring the endpoint up in the background: Creating (or Updating) -> InService or Failed."""
        try:
            config = self._get("EndpointConfig", config_name).data
            variant = dict(config["ProductionVariants"][0])
            model = self._get("Model", variant["ModelName"]).data["Request"]
        except ApiError as exc:
            record.data = self._endpoint_data(record, config_name, "Failed", failure=exc.message)
            self.store.put(record)
            raise
        status = "Updating" if replacing is not None else "Creating"
        record.data = self._endpoint_data(record, config_name, status, variant=variant)
        self.store.put(record)
        sink = self.logs.endpoint_sink(record.name, variant.get("VariantName", "AllTraffic"))
        try:
            endpoint = Endpoint.from_model(
                model, production_variant=variant, name=record.name, session=self.session, log_sink=sink
            )
        except EmulatorError as exc:
            record.data = self._endpoint_data(record, config_name, "Failed", variant=variant, failure=str(exc))
            self.store.put(record)
            return

        with self._lock:
            self._starting[record.name] = endpoint

        def bring_up() -> None:
            try:
                endpoint.start()
                failure = None
            except Exception as exc:
                failure = str(exc).split("\n", 1)[0]
            with self._lock:
                self._starting.pop(record.name, None)
                # Deleted meanwhile, or the server stops: nothing to record (a restart brings it back).
                gone = self._records["Endpoint"].get(record.name) is not record or self._closing.is_set()
                old = None
                if failure is None and not gone:
                    old = self._live.get(("Endpoint", record.name))
                    self._live[("Endpoint", record.name)] = endpoint
            if failure is not None or gone:
                endpoint.close()
            if old is not None and old is not endpoint:
                old.close()
            if gone:
                return
            if failure is None:
                record.data = self._endpoint_data(record, config_name, "InService", variant=variant)
            elif replacing is not None:  # a failed update leaves the old endpoint serving
                record.data = {**record.data, "EndpointStatus": "InService", "FailureReason": failure}
            else:
                record.data = self._endpoint_data(record, config_name, "Failed", variant=variant, failure=failure)
            self.store.put(record)

        t = threading.Thread(target=bring_up, name=f"endpoint-{record.name}"[:60], daemon=True)
        self._threads.append(t)
        t.start()

    def _endpoint_data(
        self,
        record: Record,
        config_name: str,
        status: str,
        *,
        variant: Mapping[str, Any] | None = None,
        failure: str | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "EndpointName": record.name,
            "EndpointArn": record.arn,
            "EndpointConfigName": config_name,
            "EndpointStatus": status,
            "CreationTime": record.created,
            "LastModifiedTime": _session.now(),
        }
        if variant is not None:
            count = int(variant.get("InitialInstanceCount", 1))
            data["ProductionVariants"] = [
                {
                    "VariantName": variant.get("VariantName", "AllTraffic"),
                    "CurrentWeight": float(variant.get("InitialVariantWeight", 1.0)),
                    "DesiredWeight": float(variant.get("InitialVariantWeight", 1.0)),
                    "CurrentInstanceCount": count if status == "InService" else 0,
                    "DesiredInstanceCount": count,
                }
            ]
        if failure:
            data["FailureReason"] = failure[:1024]
        return data

    def describe_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("Endpoint", p["EndpointName"])

    def update_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._get("Endpoint", p["EndpointName"])
        self._get("EndpointConfig", p["EndpointConfigName"])
        if record.data.get("EndpointStatus") not in ("InService", "Failed"):
            raise validation(f"Cannot update endpoint {record.name} while it is {record.data.get('EndpointStatus')}.")
        self._start_endpoint(record, p["EndpointConfigName"], replacing=self._live.get(("Endpoint", record.name)))
        return {"EndpointArn": record.arn}

    def delete_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        self._get("Endpoint", name)
        with self._lock:
            endpoint = self._live.pop(("Endpoint", name), None)
            starting = self._starting.pop(name, None)
            self._records["Endpoint"].pop(name, None)
        if starting is not None:
            starting.stop(grace_s=0)  # its start fails and removes it
        self.store.delete("Endpoint", name)
        if endpoint is not None:
            threading.Thread(target=endpoint.close, name=f"delete-{name}"[:60], daemon=True).start()
        return {}

    def list_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("Endpoint", p)

    def invoke_endpoint(self, name: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """sagemaker-runtime InvokeEndpoint: the answer's members (Body as bytes), or the runtime's errors."""
        endpoint = self._live.get(("Endpoint", name))
        if endpoint is None:
            record = self._records["Endpoint"].get(name)
            if record is None:
                raise ApiError("ValidationError", f"Endpoint {name} of account {self.config.account_id} not found.")
            raise ApiError("ValidationError", f"Endpoint {name} is {record.data.get('EndpointStatus')}, not InService.")
        extra = {
            key: headers[header]
            for key, header in (
                ("target_model", "X-Amzn-SageMaker-Target-Model"),
                ("target_variant", "X-Amzn-SageMaker-Target-Variant"),
                ("target_container_hostname", "X-Amzn-SageMaker-Target-Container-Hostname"),
                ("inference_id", "X-Amzn-SageMaker-Inference-Id"),
                ("enable_explanations", "X-Amzn-SageMaker-Enable-Explanations"),
                ("inference_component_name", "X-Amzn-SageMaker-Inference-Component"),
                ("session_id", "X-Amzn-SageMaker-Session-Id"),
            )
            if headers.get(header)
        }
        try:
            result: dict[str, Any] = endpoint.invoke(
                body,
                content_type=headers.get("Content-Type"),
                accept=headers.get("Accept"),
                custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
                **extra,
            )
        except ModelError as exc:
            raise ModelApiError(exc, self.config.region, self.config.account_id, name) from None
        except ValidationError as exc:
            raise ApiError("ValidationError", str(exc)) from None
        except EmulatorError as exc:
            raise ApiError("ServiceUnavailable", str(exc), 503) from None
        return result

    # -- pipelines -----------------------------------------------------------------------------------------
    def _definition(self, p: Mapping[str, Any]) -> str:
        if p.get("PipelineDefinition"):
            return str(p["PipelineDefinition"])
        location = p.get("PipelineDefinitionS3Location")
        if location:
            uri = f"s3://{location['Bucket']}/{location['ObjectKey']}"
            return self.session.s3.read_bytes(uri).decode("utf-8")
        raise validation("PipelineDefinition or PipelineDefinitionS3Location is required.")

    def _check_definition(self, name: str, text: str) -> None:
        try:
            PipelineDefinition.load(json.loads(text), name=name)
        except (ValueError, EmulatorError) as exc:
            raise validation(f"Invalid pipeline definition: {exc}") from None

    def create_pipeline(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["PipelineName"]
        text = self._definition(p)
        self._check_definition(name, text)
        record = self._new("Pipeline", name, {}, p.get("Tags"))
        record.data = {
            "PipelineArn": record.arn,
            "PipelineName": name,
            "PipelineDisplayName": p.get("PipelineDisplayName", name),
            "PipelineDefinition": text,
            "PipelineDescription": p.get("PipelineDescription"),
            "RoleArn": p.get("RoleArn"),
            "PipelineStatus": "Active",
            "CreationTime": record.created,
            "LastModifiedTime": record.created,
            "ParallelismConfiguration": p.get("ParallelismConfiguration"),
        }
        self.store.put(record)
        return {"PipelineArn": record.arn}

    def update_pipeline(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._get("Pipeline", p["PipelineName"])
        if p.get("PipelineDefinition") or p.get("PipelineDefinitionS3Location"):
            text = self._definition(p)
            self._check_definition(record.name, text)
            record.data["PipelineDefinition"] = text
        for key in ("PipelineDisplayName", "PipelineDescription", "RoleArn", "ParallelismConfiguration"):
            if p.get(key) is not None:
                record.data[key] = p[key]
        record.data["LastModifiedTime"] = _session.now()
        self.store.put(record)
        return {"PipelineArn": record.arn}

    def describe_pipeline(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["PipelineName"].rsplit("/", 1)[-1]
        with self._lock:
            record = self._records["Pipeline"].get(name)
        if record is None:
            raise ApiError("ResourceNotFound", f"Pipeline '{name}' does not exist.")
        return dict(record.data)

    def delete_pipeline(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._get("Pipeline", p["PipelineName"])
        self._delete("Pipeline", record.name)
        return {"PipelineArn": record.arn}

    def list_pipelines(self, p: dict[str, Any]) -> dict[str, Any]:
        params = {**p, "NameContains": p.get("PipelineNamePrefix")}
        return self._list("Pipeline", params)

    def start_pipeline_execution(self, p: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._get("Pipeline", p["PipelineName"].rsplit("/", 1)[-1])
        parameters = {item["Name"]: item["Value"] for item in p.get("PipelineParameters") or []}
        try:
            execution = PipelineExecution(
                json.loads(pipeline.data["PipelineDefinition"]),
                parameters=parameters,
                session=self.session,
                name=pipeline.name,
                on_job=self._register_step_job,
            )
        except EmulatorError as exc:
            raise validation(str(exc)) from None
        data = self._execution_data(pipeline, execution, p)
        record = self._new("PipelineExecution", execution.arn, data, None)
        with self._lock:
            self._live[("PipelineExecution", execution.arn)] = execution
        execution.start()

        def watch() -> None:
            while True:
                try:
                    execution.wait(timeout_s=_PERSIST_EVERY_S)
                except Exception:  # the execution records its own failure
                    logger.debug("execution %s ended with an error", execution.arn, exc_info=True)
                record.data = self._execution_data(pipeline, execution, p)
                self.store.put(record)
                if execution.done:
                    break
            with self._lock:
                self._live.pop(("PipelineExecution", execution.arn), None)

        t = threading.Thread(target=watch, name=f"watch-{execution.execution_id}", daemon=True)
        self._threads.append(t)
        t.start()
        return {"PipelineExecutionArn": execution.arn}

    def _execution_data(self, pipeline: Record, execution: PipelineExecution, p: Mapping[str, Any]) -> dict[str, Any]:
        d = execution.describe()
        d.update(
            PipelineArn=pipeline.arn,
            PipelineExecutionArn=execution.arn,
            PipelineExecutionDisplayName=p.get("PipelineExecutionDisplayName") or execution.name,
            PipelineExecutionDescription=p.get("PipelineExecutionDescription"),
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in execution.parameters.items()],
            Steps=execution.list_steps(),
        )
        return d

    def _execution(self, arn: str) -> Record:
        return self._get("PipelineExecution", arn)

    def describe_pipeline_execution(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._execution(p["PipelineExecutionArn"])
        live = self._live.get(("PipelineExecution", record.name))
        if live is not None:
            pipeline = self._get("Pipeline", live.definition.name)
            record.data = self._execution_data(pipeline, live, record.data)
        return dict(record.data)

    def stop_pipeline_execution(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._execution(p["PipelineExecutionArn"])
        live = self._live.get(("PipelineExecution", record.name))
        if live is not None:
            live.stop()
        return {"PipelineExecutionArn": record.arn}

    def list_pipeline_executions(self, p: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._get("Pipeline", p["PipelineName"].rsplit("/", 1)[-1])
        with self._lock:
            arns = [
                r.name for r in self._records["PipelineExecution"].values() if r.data.get("PipelineArn") == pipeline.arn
            ]
        rows = [self.describe_pipeline_execution({"PipelineExecutionArn": a}) for a in arns]
        for row in rows:
            row.setdefault("StartTime", row.get("CreationTime"))
        return self._list("PipelineExecution", {k: v for k, v in p.items() if k != "PipelineName"}, rows)

    def list_pipeline_execution_steps(self, p: dict[str, Any]) -> dict[str, Any]:
        data = self.describe_pipeline_execution(p)
        steps = list(data.get("Steps") or [])
        if p.get("SortOrder", "Descending") == "Descending":
            steps.reverse()
        return _page(steps, "PipelineExecutionSteps", p)

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
        return _page(list(self._by_arn(p["ResourceArn"]).tags), "Tags", p)

    def delete_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._by_arn(p["ResourceArn"])
        record.tags = [t for t in record.tags if t["Key"] not in set(p["TagKeys"])]
        self.store.put(record)
        return {}

    # -- dispatch ------------------------------------------------------------------------------------------
    def handler(self, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """The method serving ``operation`` (e.g. ``CreateTrainingJob``), or None."""
        attr = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
        if attr in ("invoke_endpoint", "handler", "restore", "close"):
            return None
        method = getattr(self, attr, None)
        return method if callable(method) and not attr.startswith("_") else None


class ModelApiError(ApiError):
    """sagemaker-runtime's ModelError (424): the container answered 4xx/5xx, with its status and message."""

    def __init__(self, exc: ModelError, region: str, account: str, endpoint: str) -> None:
        super().__init__("ModelError", str(exc), 424)
        self.original_status_code = exc.original_status_code
        self.original_message = exc.original_message
        self.log_stream_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint}"


def _name_of(kind: str, row: Mapping[str, Any]) -> str:
    for key in (f"{kind}Name", "PipelineExecutionDisplayName", "PipelineName"):
        if row.get(key):
            return str(row[key])
    return ""


def _page(rows: list[dict[str, Any]], member: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """NextToken paging: the token is the offset of the next page."""
    try:
        start = int(params.get("NextToken") or 0)
    except ValueError:
        raise validation("NextToken is not one this server issued.") from None
    size = int(params.get("MaxResults") or _DEFAULT_MAX_RESULTS)
    out: dict[str, Any] = {member: rows[start : start + size]}
    if start + size < len(rows):
        out["NextToken"] = str(start + size)
    return out
