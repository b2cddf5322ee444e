"""Training jobs, like SageMaker's CreateTrainingJob / DescribeTrainingJob.

``TrainingJob(request).run()`` plans the job (:mod:`emulator.training.plan`: validated with botocore's model,
defaults applied once), runs the plan on the runtime (channels staged, the /opt/ml tree written into one
container per host, ``train`` run with the platform's semantics, MaxRuntimeInSeconds), exports model.tar.gz
and output.tar.gz (also after a failure or a stop), and returns a DescribeTrainingJob-shaped dict
(:mod:`emulator.training.describe`). ``start()``, ``stop()`` and ``describe()`` follow the job contract of
:mod:`emulator.runtime.lifecycle`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.runtime import session as _session
from emulator.runtime.cluster import LogSink
from emulator.runtime.docker import DockerSeam
from emulator.runtime.names import UniqueNameJob
from emulator.runtime.preflight import check_plan
from emulator.runtime.runner import PlannedJob, RunResult
from emulator.runtime.session import Session
from emulator.storage.s3 import S3
from emulator.training import describe as _describe
from emulator.training.defaults import with_defaults
from emulator.training.plan import TrainingOptions, plan

__all__ = ["TrainingJob", "with_defaults"]

logger = logging.getLogger(__name__)


class TrainingJob(UniqueNameJob, PlannedJob):
    """One training job. Like SageMaker CreateTrainingJob; :meth:`run` blocks and returns the Describe shape.

    Args:
        request: a CreateTrainingJob request (dict, or a YAML/JSON file).
        session: the process's shared Docker client and S3 (a new one, closed at the end, if not given).
        log_sink: called with (host, line) for every line the containers print.
        host_names, container_hostnames, extra_config: see :class:`~emulator.training.plan.TrainingOptions`.
        record_tree: fill :attr:`final_tree` with every entry each host left under /opt/ml (input channels
            included) before the containers are removed.

    Raises:
        InvalidSpec: the request does not fit CreateTrainingJob (nothing has run).
    """

    kind = "training"

    def __init__(
        self,
        request: Mapping[str, Any] | str | Path,
        *,
        session: Session | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
        host_names: Sequence[str] | None = None,
        extra_config: Mapping[str, Mapping[str, Any]] | None = None,
        container_hostnames: Sequence[str] | None = None,
        record_tree: bool = False,
    ) -> None:
        super().__init__(
            session=session, config=config, docker=docker, s3=s3, log_sink=log_sink, record_tree=record_tree
        )
        options = TrainingOptions(
            host_names, container_hostnames, {k: dict(v) for k, v in (extra_config or {}).items()}
        )
        self._adopt(plan(request, self.config, options))
        # Before any container: inputs readable, outputs writable and lasting (emulator.runtime.preflight).
        check_plan(self.plan, temporary_s3=self._owns_session and s3 is None and self.config.s3_endpoint_url is None)
        self._describe = _describe.initial(self.plan, _session.now())

    def _on_starting(self) -> None:
        self._transition("Starting", "Preparing the instances for training")

    def _on_running(self) -> None:
        self._transition("Training", "Training image download completed. Training in progress.")

    def _on_exited(self) -> None:
        self._transition("Uploading", "Uploading generated training model")

    def _finish(self, result: RunResult) -> None:
        self._update(**_describe.result_fields(self.plan, result))
        self._end(*_describe.end_status(result))

    def _interrupted_message(self) -> str:
        where = self.describe()["ModelArtifacts"]["S3ModelArtifacts"]
        return f"{super()._interrupted_message()}" + (f"; artifacts exported to {where}" if where else "")

    def _transition(self, status: str, message: str) -> None:
        with self._lock:
            now = _session.now()
            transitions = self._describe["SecondaryStatusTransitions"]
            if transitions:
                transitions[-1]["EndTime"] = now
            transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
            self._describe["SecondaryStatus"] = status
            self._describe["LastModifiedTime"] = now
        logger.info("%s: %s", self.name, message)

    def _end(self, status: str, secondary: str, message: str, reason: str | None = None) -> None:
        with self._lock:
            self._transition(secondary, message)
            self._describe["SecondaryStatusTransitions"][-1]["EndTime"] = self._describe["LastModifiedTime"]
            self._describe["TrainingJobStatus"] = status
            if reason is not None:
                self._describe["FailureReason"] = reason
