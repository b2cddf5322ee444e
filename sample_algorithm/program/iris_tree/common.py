"""Constants and helpers shared by the processing, train and serve commands."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ML_ROOT = "/opt/ml"

FEATURE_NAMES: tuple[str, ...] = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABEL_NAME = "species"
N_FEATURES = len(FEATURE_NAMES)

# SageMaker shows at most 1024 characters of a failure reason; keep the file readable.
MAX_FAILURE_CHARS = 4096


class AlgorithmError(Exception):
    """An error with a message meant for the person running the job."""

    exit_code = 1


class ConfigurationError(AlgorithmError):
    """Bad hyperparameters or job configuration (exit code 2)."""

    exit_code = 2


class Terminated(BaseException):  # a BaseException, so that `except Exception` does not swallow it
    """Raised in the main thread when the process receives SIGTERM."""


def write_failure(path: Path, message: str) -> None:
    """Write a failure reason for SageMaker (best effort: never raises)."""
    text = message.strip()
    if len(text) > MAX_FAILURE_CHARS:
        text = text[: MAX_FAILURE_CHARS - 3] + "..."
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"warning: could not write {path}: {exc}", file=sys.stderr, flush=True)


def fail(path: Path, message: str, exit_code: int) -> int:
    """Report a failure on stderr and in ``path``; return the exit code to use."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    write_failure(path, message)
    return exit_code


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into a :class:`Terminated` exception for the duration of the block.

    A container's PID 1 ignores SIGTERM unless it installs a handler, so without this
    ``docker stop`` would have to wait for SIGKILL. Outside the main thread (where Python
    cannot install handlers) this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
