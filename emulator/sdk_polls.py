"""Opt-in: cap the SageMaker Python SDK's own poll sleeps, for local use against the emulator's API server.

The SDK (v2) waits a fixed time between its status checks, sized for the cloud: ``fit()`` sleeps 5 s before
its first DescribeTrainingJob, the job-log loops of ``fit``/``Transformer.wait``/``Processor.run`` poll every
10 s, ``deploy()`` sleeps 30 s before its first DescribeEndpoint and ``PipelineExecution.wait()`` uses a 30 s
waiter delay. Against the emulator, where a job takes a second or two, those sleeps are most of the wall time.

This module shortens only that waiting, in the user's own process: every ``time.sleep`` the SDK's
``sagemaker.session`` module makes (its wait loops, ``_wait_until``, the log loops) is capped at
``max_sleep_s``; the clock that module reads (``time.time()``: the log loops Describe the job only every 30 s
by it) runs ahead by the seconds skipped; ``PipelineExecution.wait`` gets a delay of at most ``max_sleep_s``
with as many more attempts as keep its overall limit (``delay * max_attempts``). Requests are the same ones,
with the same parameters; there are only more status checks while a job runs. Nothing else in the SDK changes.

Three ways to switch it on (none needs ``sitecustomize`` or an import hook):

- run an unchanged script with it (works in any venv that has the SDK: this file needs only the stdlib)::

      python path/to/emulator/sdk_polls.py your_script.py [args...]
      python -m emulator.sdk_polls your_script.py [args...]        # where ``emulator`` is importable
      SM_EMULATOR_MAX_SLEEP_S=1 python -m emulator.sdk_polls your_script.py   # another cap (seconds)

- one line in the script, before the SDK waits::

      import emulator.sdk_polls; emulator.sdk_polls.fast_polls()

- scoped: ``with fast_polls(): estimator.fit(...)`` (undone on exit; ``fast_polls().undo()`` does the same).

One consequence of the clock: a ``timeout`` given to ``Session.logs_for_job`` (``fit()`` gives none) counts
the skipped seconds too, so it ends sooner in wall time. Only for local use: against the real service the
extra Describe calls would count against its API rate limits.
Nothing in the ``emulator`` package imports this module, and it imports ``sagemaker`` only inside
:func:`fast_polls`.
"""

from __future__ import annotations

import functools
import math
import os
import runpy
import sys
import threading
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any

#: The default cap on one SDK sleep, in seconds.
DEFAULT_MAX_SLEEP_S = 0.5
#: The environment variable ``python -m emulator.sdk_polls`` reads for another cap.
ENV_MAX_SLEEP = "SM_EMULATOR_MAX_SLEEP_S"


class _CappedTime:
    """Stands in for the ``time`` module inside ``sagemaker.session``: ``sleep`` capped, the clock kept in step.

    The SDK's log loops describe the job only when ``time.time()`` says 30 s have passed since the last
    Describe; capping the sleep alone would leave that 30 s floor. So ``time()`` here runs ahead by the
    seconds the capped sleeps skipped: the SDK's loops see the clock they would have seen had they slept in
    full, and take the same steps (tail logs, Describe, tail once more) in less wall time.
    """

    def __init__(self, real: ModuleType, max_sleep_s: float) -> None:
        self._real = real
        self._max = max_sleep_s
        self._skipped = 0.0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        slept = min(seconds, self._max)
        self._real.sleep(slept)
        with self._lock:
            self._skipped += max(0.0, seconds - slept)

    def time(self) -> float:
        return float(self._real.time()) + self._skipped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FastPolls:
    """What :func:`fast_polls` changed; ``undo()`` (or leaving a ``with`` block) puts the SDK back."""

    def __init__(self, undo_steps: list[Callable[[], None]]) -> None:
        self._undo_steps = undo_steps

    def undo(self) -> None:
        while self._undo_steps:
            self._undo_steps.pop()()

    def __enter__(self) -> FastPolls:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.undo()


def fast_polls(max_sleep_s: float = DEFAULT_MAX_SLEEP_S) -> FastPolls:
    """Cap the SageMaker SDK's poll sleeps at ``max_sleep_s`` seconds in this process (see the module doc).

    Imports ``sagemaker`` (v2) and raises ``ImportError`` when it is not installed. Calling it again replaces
    the cap; :meth:`FastPolls.undo` restores what the SDK had.
    """
    if max_sleep_s <= 0:
        raise ValueError(f"max_sleep_s must be positive, got {max_sleep_s!r}")
    import sagemaker.session as sdk_session
    from sagemaker.workflow.pipeline import _PipelineExecution as PipelineExecution

    steps: list[Callable[[], None]] = []

    previous_time = sdk_session.time
    real_time = previous_time._real if isinstance(previous_time, _CappedTime) else previous_time
    sdk_session.time = _CappedTime(real_time, max_sleep_s)
    steps.append(lambda: setattr(sdk_session, "time", previous_time))

    previous_wait = PipelineExecution.wait
    original_wait = getattr(previous_wait, "__wrapped__", previous_wait)

    @functools.wraps(original_wait)
    def wait(self: Any, delay: float = 30, max_attempts: int = 60) -> Any:
        if delay > max_sleep_s:  # same overall limit, checked more often
            max_attempts = math.ceil(delay * max_attempts / max_sleep_s)
            delay = max_sleep_s
        return original_wait(self, delay=delay, max_attempts=max_attempts)

    PipelineExecution.wait = wait
    steps.append(lambda: setattr(PipelineExecution, "wait", previous_wait))
    return FastPolls(steps)


def main(argv: list[str] | None = None) -> int:
    """``python -m emulator.sdk_polls SCRIPT [ARGS...]``: run SCRIPT as ``__main__`` with fast polls."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        sys.stderr.write(
            "usage: python -m emulator.sdk_polls SCRIPT [ARGS...]\n"
            "Run a SageMaker SDK script with the SDK's poll sleeps capped "
            f"(at ${ENV_MAX_SLEEP} seconds, default {DEFAULT_MAX_SLEEP_S}); for local use only.\n"
        )
        return 0 if args else 2
    cap = float(os.environ.get(ENV_MAX_SLEEP) or DEFAULT_MAX_SLEEP_S)
    fast_polls(cap)
    script = args[0]
    sys.argv = list(args)
    # As ``python SCRIPT`` would: the script's folder first on the path, instead of this module's own
    # (run as a file, ``emulator/`` would otherwise shadow top-level names such as ``config``) or the cwd.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")  # the script's own sys.exit() ends the process as usual
    return 0


if __name__ == "__main__":
    sys.exit(main())
