"""Job and endpoint log lines into CloudWatch Logs (moto's backend in this process), as the platform names them.

The SDK streams a job's logs with DescribeLogStreams (prefix ``<job>/``) and GetLogEvents on
``/aws/sagemaker/TrainingJobs``, ``.../ProcessingJobs``, ``.../TransformJobs``; a stream per host,
``<job>/algo-N-<epoch>``. Endpoints log to ``/aws/sagemaker/Endpoints/<name>``, stream ``<variant>/<instance>``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from emulator.runtime.container import LogSink

logger = logging.getLogger(__name__)

GROUPS = {
    "training": "/aws/sagemaker/TrainingJobs",
    "processing": "/aws/sagemaker/ProcessingJobs",
    "transform": "/aws/sagemaker/TransformJobs",
}


class CloudWatchLogs:
    """Writes lines into moto's in-process Logs backend for ``account_id`` and ``region``."""

    def __init__(self, account_id: str, region: str) -> None:
        from moto.logs.models import logs_backends

        self._backend: Any = logs_backends[account_id][region]
        self._lock = threading.Lock()
        self._streams: set[tuple[str, str]] = set()

    def job_sink(self, kind: str, job: str) -> LogSink:
        """A sink for a job's containers: one stream per host, ``<job>/<host>-<epoch>``."""
        group = GROUPS[kind]
        epoch = int(time.time())
        return lambda host, line: self.put(group, f"{job}/{host}-{epoch}", line)

    def endpoint_sink(self, endpoint: str, variant: str) -> LogSink:
        """A sink for a variant's containers: ``<variant>/i-<id>`` for one container; an instance of several
        (emulator.serving.instances) or an inference pipeline's container reports its own ``<endpoint>/i-<id>[/<name>]``
        source, which becomes ``<variant>/i-<id>[/<name>]``."""
        group = f"/aws/sagemaker/Endpoints/{endpoint}"
        stream = f"{variant}/i-{int(time.time()):x}"
        own = endpoint + "/"
        return lambda source, line: self.put(
            group, f"{variant}/{source.removeprefix(own)}" if source.startswith(own) else stream, line
        )

    def events(
        self, group: str, prefix: str = "", after: Mapping[str, int] | None = None
    ) -> dict[str, list[tuple[int, str]]]:
        """The lines of every stream of ``group`` whose name starts with ``prefix``, as (timestamp ms, message);
        ``after`` (stream -> count) skips the lines already read. What the console streams."""
        after = after or {}
        with self._lock:
            log_group = self._backend.groups.get(group)
            if log_group is None:
                return {}
            return {
                name: [(e.timestamp, e.message) for e in stream.events[after.get(name, 0) :]]
                for name, stream in log_group.streams.items()
                if name.startswith(prefix)
            }

    def put(self, group: str, stream: str, line: str) -> None:
        """Append one line (never raises: logs must not break a job)."""
        try:
            with self._lock:
                if (group, stream) not in self._streams:
                    if not any(g == group for g, _ in self._streams) and group not in self._backend.groups:
                        self._backend.create_log_group(group, {})
                    self._backend.create_log_stream(group, stream)
                    self._streams.add((group, stream))
                self._backend.put_log_events(group, stream, [{"timestamp": int(time.time() * 1000), "message": line}])
        except Exception:  # pragma: no cover - informative only
            logger.debug("could not write a log line to %s/%s", group, stream, exc_info=True)
