"""Raw HTTP to a serving container, classified the way the checks judge it (answer, crash, hang, reset).

Requests go through the endpoint's own client (``Endpoint.invoker.post``), which only ever talks to the
container's port published on 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contract_tests._report import body_preview, http_request
from contract_tests.config import media_type
from emulator.constants import INVOCATIONS_PATH, MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    from emulator import Endpoint

__all__ = ["Answer", "lines", "media_type", "payload_of_size", "post"]


@dataclass
class Answer:
    """What one request got: an HTTP answer, or ``failure`` (the container exited, no answer, connection reset)."""

    sent: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed_s: float = 0.0
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        """The answer's Content-Type ("" when absent)."""
        return str(self.headers.get("Content-Type", ""))

    def describe(self) -> str:
        """``HTTP 400 (text/plain) after 0.01 s, body 12 bytes: '...'`` or the failure."""
        if self.failure is not None:
            return self.failure
        return (
            f"HTTP {self.status} ({self.content_type or 'no Content-Type'}) after {self.elapsed_s:.2f} s, "
            f"body {body_preview(self.body)}"
        )


def post(ep: Endpoint, body: bytes, headers: Mapping[str, str], timeout_s: float | None = None) -> Answer:
    """``POST /invocations`` with exactly these headers; never raises for what the container does."""
    from emulator import EndpointNotReady, ModelError
    from emulator.serving.invocations import TIMEOUT_MESSAGE

    answer = Answer(http_request("POST", INVOCATIONS_PATH, headers, body))
    timeout = ep.invocation_timeout_s if timeout_s is None else timeout_s
    try:
        raw = ep.invoker.post(body, headers, timeout_s=timeout)
    except EndpointNotReady as exc:
        answer.failure = f"the container exited: {str(exc).splitlines()[0][:300]}"
        return answer
    except ModelError as exc:
        if exc.original_message == TIMEOUT_MESSAGE:
            answer.failure = f"no answer within {timeout:g} s (the request hung)"
        else:
            code = ep.wait(1.0)
            answer.failure = (
                f"the container exited with status {code} while handling the request"
                if code is not None
                else f"the connection failed without an HTTP answer ({exc.original_message or exc})"
            )
        return answer
    try:
        answer.status, answer.headers, answer.body, answer.elapsed_s = (
            raw.status,
            dict(raw.headers),
            raw.read(),
            raw.elapsed_s,
        )
    finally:
        raw.close()
    return answer


def lines(body: bytes) -> list[str]:
    """The non-empty lines of a text body."""
    return [ln for ln in body.decode("utf-8", "replace").splitlines() if ln.strip()]


def payload_of_size(rows: list[str], size: int = MAX_PAYLOAD_BYTES) -> bytes:
    """Exactly ``size`` bytes of the given rows, repeated; the last row is padded (``0.2`` -> ``0.2000``)."""
    if not rows:
        raise ValueError("no rows to build a payload from")
    unit = ("\n".join(rows) + "\n").encode("utf-8")
    body = bytearray(unit * (size // len(unit)))
    i = 0
    while True:
        line = (rows[i % len(rows)] + "\n").encode("utf-8")
        if len(body) + len(line) > size:
            break
        body += line
        i += 1
    rest = size - len(body)
    if rest:
        last = bytes(body).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        # Trailing zeros after a decimal keep the number (and the row) valid; otherwise pad with spaces.
        pad = b"0" if re.search(rb"\d\.\d*$", last) else b" "
        body = body[:-1] + pad * rest + b"\n"
    assert len(body) == size
    return bytes(body)
