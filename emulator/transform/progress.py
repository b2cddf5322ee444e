"""Per-object progress of a batch transform job, and a printer for the terminal."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

logger = logging.getLogger(__name__)


# -- progress -----------------------------------------------------------------------------------------------
@dataclass
class FileProgress:
    """How far one input object is: records and bytes sent, bytes written, requests answered."""

    name: str
    total_bytes: int | None
    records: int = 0
    bytes_sent: int = 0
    bytes_written: int = 0
    requests: int = 0
    done: bool = False
    failed: bool = False


Progress = Callable[[FileProgress], None]
"""Called after every answered request of a file, and once more when the file is done."""


class ProgressPrinter:
    """Shows per-file progress: a live line on a terminal, otherwise a line every ``interval_s`` seconds."""

    def __init__(self, stream: TextIO | None = None, interval_s: float | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval_s if interval_s is not None else (0.1 if self._tty else 5.0)
        self._last = 0.0

    def __call__(self, p: FileProgress) -> None:
        now = time.monotonic()
        if not p.done and now - self._last < self._interval:
            return
        self._last = now
        total = f"/{p.total_bytes / 2**20:.1f}" if p.total_bytes else ""
        state = " failed" if p.failed else (" done" if p.done else "")
        line = (
            f"{p.name}: {p.records} records, {p.bytes_sent / 2**20:.1f}{total} MiB sent, "
            f"{p.bytes_written / 2**20:.1f} MiB out, {p.requests} requests{state}"
        )
        if self._tty:
            self._stream.write(f"\r\x1b[K{line}" + ("\n" if p.done else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
