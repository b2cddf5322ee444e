"""HTML building blocks of the console: escaping, the page layout (a ``string.Template``), tables, badges, and a
Describe answer as nested definition lists. Every value that reaches a page goes through :func:`esc`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

#: Status words and the colour family the stylesheet gives them (``st-ok`` green, ``st-bad`` red, ...).
_STATUS_CLASS = {
    **dict.fromkeys(("Completed", "Succeeded", "InService", "Active"), "ok"),
    **dict.fromkeys(("Failed",), "bad"),
    **dict.fromkeys(("InProgress", "Executing", "Starting", "Creating", "Updating", "Stopping", "Deleting"), "run"),
    **dict.fromkeys(("Stopped", "NotExecuted", "OutOfService"), "off"),
}
#: Strings longer than this are folded into a <details> in a Describe.
_FOLD_CHARS = 200


_SPECIAL = re.compile(r"[&<>\"']")
_PLAIN = re.compile(r"[A-Za-z0-9._~-]*")


def esc(value: object) -> str:
    """``value`` as text safe in HTML content and attribute values."""
    text = str(value)
    return escape(text, quote=True) if _SPECIAL.search(text) else text  # most names need nothing: 1,000 rows


def href(*parts: str, query: Mapping[str, str] | None = None) -> str:
    """``/console/<part>/<part>?k=v``, every part quoted."""
    path = "/console/" + "/".join(p if _PLAIN.fullmatch(p) else quote(p, safe="") for p in parts)
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
    return path


def status_class(status: str | None) -> str:
    """The CSS class of a status word (``st-ok``, ``st-bad``, ``st-run``, ``st-off``; ``st-wait`` otherwise)."""
    return "st-" + _STATUS_CLASS.get(status or "", "wait")


@cache
def badge(status: str | None) -> str:
    """A status word as a coloured badge."""
    text = status or "Pending"
    return f'<span class="badge {status_class(text)}" data-status="{esc(text)}">{esc(text)}</span>'


def when(value: Any) -> str:
    """A timestamp as ``2026-12-07 03:31:18`` (UTC), or empty."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")[:19]  # strftime is 3x slower
    return "" if value is None else esc(value)


def link(url: str, text: str) -> str:
    """An anchor; ``url`` comes from :func:`href` (already quoted), ``text`` is escaped."""
    return f'<a href="{esc(url)}">{esc(text)}</a>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "none yet", body_id: str = "") -> str:
    """A table; cells are HTML already (build them with :func:`esc`, :func:`link`, :func:`badge`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="empty">{esc(empty)}</td></tr>'
    ident = f' id="{esc(body_id)}"' if body_id else ""
    return f'<table class="list"><thead><tr>{head}</tr></thead><tbody{ident}>{body}</tbody></table>'


def describe(value: Any) -> str:
    """A Describe answer (nested dicts and lists) as nested definition lists, readable at a glance."""
    if isinstance(value, Mapping):
        if not value:
            return '<span class="empty">{}</span>'
        items = "".join(f"<dt>{esc(k)}</dt><dd>{describe(v)}</dd>" for k, v in value.items() if v is not None)
        return f'<dl class="describe">{items}</dl>'
    if isinstance(value, list | tuple):
        if not value:
            return '<span class="empty">[]</span>'
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return ", ".join(f"<code>{esc(v)}</code>" for v in value)
        return '<ol class="describe">' + "".join(f"<li>{describe(v)}</li>" for v in value) + "</ol>"
    if isinstance(value, datetime):
        return f"<time>{when(value)}</time>"
    if isinstance(value, bool):
        return f"<code>{'true' if value else 'false'}</code>"
    if isinstance(value, str) and (len(value) > _FOLD_CHARS or "\n" in value):
        return f"<details><summary>{len(value)} characters</summary><pre>{esc(_pretty(value))}</pre></details>"
    return f"<code>{esc(value)}</code>"


def _pretty(text: str) -> str:
    """JSON text indented (a pipeline definition), other text as it is."""
    if text[:1] in "{[":
        try:
            return json.dumps(json.loads(text), indent=2)
        except ValueError:
            pass
    return text


@dataclass
class Block:
    """A part of a page; a ``live`` block is re-rendered by the page's poll while the page is live."""

    id: str
    html: str
    live: bool = False


@dataclass
class Page:
    """What a view returns: a title, its blocks, whether it still changes, and its HTTP status."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    live: bool = False
    status: int = 200
    #: A long page (hundreds of rows) polls this many times less often: each poll renders it all again.
    slow_poll: int = 1

    def fragments(self) -> dict[str, Any]:
        """The live blocks, for the page's poll (``?fragment=1``)."""
        return {"live": self.live, "parts": {b.id: b.html for b in self.blocks if b.live}}


@cache
def _layout() -> Template:
    return Template(resources.files(__package__).joinpath("templates/layout.html").read_text(encoding="utf-8"))


def render(page: Page, *, token: str, nav: str, poll_ms: int) -> str:
    """The whole HTML document of ``page``."""
    body = "".join(f'<section class="block" data-part="{esc(b.id)}">{b.html}</section>' for b in page.blocks)
    return _layout().substitute(
        title=esc(page.title),
        token=esc(token),
        live="1" if page.live else "0",
        poll_ms=str(poll_ms * page.slow_poll),
        nav=nav,
        body=body,
    )
