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
from emulator.runtime.lifecycle import BackgroundJob
from emulator.runtime.plan import JobPlan
from emulator.runtime.runner import PlanRunner
from emulator.runtime.session import Session
from emulator.storage.s3 import S3

__all__ = ["ProcessingJob", "with_defaults"]

logger = logging.getLogger(__name__)


class ProcessingJob(BackgroundJob):
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
        super().__init__()
        self.session, self._owns_session = Session.of(session, config, docker, s3)
        self.config = self.session.config
        self.plan: JobPlan = plan(request, self.config)
        self.request: dict[str, Any] = dict(self.plan.request)
        self.name: str = self.plan.name
        self.arn = self.plan.arn
        self._sink = log_sink
        self._record_tree = record_tree
        self._runner: PlanRunner | None = None
        #: With ``record_tree``: host name -> {absolute path under /opt/ml -> "file", "dir" or "symlink -> X"}.
        self.final_tree: dict[str, dict[str, str]] = {}
        self._describe = _describe.initial(self.plan, _session.now())

    def _execute(self) -> None:
        try:
            runner = PlanRunner(self.plan, self.session, log_sink=self._sink, record_tree=self._record_tree)
            with self._lock:
                self._runner = runner
                stop, grace = self.stop_requested, self._stop_grace_s
            if stop:
                runner.stop(grace)
            result = runner.run()
            self.final_tree = result.tree
            fields = _describe.final(result, _session.now())
            self._update(**fields)
            reason = fields.get("FailureReason")
            logger.info("%s: %s%s", self.name, fields["ProcessingJobStatus"], f" ({reason})" if reason else "")
        finally:
            if self._owns_session:
                self.session.close()

    def _on_stop(self, grace_s: float | None) -> None:
        with self._lock:
            runner = self._runner
        if runner is not None:
            runner.stop(grace_s)
