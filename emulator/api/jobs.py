"""Training, processing and transform jobs: Create, Describe, Stop and List over the library's job classes."""

from __future__ import annotations

import logging
from typing import Any

from emulator.api.protocol import already_exists, validation
from emulator.api.registry import JOB_CLASSES, KINDS, Registry
from emulator.errors import EmulatorError
from emulator.transform import TransformJob

logger = logging.getLogger(__name__)


class JobOperations(Registry):
    """The job operations."""

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
                job = JOB_CLASSES[kind](request, session=self.session, log_sink=sink)
        except EmulatorError as exc:
            raise validation(str(exc)) from None
        record = self._new(kind, name, job.describe(), params.get("Tags"))
        with self._lock:
            self._live[(kind, name)] = job
        job.start()
        self._watch(kind, record, job)
        return {f"{kind}Arn": record.arn}

    def _stop_job(self, kind: str, name: str) -> dict[str, Any]:
        record = self._get(kind, name)
        live = self._live.get((kind, record.name))
        if live is not None:
            live.stop()
        return {}

    def create_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._create_job("TrainingJob", p)

    def describe_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("TrainingJob", p["TrainingJobName"])

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
