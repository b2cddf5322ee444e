"""The containers of one job (one per host), their private network, and the run to the end.

Used by training and processing: ``with Cluster(...) as cluster: outcome = cluster.run(max_runtime)``. Each
host is a :class:`~emulator.runtime.container.Container` (which owns its life); the cluster adds the network
peers resolve each other on, the one deadline (MaxRuntimeInSeconds), the rule that one host's failure stops the
others, and ``stop()`` from any thread. The context manager removes every container and the network on every
path (success, failure, timeout, stop, a Docker error) unless the config says to keep them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from emulator.errors import ContainerFailed, DockerUnavailable, EmulatorError
from emulator.runtime import session as _session
from emulator.runtime.container import Container, LogSink, default_log_sink
from emulator.runtime.docker import ContainerSpec, DockerSeam

__all__ = ["Cluster", "HostOutcome", "LogSink", "Outcome", "default_log_sink", "start_failure"]

logger = logging.getLogger(__name__)


@dataclass
class HostOutcome:
    """How one host's container ended."""

    host: str
    container_id: str
    exit_code: int | None = None
    oom_killed: bool = False


@dataclass
class Outcome:
    """How the whole group ended: every host's exit, and whether it was stopped and why."""

    hosts: list[HostOutcome]
    stopped_reason: str | None = None  # "MaxRuntimeExceeded" | "Stopped" (stop()) | None
    start_time: float = 0.0
    end_time: float = 0.0
    log_lines: list[tuple[str, str]] = field(default_factory=list)
    failed_first: HostOutcome | None = None  # the host whose non-zero exit ended the job

    @property
    def succeeded(self) -> bool:
        """True when every host exited 0 and nothing was stopped."""
        return self.stopped_reason is None and all(h.exit_code == 0 for h in self.hosts)

    @property
    def first_failure(self) -> HostOutcome | None:
        """The host that failed first (the others may have exited non-zero only because they were stopped)."""
        if self.failed_first is not None:
            return self.failed_first
        return next((h for h in self.hosts if h.exit_code not in (0, None)), None)


