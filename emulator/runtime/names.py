"""Names unique per kind while a job or an endpoint lives in this process, as on the platform.

A job claims its name when it starts and releases it when its work has ended; a second job of the same kind and
name started meanwhile is refused with "already exists" (the platform's ``ResourceInUse``), instead of both running
and one's artifacts overwriting the other's.

>>> claim("training", "doc-job")
>>> try:
...     claim("training", "doc-job")
... except InvalidSpec as exc:
...     print(str(exc).split(";")[0])
training job 'doc-job' already exists (it is running in this process)
>>> release("training", "doc-job")
"""

from __future__ import annotations

import threading
from typing import Self

from emulator.errors import InvalidSpec
from emulator.runtime.lifecycle import BackgroundJob

_live: set[tuple[str, str]] = set()
_lock = threading.Lock()


def claim(kind: str, name: str, *, noun: str | None = None) -> None:
    """Take ``name`` for a ``kind`` until :func:`release`; ``noun`` names the kind in the error (``<kind> job``).

    Raises:
        InvalidSpec: a live job (or endpoint) of that kind already has the name.
    """
    with _lock:
        if (kind, name) in _live:
            raise InvalidSpec(
                f"{noun or kind + ' job'} {name!r} already exists (it is running in this process); "
                "pick another name or wait until it ends"
            )
        _live.add((kind, name))


def release(kind: str, name: str) -> None:
    """Give ``name`` back (idempotent)."""
    with _lock:
        _live.discard((kind, name))


def is_live(kind: str, name: str) -> bool:
    """True while a job of ``kind`` named ``name`` holds its name."""
    with _lock:
        return (kind, name) in _live


class UniqueNameJob(BackgroundJob):
    """A :class:`BackgroundJob` whose name is claimed in :meth:`start` and released when its work ends.

    Put it before the kind's base class: ``class TrainingJob(UniqueNameJob, PlannedJob)``.
    """

    def start(self) -> Self:
        """Claim the name, then begin the work (see :meth:`BackgroundJob.start`).

        Raises:
            InvalidSpec: a job of the same kind and name is running in this process.
        """
        with self._lock:
            if self._thread is not None:
                return self
        claim(self.kind, self.name)
        try:
            return super().start()
        except BaseException:
            release(self.kind, self.name)
            raise

    def _main(self) -> None:
        # BackgroundJob._main, with the name released before the job is seen done (a waiter may reuse it at once).
        try:
            self._execute()
        except BaseException as exc:  # kept for wait(), which re-raises it in the caller's thread
            self._error = exc
        finally:
            release(self.kind, self.name)
            self._done.set()
