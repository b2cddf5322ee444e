"""The contract suite's JUnit XML (``pytest --junitxml``) read check by check, with the fix its failures carry.

A failed check's message is the suite's evidence block: ``[t01] MUST: <title> -- <problem>``, then ``sent:``,
``expected:``, ``got:``, ``fix:``, ``source:`` lines and the container's log tail. The console shows the
problem and the fix up front and the whole message folded. Other test cases in the file are shown as they are.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass

from emulator.api.console.html import esc

#: A report larger than this is refused (the suite's own reports are a few KB to a few hundred KB).
MAX_REPORT_BYTES = 20 * 2**20
_HEAD = re.compile(r"^\[(?P<id>[a-z]\d+)\] (?:(?P<level>MUST|SHOULD): )?(?P<rest>.*)$")
_TEST_ID = re.compile(r"^test_(?P<id>[a-z]\d\d)_")
_FIELD = re.compile(r"^\s+(?P<key>sent|expected|got|fix|source):\s*(?P<value>.*)$")


class ReportError(ValueError):
    """Raised when a file is not a JUnit XML report."""


@dataclass
class CheckResult:
    """One test case of the report."""

    name: str
    classname: str
    outcome: str  # passed, failed, error, skipped
    seconds: float
    check_id: str = ""
    level: str = ""
    headline: str = ""
    fix: str = ""
    message: str = ""


def parse(xml: str | bytes) -> list[CheckResult]:
    """The test cases of a JUnit XML report, in file order.

    Raises:
        ReportError: not XML, or no ``testcase`` in it, or too large.
    """
    if len(xml) > MAX_REPORT_BYTES:
        raise ReportError(f"the report is {len(xml)} bytes; the console reads reports up to {MAX_REPORT_BYTES}")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ReportError(f"not XML ({exc}); give the file pytest --junitxml=FILE wrote") from None
    cases = list(root.iter("testcase"))
    if not cases:
        raise ReportError("no <testcase> in it; give the file pytest --junitxml=FILE wrote")
    return [_case(c) for c in cases]


def _case(case: ET.Element) -> CheckResult:
    name = case.get("name", "")
    outcome, message = "passed", ""
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            outcome = "failed" if child.tag == "failure" else child.tag
            message = (child.text or "").strip() or child.get("message", "")
            break
    try:
        seconds = float(case.get("time", "0"))
    except ValueError:
        seconds = 0.0
    result = CheckResult(name, case.get("classname", ""), outcome, seconds, message=message)
    m = _TEST_ID.match(name)
    result.check_id = m.group("id") if m else ""
    lines = message.splitlines()
    for line in lines:  # pytest may put a location line before the suite's own message
        head = _HEAD.match(line.strip())
        if head:
            result.check_id = result.check_id or head.group("id")
            result.level = head.group("level") or ""
            result.headline = head.group("rest")
            break
    else:
        result.headline = lines[0] if lines else ""
    for line in lines:
        f = _FIELD.match(line)
        if f and f.group("key") == "fix":
            result.fix = f.group("value")
    return result


def render(results: list[CheckResult], source: str, *, title: str = "") -> str:
    """The report as HTML: the counts, then a card per check, failures first (each one's problem and fix up front);
    ``title`` (e.g. the file's whole path) shows on hovering the source."""
    counts = Counter(r.outcome for r in results)
    order = ("failed", "error", "passed", "skipped")
    summary = " · ".join(f"{counts[o]} {o}" for o in order if counts[o])
    cards = []
    rank = {"failed": 0, "error": 0}  # failures first, then the rest in the file's order
    for r in sorted(results, key=lambda r: rank.get(r.outcome, 1)):
        title = f"[{r.check_id}] " if r.check_id else ""
        level = f" {r.level}" if r.level else ""
        body = ""
        if r.outcome in ("failed", "error"):
            body += f'<p class="problem">{esc(r.headline)}</p>'
            if r.fix:
                body += f'<p>fix: <span class="fix">{esc(r.fix)}</span></p>'
            body += f"<details><summary>the whole message</summary><pre>{esc(r.message)}</pre></details>"
        elif r.outcome == "skipped" and r.message:
            body += f'<p class="note">{esc(r.message.splitlines()[0])}</p>'
        cards.append(
            f'<div class="card check {r.outcome}" data-check="{esc(r.check_id or r.name)}" data-outcome="{r.outcome}">'
            f"<strong>{esc(title)}{esc(r.name)}</strong>{esc(level)} · {esc(r.outcome)} · {r.seconds:.2f} s"
            f' <span class="note">{esc(r.classname)}</span>{body}</div>'
        )
    return (
        f'<p class="summary-line"><span title="{esc(title or source)}">{esc(source)}</span>: {len(results)} checks · '
        f"{esc(summary)}</p>" + '<div class="checks">' + "".join(cards) + "</div>"
    )
