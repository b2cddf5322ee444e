"""The one job contract of every kind: start or run, ``stop()`` from any thread, ``describe()`` at any time.

Training, processing and transform jobs, endpoints and pipeline executions all follow it:

- ``start()`` begins the work in a background thread and returns at once;
- ``wait(timeout_s)`` blocks until the end and returns the final Describe shape (or re-raises the error that
  ended the work);
- ``run()`` is ``start()`` + ``wait()`` for a caller in the foreground: Ctrl-C there stops the job gracefully
  (a second Ctrl-C ends the grace period), waits for its clean-up and raises :class:`Interrupted`;
- ``stop()`` may be called from any thread, at any time, any number of times: the job ends ``Stopped``;
- ``describe()`` returns a consistent snapshot (a deep copy taken under the job's lock).

Because the work always runs in its own thread, the work itself never sees ``KeyboardInterrupt``: a stop is a
request that the work honours, never an exception injected into a thread.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from emulator.errors import Interrupted

logger = logging.getLogger(__name__)


@runtime_checkable
class Job(Protocol):
    """What every job kind offers (see the module docstring)."""

    name: str

    def start(self) -> Self: ...
    def wait(self, timeout_s: float | None = None) -> dict[str, Any]: ...
    def run(self) -> dict[str, Any]: ...
    def stop(self, grace_s: float | None = None) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class BackgroundJob:
    """The thread, lock and stop plumbing of :class:`Job`; a kind implements :meth:`_execute` and :meth:`_on_stop`.

    ``_execute`` runs the whole job in the background thread and records its state with :meth:`_update`
    (under the lock). It must return soon after :meth:`_on_stop` was called, with the job ended Stopped.
    """

    kind: ClassVar[str] = "job"
    name: str

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._describe: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._stop_requested = threading.Event()
        self._stop_grace_s: float | None = None

    # -- what a kind provides ---------------------------------------------------------------------------------
    def _execute(self) -> None:
        raise NotImplementedError

    def _on_stop(self, grace_s: float | None) -> None:
        """Called (from any thread) when a stop is requested; tell the running work to end."""

    def _interrupted_message(self) -> str:
        return f"{self.kind} job {self.name} was interrupted (Ctrl-C): its containers were stopped and removed"

    # -- the contract ------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once the work has ended (whatever the outcome)."""
        return self._done.is_set()

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` has been called."""
        return self._stop_requested.is_set()

    def start(self) -> Self:
        """Begin the work in a background thread; returns at once."""
        with self._lock:
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._main, name=f"{self.kind}-{self.name[:40]}", daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self._execute()
        except BaseException as exc:  # kept for wait(), which re-raises it in the caller's thread
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Block until the work ends (or ``timeout_s`` passes) and return the Describe shape.

        Raises:
            EmulatorError: whatever ended the work (an image that is not there, a container Docker could not
                start, ...), re-raised here.
        """
        if self._thread is None:
            self.start()
        if self._done.wait(timeout_s) and self._error is not None:
            raise self._error.with_traceback(None)
        return self.describe()

    def run(self) -> dict[str, Any]:
        """Run the job to its end in the foreground and return its Describe shape.

        Raises:
            Interrupted: Ctrl-C; the job was stopped and everything it started removed.
        """
        self.start()
        interrupts = 0
        while True:
            try:
                while not self._done.wait(0.5):
                    pass
                break
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    logger.warning("interrupted: stopping %s (press Ctrl-C again to skip the grace period)", self.name)
                    self.stop()
                else:
                    self.stop(grace_s=0)
        if interrupts:
            if self._error is not None and not isinstance(self._error, Interrupted):
                logger.debug("after Ctrl-C: %s", self._error)
            raise Interrupted(self._interrupted_message())
        return self.wait()

    def stop(self, grace_s: float | None = None) -> None:
        """Like Stop*: end the job ``Stopped`` (SIGTERM, SIGKILL after the grace period); any thread, any time.

        ``grace_s`` overrides the platform's grace period (0: kill now).
        """
        with self._lock:
            if self._stop_requested.is_set() and (grace_s is None or self._stop_grace_s == grace_s):
                return
            self._stop_requested.set()
            self._stop_grace_s = grace_s
        self._on_stop(grace_s)

    def describe(self) -> dict[str, Any]:
        """The job in its Describe* shape: a consistent snapshot, also while it runs."""
        with self._lock:
            return copy.deepcopy(self._describe)

    def _update(self, **changes: Any) -> None:
        """Change the Describe shape under the lock (``None`` removes a key)."""
        with self._lock:
            for key, value in changes.items():
                if value is None:
                    self._describe.pop(key, None)
                else:
                    self._describe[key] = value
