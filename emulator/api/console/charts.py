"""A training job's metrics: the series its MetricDefinitions find in its log lines, drawn as SVG line charts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from emulator.api.console.html import esc
from emulator.errors import EmulatorError
from emulator.training.plan import metric_patterns

_W, _H = 520, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 24, 28


@dataclass
class Series:
    """One metric: its values in the order the logs printed them, with each line's timestamp (ms)."""

    name: str
    values: list[float] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)


def series(definitions: Sequence[Mapping[str, str]], lines: Iterable[tuple[int, str]]) -> list[Series]:
    """Every match of each MetricDefinitions regex in ``lines`` ((timestamp ms, text), in order): the first group
    as a float, as the platform reads metrics (a line may feed several metrics; unparsable captures are skipped).
    """
    try:
        patterns = metric_patterns(definitions)
    except EmulatorError:  # a bad regex was refused when the job was created; nothing to draw otherwise
        return []
    out = [Series(name) for name, _ in patterns]
    for stamp, text in lines:
        for s, (_, pattern) in zip(out, patterns, strict=True):
            m = pattern.search(text)
            if not m:
                continue
            try:
                s.values.append(float(m.group(1) if m.groups() else m.group(0)))
            except ValueError:
                continue
            s.stamps.append(stamp)
    return out


def chart(s: Series) -> str:
    """An SVG line chart of one series: a point per value (``circle.pt``, value in ``data-v``), x = its order."""
    n = len(s.values)
    lo, hi = (min(s.values), max(s.values)) if n else (0.0, 1.0)
    if hi == lo:  # one value, or a flat line: a band of 10 % around it
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    width, height = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (width * i / (n - 1) if n > 1 else width / 2)

    def y(v: float) -> float:
        return _TOP + height * (hi - v) / (hi - lo)

    coords = [(x(i), y(v)) for i, v in enumerate(s.values)]
    points = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
    dots = "".join(
        f'<circle class="pt" cx="{cx:.1f}" cy="{cy:.1f}" r="3" data-v="{v!r}">'
        f"<title>{esc(s.name)} #{i + 1} = {v:g} at {_clock(stamp)}</title></circle>"
        for i, ((cx, cy), v, stamp) in enumerate(zip(coords, s.values, s.stamps, strict=True))
    )
    last = f"last {s.values[-1]:g}" if n else "no values yet"
    return (
        f'<svg class="chart" data-metric="{esc(s.name)}" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{esc(s.name)}: {n} values">'
        f'<text x="{_LEFT}" y="16">{esc(s.name)} · {n} value{"" if n == 1 else "s"} · {esc(last)}</text>'
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + height}"/>'
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP + height}" x2="{_LEFT + width}" y2="{_TOP + height}"/>'
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{hi:.4g}</text>'
        f'<text x="{_LEFT - 6}" y="{_TOP + height}" text-anchor="end">{lo:.4g}</text>'
        f'<text x="{_LEFT}" y="{_H - 8}">1</text>'
        f'<text x="{_LEFT + width}" y="{_H - 8}" text-anchor="end">{max(n, 1)}</text>'
        f'<polyline class="line" points="{points}"/>{dots}</svg>'
    )


def _clock(stamp_ms: int) -> str:
    return datetime.fromtimestamp(stamp_ms / 1000, UTC).strftime("%H:%M:%S")
