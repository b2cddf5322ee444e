"""The per-step status table ``pipeline run`` draws on stderr while the steps run."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from emulator.pipelines import PipelineExecution, StepState

_COLUMNS = ("Step", "Type", "Status", "Duration", "Job name", "Note")


class StatusTable:
    """The per-step status table on stderr: redrawn in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: TextIO, *, live: bool, quiet: bool = False, min_redraw_s: float = 0.5) -> None:
        self._stream = stream
        self._live = live
        self._quiet = quiet
        self._min_redraw_s = min_redraw_s
        self._drawn = 0
        self._last = 0.0
        self._seen: dict[str, str] = {}
        self._lock = threading.RLock()
        self._execution: PipelineExecution | None = None

    def __call__(self, execution: PipelineExecution, state: StepState | None) -> None:
        """A status change (``state``) or a scheduler tick (None)."""
        if self._quiet:
            return
        with self._lock:
            self._execution = execution
            if self._live:
                if state is not None or time.monotonic() - self._last >= self._min_redraw_s:
                    self._redraw(execution)
            elif state is not None and state.status != "Starting" and self._seen.get(state.name) != state.status:
                self._seen[state.name] = state.status
                self._stream.write(_line(_row(state)) + "\n")
                self._stream.flush()

    def close(self, execution: PipelineExecution) -> None:
        """Draw the final table (on a terminal) or print it once as a summary (otherwise)."""
        if self._quiet:
            return
        with self._lock:
            if self._live:
                self._redraw(execution)
                return
            self._stream.write("\n")
            for row in rows(execution):
                self._stream.write(_line(row) + "\n")
            self._stream.flush()

    def echo(self, text: str) -> None:
        """Print a line (a log message) above the live table, which is then drawn again below it."""
        with self._lock:
            if self._live and self._drawn:
                self._stream.write(f"\x1b[{self._drawn}F\x1b[J")  # back to the table's first line; clear below
                self._drawn = 0
            self._stream.write(text + "\n")
            if self._live and self._execution is not None:
                self._redraw(self._execution)
            self._stream.flush()

    @contextlib.contextmanager
    def logs_above(self) -> Iterator[None]:
        """While the table is live, log records go above it instead of through it (which breaks the redraw)."""
        if not self._live:
            yield
            return
        root = logging.getLogger()
        saved = root.handlers[:]
        handler = _AboveTable(self)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.setLevel(min((h.level for h in saved), default=logging.INFO))
        root.handlers = [handler]
        try:
            yield
        finally:
            root.handlers = saved

    def _redraw(self, execution: PipelineExecution) -> None:
        width = max(20, shutil.get_terminal_size((120, 20)).columns - 1)  # no wrapping: it breaks cursor moves
        lines = [_line(row)[:width] for row in rows(execution)]
        out = f"\x1b[{self._drawn}F" if self._drawn else ""
        out += "".join(f"\x1b[2K{line}\n" for line in lines)
        self._stream.write(out)
        self._stream.flush()
        self._drawn = len(lines)
        self._last = time.monotonic()


class _AboveTable(logging.Handler):
    def __init__(self, table: StatusTable) -> None:
        super().__init__()
        self._table = table

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._table.echo(self.format(record))
        except Exception:
            self.handleError(record)


def rows(execution: PipelineExecution) -> list[tuple[str, ...]]:
    """The table: a header, then one row per step in the definition's order."""
    states = [execution.states[name] for name in execution.definition.order]
    return [_COLUMNS, *(_row(s) for s in states)]


def _row(s: StepState) -> tuple[str, ...]:
    shown = {"Pending": "-"}.get(s.status, s.status)
    return (s.name, s.type, shown, _seconds(s.duration_s), s.job_name or "", " ".join(s.note.split())[:80])


_WIDTHS = (24, 10, 11, 8, 44)


def _line(row: tuple[str, ...]) -> str:
    cells = [cell.ljust(w) for cell, w in zip(row, _WIDTHS, strict=False)]
    return "  ".join([*cells, *row[len(_WIDTHS) :]]).rstrip()


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f}s" if value < 60 else f"{int(value // 60)}m{int(value % 60):02d}s"
