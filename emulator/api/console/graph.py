"""A pipeline drawn as an SVG graph: a column per depth of the dependency graph, a box per step coloured by its
status, an arrow per dependency (DependsOn, a Get reference, a Condition's branch), each box a link to its job."""

from __future__ import annotations

from collections.abc import Mapping

from emulator.api.console.html import esc, status_class
from emulator.pipelines import PipelineDefinition

_NODE_W, _NODE_H = 180, 46
_GAP_X, _GAP_Y, _PAD = 64, 16, 16
_NAME_CHARS = 24


def layout(definition: PipelineDefinition) -> dict[str, tuple[int, int]]:
    """Each step's (column, row): the column is the longest chain of steps before it."""
    depth: dict[str, int] = {}
    for name in definition.order:  # topological: every upstream step is placed already
        upstream = definition.steps[name].upstream
        depth[name] = 1 + max((depth[u] for u in upstream), default=-1)
    rows: dict[int, int] = {}
    place = {}
    for name in definition.order:
        col = depth[name]
        place[name] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return place


def svg(
    definition: PipelineDefinition,
    statuses: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> str:
    """The graph; ``statuses`` colour the steps (none: the definition alone), ``links`` make them anchors."""
    place = layout(definition)
    statuses = statuses or {}
    links = links or {}
    cols = 1 + max((c for c, _ in place.values()), default=0)
    rows = 1 + max((r for _, r in place.values()), default=0)
    width = _PAD * 2 + cols * _NODE_W + (cols - 1) * _GAP_X
    height = _PAD * 2 + rows * _NODE_H + (rows - 1) * _GAP_Y

    def corner(name: str) -> tuple[int, int]:
        col, row = place[name]
        return _PAD + col * (_NODE_W + _GAP_X), _PAD + row * (_NODE_H + _GAP_Y)

    edges = []
    for name, step in definition.steps.items():
        x2, y2 = corner(name)
        for up in sorted(step.upstream):
            x1, y1 = corner(up)
            sx, sy, ex, ey = x1 + _NODE_W, y1 + _NODE_H / 2, x2, y2 + _NODE_H / 2
            mid = (sx + ex) / 2
            edges.append(
                f'<path class="edge" data-from="{esc(up)}" data-to="{esc(name)}" '
                f'd="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex - 6},{ey}" marker-end="url(#arrow)"/>'
            )
    nodes = []
    for name in definition.order:
        step = definition.steps[name]
        x, y = corner(name)
        status = statuses.get(name, "Pending" if statuses else "")
        label = name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"
        sub = f"{step.type} · {status}" if status else step.type
        box = (
            f'<g class="step" data-step="{esc(name)}" data-status="{esc(status)}">'
            f"<title>{esc(name)} ({esc(step.type)}){': ' + esc(status) if status else ''}</title>"
            f'<rect class="node {status_class(status)}" x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="6"/>'
            f'<text class="name" x="{x + 10}" y="{y + 19}">{esc(label)}</text>'
            f'<text class="status" x="{x + 10}" y="{y + 36}">{esc(sub)}</text></g>'
        )
        if name in links:
            box = f'<a href="{esc(links[name])}">{box}</a>'
        nodes.append(box)
    return (
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="pipeline graph, {len(place)} steps">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>'
        + "".join(edges)
        + "".join(nodes)
        + "</svg>"
    )
