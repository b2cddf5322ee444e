"""Processing jobs, like SageMaker's CreateProcessingJob / DescribeProcessingJob.

:mod:`emulator.processing.plan` decides the containers (inputs mounted read-only at their ``LocalPath``,
/opt/ml/config, Docker's entrypoint semantics), the runtime runs them, and :mod:`emulator.processing.describe`
turns the outcome into DescribeProcessingJob (ExitMessage: the first 1 KB of /opt/ml/output/message, UTF-8
enforced). The job contract is :mod:`emulator.runtime.lifecycle`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.processing import describe as _describe
from emulator.processing.plan import plan, with_defaults
from emulator.runtime import session as _session
from emulator.runtime.cluster import LogSink
from emulator.runtime.docker import DockerSeam
from emulator.runtime.names import UniqueNameJob
from emulator.runtime.preflight import check_plan
from emulator.runtime.runner import PlannedJob, RunResult
from emulator.runtime.session import Session
from emulator.storage.s3 import S3

__all__ = ["ProcessingJob", "with_defaults"]

logger = logging.getLogger(__name__)


class ProcessingJob(UniqueNameJob, PlannedJob):
    """One processing job. Like SageMaker CreateProcessingJob; :meth:`run` returns the Describe shape.

    Args:
        request: a CreateProcessingJob request (dict, or a YAML/JSON file).
        session: the process's shared Docker client and S3 (a new one, closed at the end, if not given).
        log_sink: called with (host, line) for every line the containers print.
        record_tree: fill :attr:`final_tree` with every entry each host left under /opt/ml before the containers
            are removed.

    Raises:
        InvalidSpec: the request does not fit CreateProcessingJob (nothing has run).
    """

    kind = "processing"

    def __init__(
        self,
        request: Mapping[str, Any] | str | Path,
        *,
        session: Session | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
        record_tree: bool = False,
    ) -> None:
        super().__init__(
            session=session, config=config, docker=docker, s3=s3, log_sink=log_sink, record_tree=record_tree
        )
        self._adopt(plan(request, self.config))
        # Before any container: inputs readable, outputs writable and lasting (emulator.runtime.preflight).
        check_plan(self.plan, temporary_s3=self._owns_session and s3 is None and self.config.s3_endpoint_url is None)
        self._describe = _describe.initial(self.plan, _session.now())

    def _finish(self, result: RunResult) -> None:
        fields = _describe.final(result, _session.now())
        self._update(**fields)
        reason = fields.get("FailureReason")
        logger.info("%s: %s%s", self.name, fields["ProcessingJobStatus"], f" ({reason})" if reason else "")
