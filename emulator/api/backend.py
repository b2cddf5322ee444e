"""SageMaker's operations over the emulator's own job classes: one method per operation, nothing re-implemented.

Each Create* builds the library's object (``TrainingJob``, ``ProcessingJob``, ``TransformJob``, ``Endpoint``,
``PipelineExecution``) with the server's one :class:`~emulator.runtime.session.Session` and starts it in the
background; Describe* reads the live object's snapshot (or the stored record once it has ended); Stop* calls its
``stop()``. Every record is written to the :class:`~emulator.api.store.Store`, so List*/Describe* answer after a
restart, and endpoints that were InService come back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from emulator.api.hosting import HostingOperations, ModelApiError
from emulator.api.jobs import JobOperations
from emulator.api.pipelines import PipelineOperations
from emulator.api.registry import KINDS
from emulator.api.store import Record
from emulator.api.tuning import TuningOperations

logger = logging.getLogger(__name__)


__all__ = ["ModelApiError", "SageMakerBackend"]


class SageMakerBackend(JobOperations, HostingOperations, PipelineOperations, TuningOperations):
    """The state of one API server and every operation it serves (one method per operation, by its snake name)."""

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

    # -- dispatch ------------------------------------------------------------------------------------------
    def handler(self, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """The method serving ``operation`` (e.g. ``CreateTrainingJob``), or None."""
        attr = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
        if attr in ("invoke_endpoint", "handler", "restore", "close"):
            return None
        method = getattr(self, attr, None)
        return method if callable(method) and not attr.startswith("_") else None
