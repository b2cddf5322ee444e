"""A group of job containers (one per host) and everything they need: network, log streams, stop, removal.

Used by training and processing jobs: ``with Cluster(...) as cluster: outcome = cluster.run(max_runtime)``.
The context manager removes every container and the network on every path (success, failure, timeout,
Ctrl-C, Docker errors) unless the config says to keep them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType

from emulator.errors import ContainerFailed, EmulatorError
from emulator.runtime import session as _session
from emulator.runtime.docker import ContainerSpec, DockerSeam

logger = logging.getLogger(__name__)

LogSink = Callable[[str, str], None]
"""Called with (host, line) for every line a container prints, as it prints it."""


def default_log_sink(host: str, line: str) -> None:
    """Log each container line at INFO, prefixed by its host."""
    logger.info("%s | %s", host, line)


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
    stopped_reason: str | None = None  # "MaxRuntimeExceeded" | "Interrupted" | "Stopped" (stop()) | None
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
        self._specs = specs
        self._kind = kind
        self._job = job_name
        self._private = private_network
        self._internal = internal_network
        self._grace = stop_grace_s
        self._keep = keep
        self._sink = log_sink or default_log_sink
        self._keep_lines = keep_log_lines
        self._network_id: str | None = None
        self._ids: list[str] = []
        self._threads: list[threading.Thread] = []
        self._lines: list[tuple[str, str]] = []
        self._lines_lock = threading.Lock()
        # stop() (StopTrainingJob) may come from another thread at any time: before, during or after run().
        self._stop_lock = threading.Lock()
        self._stop_requested = False
        self._running = False
        self._term_sent = False

    @property
    def container_ids(self) -> list[str]:
        """The created containers, in host order."""
        return list(self._ids)

    def __enter__(self) -> Cluster:
        try:
            labels = _session.labels(self._kind, self._job)
            if self._private:
                name = f"sm-emulator-{self._job[:40]}-{_session.short_token()}"
                self._network_id = self._docker.create_network(name, labels, internal=self._internal)
                _session.register(self._docker, self._network_id, "network")
                for spec in self._specs:
                    spec.network = name
            for spec in self._specs:
                spec.labels = {**labels, **spec.labels}
                cid = self._docker.create(spec)
                self._ids.append(cid)
                _session.register(self._docker, cid, "container")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def run(self, max_runtime_s: float | None) -> Outcome:
        """Start every host, stream logs, wait; stop everything on timeout, a host's failure or Ctrl-C."""
        outcome = Outcome(
            [
                # The host's name is what peers resolve (its network alias), not necessarily its container hostname.
                HostOutcome((s.network_aliases or [s.hostname or f"host-{i}"])[0], cid)
                for i, (s, cid) in enumerate(zip(self._specs, self._ids, strict=True))
            ]
        )
        outcome.start_time = time.time()
        deadline = None if max_runtime_s is None else outcome.start_time + max_runtime_s
        try:
            for host in outcome.hosts:
                self._docker.start(host.container_id)
                self._follow(host)
            with self._stop_lock:
                self._running = True
            self._wait_all(outcome, deadline)
            if self._stop_requested and outcome.stopped_reason is None:
                outcome.stopped_reason = "Stopped"  # it exited on the SIGTERM that stop() sent
        except KeyboardInterrupt:
            outcome.stopped_reason = "Interrupted"
            logger.warning("interrupted: stopping the containers (SIGTERM; press Ctrl-C again to kill them now)")
            try:
                self._stop_all(outcome)
            except KeyboardInterrupt:
                self._stop_all(outcome, grace_s=0)
        except BaseException:
            self._stop_all(outcome, grace_s=0)
            raise
        finally:
            outcome.end_time = time.time()
            for t in self._threads:
                t.join(timeout=5)
            outcome.log_lines = self._lines
        for host in outcome.hosts:
            with contextlib.suppress(Exception):  # informative only
                host.oom_killed = self._docker.state(host.container_id).oom_killed
        return outcome

    def _wait_all(self, outcome: Outcome, deadline: float | None) -> None:
        pending = list(outcome.hosts)
        while pending:
            if self._stop_requested:
                outcome.stopped_reason = "Stopped"
                with self._stop_lock:
                    send, self._term_sent = not self._term_sent, True
                self._stop_all(outcome, send_sigterm=send)
                return
            for host in list(pending):
                remaining = None if deadline is None else deadline - time.time()
                if remaining is not None and remaining <= 0:
                    outcome.stopped_reason = "MaxRuntimeExceeded"
                    logger.warning(
                        "job %s reached MaxRuntimeInSeconds; stopping (SIGTERM, SIGKILL after %ss)",
                        self._job,
                        self._grace,
                    )
                    self._stop_all(outcome)
                    return
                # Poll each host in short slices so one slow host does not hide another's failure.
                step = 0.25 if len(pending) > 1 else 1.0
                code = self._docker.wait(host.container_id, timeout_s=min(step, remaining) if remaining else step)
                if code is None:
                    continue
                host.exit_code = code
                pending.remove(host)
                if code != 0 and outcome.failed_first is None:
                    outcome.failed_first = host
                if code != 0 and pending:
                    # As on the platform, one host's failure ends the job: stop the others.
                    logger.warning("%s exited with %s; stopping the other hosts", host.host, code)
                    self._stop_all(outcome)
                    return

    def stop(self) -> None:
        """Like StopTrainingJob: SIGTERM the hosts now; :meth:`run` then allows the grace period, SIGKILLs what is
        left and reports ``stopped_reason="Stopped"``. Thread-safe and idempotent."""
        with self._stop_lock:
            self._stop_requested = True
            send = self._running and not self._term_sent
            self._term_sent = self._term_sent or send
        if send:
            for cid in self._ids:
                with contextlib.suppress(Exception):  # it may have exited already
                    self._docker.signal(cid, signal.SIGTERM)

    def _stop_all(self, outcome: Outcome, grace_s: float | None = None, *, send_sigterm: bool = True) -> None:
        grace = self._grace if grace_s is None else grace_s
        running = [h for h in outcome.hosts if h.exit_code is None]
        for h in running if send_sigterm else []:
            with contextlib.suppress(Exception):  # it may be gone already
                self._docker.signal(h.container_id, signal.SIGTERM)
        end = time.time() + grace
        for h in running:
            code = self._docker.wait(h.container_id, timeout_s=max(0.01, end - time.time()))
            if code is None:
                self._docker.signal(h.container_id, signal.SIGKILL)
                code = self._docker.wait(h.container_id, timeout_s=30)
            h.exit_code = code

    def _follow(self, host: HostOutcome) -> None:
        def pump(lines: Iterator[str]) -> None:
            for line in lines:
                if self._keep_lines:
                    with self._lines_lock:
                        self._lines.append((host.host, line))
                try:
                    self._sink(host.host, line)
                except Exception:
                    logger.exception("log sink failed")

        t = threading.Thread(
            target=pump, args=(self._docker.iter_log_lines(host.container_id),), name=f"logs-{host.host}", daemon=True
        )
        t.start()
        self._threads.append(t)

    def archive(self, index: int, path: str) -> Iterator[bytes]:
        """A tar stream of ``path`` in host ``index``'s container (after it has exited)."""
        return self._docker.get_archive(self._ids[index], path)

    def logs_tail(self, index: int, lines: int = 50) -> str:
        """The last lines host ``index`` printed."""
        return self._docker.logs_tail(self._ids[index], lines)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._keep:
            logger.warning("keeping containers %s (keep_containers is set)", ", ".join(i[:12] for i in self._ids))
            for resource_id in [*self._ids, *([self._network_id] if self._network_id else [])]:
                _session.unregister(resource_id)  # kept means kept: the exit sweep must not remove them either
            return
        for cid in self._ids:
            try:
                self._docker.remove(cid)
            finally:
                _session.unregister(cid)
        if self._network_id:
            try:
                self._docker.remove_network(self._network_id)
            finally:
                _session.unregister(self._network_id)


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
