"""Pipelines and their executions over the library's ``PipelineExecution``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from emulator.api.protocol import ApiError, validation
from emulator.api.registry import PERSIST_EVERY_S, Registry, page
from emulator.api.store import Record
from emulator.errors import EmulatorError
from emulator.pipelines import PipelineDefinition, PipelineExecution
from emulator.runtime import session as _session

logger = logging.getLogger(__name__)


class PipelineOperations(Registry):
    """The pipeline operations."""

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
                    execution.wait(timeout_s=PERSIST_EVERY_S)
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
        return page(steps, "PipelineExecutionSteps", p)