class Cluster:
    """Creates, runs, stops and removes the containers of one job."""

    def __init__(
        self,
        docker: DockerSeam,
        specs: list[ContainerSpec],
        *,
        kind: str,
        job_name: str,
        private_network: bool,
        internal_network: bool = False,
        stop_grace_s: float = 120.0,
        keep: bool = False,
        log_sink: LogSink | None = None,
        keep_log_lines: bool = True,
    ) -> None:
        self._docker = docker
        self._kind = kind
        self._job = job_name
        self._private = private_network
        self._internal = internal_network
        self._grace = stop_grace_s
        self._keep = keep
        self._network_id: str | None = None
        self._lines: list[tuple[str, str]] = []
        self._lines_lock = threading.Lock()
        sink = log_sink or default_log_sink
        keep_lines = keep_log_lines

        def record(host: str, line: str) -> None:
            if keep_lines:
                with self._lines_lock:
                    self._lines.append((host, line))
            sink(host, line)

        self.containers = [
            Container(
                docker,
                spec,
                kind=kind,
                job=job_name,
                # The host's name is what peers resolve (its network alias), not necessarily its container hostname.
                source=(spec.network_aliases or [spec.hostname or f"host-{i}"])[0],
                log_sink=record,
                keep=keep,
            )
            for i, spec in enumerate(specs)
        ]
        # stop() (StopTrainingJob) may come from another thread at any time: before, during or after run().
        self._stop_lock = threading.Lock()
        self._stop_requested = False
        self._stop_grace: float | None = None
        self._running = False
        self._term_sent = False

    @property
    def container_ids(self) -> list[str]:
        """The created containers, in host order."""
        return [c.id for c in self.containers if c.created]

    def __enter__(self) -> Self:
        try:
            if self._private:
                name = f"sm-emulator-{self._job[:40]}-{_session.short_token()}"
                labels = _session.labels(self._kind, self._job)
                self._network_id = self._docker.create_network(name, labels, internal=self._internal)
                _session.register(self._docker, self._network_id, "network")
                for c in self.containers:
                    c.spec.network = name
            for c in self.containers:
                c.create()
        except BaseException as exc:
            self._release(exc)
            raise
        return self

    def run(self, max_runtime_s: float | None) -> Outcome:
        """Start every host, stream logs, wait; stop everything on timeout, a host's failure or :meth:`stop`."""
        outcome = Outcome([HostOutcome(c.source, c.id) for c in self.containers])
        outcome.start_time = time.time()
        deadline = None if max_runtime_s is None else time.monotonic() + max_runtime_s
        try:
            for c in self.containers:
                c.start()
            with self._stop_lock:
                self._running = True
                send = self._stop_requested and not self._term_sent
                self._term_sent = self._term_sent or send
            if send:  # stop() came while the containers were starting
                self._signal_all(signal.SIGTERM)
            self._wait_all(outcome, deadline)
            if self._stop_requested and outcome.stopped_reason is None:
                outcome.stopped_reason = "Stopped"  # it exited on the SIGTERM that stop() sent
        except BaseException as exc:
            try:
                self._stop_all(outcome, grace_s=0)
            except Exception as stop_exc:  # the engine is failing: what ended the run is the error to report
                logger.debug("stopping %s after %r failed: %r", self._job, exc, stop_exc)
            raise
        finally:
            outcome.end_time = time.time()
            for c in self.containers:
                c.join_logs()
            outcome.log_lines = self._lines
        for host, c in zip(outcome.hosts, self.containers, strict=True):
            with contextlib.suppress(Exception):  # informative only
                host.oom_killed = c.state().oom_killed
        return outcome

    def _wait_all(self, outcome: Outcome, deadline: float | None) -> None:
        pending = list(zip(outcome.hosts, self.containers, strict=True))
        while pending:
            if self._stop_requested:
                outcome.stopped_reason = "Stopped"
                self._stop_all(outcome, grace_s=self._stop_grace, sigterm=False)
                return
            for host, c in list(pending):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    outcome.stopped_reason = "MaxRuntimeExceeded"
                    logger.warning(
                        "job %s reached MaxRuntimeInSeconds; stopping (SIGTERM, SIGKILL after %ss)",
                        self._job,
                        self._grace,
                    )
                    self._stop_all(outcome)
                    return
                # Poll each host in short slices so one slow host does not hide another's failure or a stop().
                step = 0.25 if len(pending) > 1 else 1.0
                code = c.wait(min(step, remaining) if remaining else step)
                if code is None:
                    continue
                host.exit_code = code
                pending.remove((host, c))
                if code != 0 and outcome.failed_first is None:
                    outcome.failed_first = host
                if code != 0 and pending:
                    # As on the platform, one host's failure ends the job: stop the others.
                    logger.warning("%s exited with %s; stopping the other hosts", host.host, code)
                    self._stop_all(outcome)
                    return

    def stop(self, grace_s: float | None = None) -> None:
        """Like StopTrainingJob: SIGTERM the hosts now; :meth:`run` then allows the grace period (``grace_s``, else
        the platform's), SIGKILLs what is left and reports ``stopped_reason="Stopped"``. Thread-safe, idempotent;
        ``grace_s=0`` kills at once."""
        with self._stop_lock:
            self._stop_requested = True
            if grace_s is not None:
                self._stop_grace = grace_s
            send = self._running and not self._term_sent
            self._term_sent = self._term_sent or send
        if send:
            self._signal_all(signal.SIGTERM)
        if grace_s == 0 and self._running:
            self._signal_all(signal.SIGKILL)

    def _signal_all(self, sig: int) -> None:
        for c in self.containers:
            c.signal(sig)

    def _stop_all(self, outcome: Outcome, grace_s: float | None = None, *, sigterm: bool = True) -> None:
        grace = self._grace if grace_s is None else grace_s
        running = [(h, c) for h, c in zip(outcome.hosts, self.containers, strict=True) if h.exit_code is None]
        if sigterm:
            for _, c in running:
                c.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for h, c in running:
            h.exit_code = c.stop(grace, deadline=deadline, sigterm=False).exit_code

    def archive(self, index: int, path: str) -> Iterable[bytes]:
        """A tar stream of ``path`` in host ``index``'s container (after it has exited)."""
        return self.containers[index].archive(path)

    def logs_tail(self, index: int, lines: int = 50) -> str:
        """The last lines host ``index`` printed."""
        return self.containers[index].logs_tail(lines)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release(exc)

    def _release(self, pending: BaseException | None) -> None:
        """Remove every container, then the network, whatever fails on the way.

        What the engine fails to remove stays registered for the exit sweep. The first failure is raised unless
        another error (``pending``) already ends the run: that one wins and the failure is logged.
        """
        failures: list[DockerUnavailable] = []
        for c in self.containers:
            try:
                c.remove()
            except DockerUnavailable as exc:
                failures.append(exc)
        if self._network_id:
            if self._keep:
                _session.unregister(self._network_id)
            elif failures:
                logger.debug("network %s of %s is left to the exit sweep", self._network_id[:12], self._job)
            else:
                try:
                    self._docker.remove_network(self._network_id)
                    _session.unregister(self._network_id)
                except DockerUnavailable as exc:
                    failures.append(exc)
        if failures:
            if pending is None:
                raise failures[0]
            logger.warning("%s: could not remove everything (left to the exit sweep): %s", self._job, failures[0])


def start_failure(exc: EmulatorError, image: str, command: list[str]) -> ContainerFailed:
    """Explain a container that Docker could not start (most often: no such executable in the image)."""
    text = str(exc)
    if "executable file not found" in text or "no such file or directory" in text:
        what = command[0] if command else "the entrypoint"
        found = re.search(r'exec: "[^"]*": [^:;]*', text)
        return ContainerFailed(
            f"image {image!r} cannot run {what!r} ({found.group(0) if found else text}); SageMaker runs "
            f"'docker run IMAGE {' '.join(command)}', so put an executable named {what!r} on PATH "
            f"or use an exec-form ENTRYPOINT",
            image=image,
            command=command,
        )
    return ContainerFailed(f"could not start image {image!r}: {text}", image=image, command=command)
