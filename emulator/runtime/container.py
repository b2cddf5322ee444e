"""One object owns a container's life: create (labelled, registered), start, follow logs, stop with grace, remove.

Every job kind runs its containers through :class:`Container`: training and processing hosts (through
:class:`~emulator.runtime.cluster.Cluster`), serving containers of endpoints and batch transform. The stop
sequence (SIGTERM, the grace period, SIGKILL) is written once, in :meth:`Container.stop`, and removal once, in
:meth:`Container.remove`; the exit sweep of :mod:`emulator.runtime.session` and ``python -m emulator cleanup``
are the safety nets for a process that dies.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from emulator.errors import DockerUnavailable, EmulatorError
from emulator.runtime import session as _session
from emulator.runtime.docker import ContainerSpec, ContainerState, DockerSeam

logger = logging.getLogger(__name__)

LogSink = Callable[[str, str], None]
"""Called with (source, line) for every line a container prints, as it prints it (source: host or endpoint)."""

#: How long to wait for a container to die after SIGKILL.
KILL_WAIT_S = 30.0
_TAIL_LINES = 200


def default_log_sink(source: str, line: str) -> None:
    """Log each container line at INFO, prefixed by its source."""
    logger.info("%s | %s", source, line)


@dataclass(frozen=True)
class StopResult:
    """How a container ended when it was stopped."""

    exit_code: int | None
    seconds: float
    #: True when it ignored SIGTERM for the whole grace period and had to be killed.
    killed: bool


class Container:
    """One container of a job, from creation to removal; a context manager that always removes it.

    Args:
        docker: the Docker seam.
        spec: what to create; the session's labels (kind, job) are added.
        kind: the job kind label (``training``, ``endpoint``, ...).
        job: the job name label.
        source: the name its log lines are reported under (a host name, an endpoint name).
        log_sink: called with (source, line) for every line; None: logged at INFO.
        keep: leave the container in place at :meth:`remove` (``keep_containers``).
        keep_lines: keep every log line in :attr:`lines` (else only the last 200 in :meth:`logs_tail`).
    """

    def __init__(
        self,
        docker: DockerSeam,
        spec: ContainerSpec,
        *,
        kind: str,
        job: str,
        source: str,
        log_sink: LogSink | None = None,
        keep: bool = False,
        keep_lines: bool = False,
    ) -> None:
        self.docker = docker
        self.spec = spec
        self.kind = kind
        self.job = job
        self.source = source
        self._sink = log_sink or default_log_sink
        self._keep = keep
        self._keep_lines = keep_lines
        self._id: str | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        #: Every line printed, when ``keep_lines``.
        self.lines: list[str] = []
        self._log_thread: threading.Thread | None = None
        self._closing = threading.Event()
        #: Set once the container has exited (seen by the log stream ending and the engine's state), or once the
        #: engine failed while it was followed (then :attr:`engine_error` is set).
        self.exited = threading.Event()
        self.exit_code: int | None = None
        self.oom_killed = False
        self.started_at: float | None = None
        self.stop_result: StopResult | None = None
        self._removed = False
        self._stop_lock = threading.Lock()
        #: Set when the engine failed while the container's output was followed or its state polled.
        self.engine_error: DockerUnavailable | None = None

    # -- life --------------------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The container's id (once created)."""
        if self._id is None:
            raise EmulatorError(f"container of {self.kind} {self.job} ({self.source}) is not created")
        return self._id

    @property
    def created(self) -> bool:
        """True once the engine has the container."""
        return self._id is not None

    def create(self) -> Self:
        """Create the container (not started) with the session's labels, and register it for the exit sweep."""
        if self._id is None:
            self.spec.labels = {**_session.labels(self.kind, self.job), **self.spec.labels}
            self._id = self.docker.create(self.spec)
            _session.register(self.docker, self._id, "container")
        return self

    def start(self) -> None:
        """Start the container and follow its output in a thread (to the sink, the tail, and :attr:`lines`).

        Raises:
            DockerUnavailable: the engine failed to start or to follow it (it stays created: :meth:`remove` it).
        """
        self.create()
        self.docker.start(self.id)
        self.started_at = time.monotonic()
        lines = self.docker.iter_log_lines(self.id)
        self._log_thread = threading.Thread(
            target=self._pump, args=(lines,), name=f"logs-{self.source}"[:60], daemon=True
        )
        self._log_thread.start()

    def _pump(self, lines: Iterable[str]) -> None:
        try:
            for line in lines:
                self._tail.append(line)
                if self._keep_lines:
                    self.lines.append(line)
                try:
                    self._sink(self.source, line)
                except Exception:  # a broken sink must not break the job
                    logger.exception("log sink failed")
        except DockerUnavailable as exc:
            if not self._closing.is_set():
                self.engine_error = self.engine_error or exc
        finally:
            self._note_exit()

    def _note_exit(self) -> None:
        # The log stream ends when the container exits; if it broke for another reason, poll the state. After an
        # engine fault nobody can tell: ``exited`` is set so that waiters wake up and see :attr:`engine_error`.
        while not self._closing.is_set() and self.engine_error is None:
            try:
                st = self.docker.state(self.id)
            except DockerUnavailable as exc:  # the engine is gone: nobody can tell, so stop watching
                self.engine_error = self.engine_error or exc
                break
            except Exception:  # removed: it has exited
                break
            if st.status not in {"running", "created", "restarting"}:
                self.exit_code, self.oom_killed = st.exit_code, st.oom_killed
                break
            self._closing.wait(0.5)
        self.exited.set()

    def raise_engine_error(self) -> None:
        """Raise :attr:`engine_error` (the engine failed while the container was followed), if any."""
        if self.engine_error is not None:
            raise self.engine_error

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait for the container to exit; its exit code, or None when ``timeout_s`` passed first.

        Raises:
            DockerUnavailable: the engine failed (now, or while the output was followed).
        """
        self.raise_engine_error()
        return self._wait(timeout_s)

    def _wait(self, timeout_s: float | None) -> int | None:
        code = self.docker.wait(self.id, timeout_s=timeout_s)
        if code is not None:
            self.exit_code = code
        return code

    def join_logs(self, timeout_s: float = 5.0) -> None:
        """Wait until every line the container printed has reached the sink (after it exited)."""
        if self._log_thread is not None:
            self._log_thread.join(timeout=timeout_s)

    def signal(self, sig: int) -> None:
        """Send a signal to PID 1; a container that has exited or gone already is fine."""
        if self._id is not None:
            with contextlib.suppress(Exception):
                self.docker.signal(self._id, sig)

    def stop(self, grace_s: float, *, deadline: float | None = None, sigterm: bool = True) -> StopResult:
        """Like the platform's stop: SIGTERM, then SIGKILL once ``grace_s`` has passed; waits for the exit.

        ``deadline`` (a ``time.monotonic()`` value) replaces ``grace_s`` when several containers share one grace
        period; ``sigterm=False`` when SIGTERM was sent already.
        """
        start = time.monotonic()
        end = deadline if deadline is not None else start + max(grace_s, 0.0)
        if sigterm:
            self.signal(signal.SIGTERM)
        code = self._wait(max(0.01, end - time.monotonic()))
        killed = code is None
        if killed:
            if end - start > 0.05:  # with no grace period (a kill now) there is nothing to warn about
                logger.warning("%s of %s ignored SIGTERM for its grace period; sending SIGKILL", self.source, self.job)
            self.signal(signal.SIGKILL)
            code = self._wait(KILL_WAIT_S)
        result = StopResult(code, time.monotonic() - start, killed)
        with self._stop_lock:
            self.stop_result = self.stop_result or result
        return result

    def remove(self) -> None:
        """Remove the container and its anonymous volumes (unless kept); idempotent, any thread.

        Raises:
            DockerUnavailable: the engine failed; the container stays registered, so the exit sweep (or
                ``python -m emulator cleanup``) removes it once the engine answers again.
        """
        self._closing.set()
        with self._stop_lock:
            if self._removed:
                return
            self._removed = True
        cid = self._id
        if cid is not None:
            if self._keep:
                logger.warning("keeping container %s of %s %s (keep_containers is set)", cid[:12], self.kind, self.job)
                _session.unregister(cid)  # kept means kept: the exit sweep must not remove it either
            else:
                try:
                    self.docker.remove(cid)
                except DockerUnavailable:
                    self.join_logs(timeout_s=1.0)
                    raise
                _session.unregister(cid)
        self.join_logs()

    # -- what it holds -----------------------------------------------------------------------------------------
    def state(self) -> ContainerState:
        """The engine's view of the container."""
        return self.docker.state(self.id)

    def logs_tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines the container printed."""
        if self._id is not None and not self._removed:
            text = self.docker.logs_tail(self._id, lines)
            if text:
                return text
        return "\n".join(list(self._tail)[-lines:])

    def archive(self, path: str) -> Iterable[bytes]:
        """A tar stream of ``path`` in the container (also after it exited, volumes included)."""
        return self.docker.get_archive(self.id, path)

    def exec_output(self, argv: list[str]) -> bytes | None:
        """What ``argv`` run inside the running container printed (None: it could not run, or failed)."""
        if self._id is None or self._removed:
            return None
        return self.docker.exec_output(self._id, argv)

    def host_port(self, port: int) -> int:
        """The 127.0.0.1 port that the container's ``port`` is published on."""
        return self.docker.host_port(self.id, port)

    def __enter__(self) -> Self:
        return self.create()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()
