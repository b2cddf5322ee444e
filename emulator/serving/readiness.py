"""Sure signs that a starting serving container will never pass /ping: what ``Endpoint(fail_fast=True)`` checks.

The platform only polls ``GET /ping`` until ContainerStartupHealthCheckTimeoutInSeconds (240 s) has passed. Some
failures are visible much sooner, and a gate that takes minutes to say "no" is not used: the server listens, but
only on 127.0.0.1 or on another port (read from the container's ``/proc/net/tcp``), or ``/ping`` keeps answering
an error status or answers only after more than the platform's 2 s. A sign counts once it has held without
a break for :data:`~emulator.constants.FAST_FAIL_LISTEN_S` (sockets) or
:data:`~emulator.constants.FAST_FAIL_PING_S` (``/ping``); 503 ("still loading") and "nothing listens yet" never
count: those wait for the startup timeout, as on the platform.

>>> from emulator.runtime.inspect import Listener
>>> w = ReadinessWatch()
>>> w.listeners(0.0, [Listener("127.0.0.1", 8080)]) is None
True
>>> print(w.listeners(5.0, [Listener("127.0.0.1", 8080)]).cause)
loopback-only
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emulator.constants import FAST_FAIL_LISTEN_S, FAST_FAIL_PING_S, PING_PATH, PING_TIMEOUT_S, SERVING_PORT
from emulator.runtime.inspect import Listener

#: How long a patient ``GET /ping`` waits, to tell a slow answer from none when the 2 s ping timed out.
PATIENT_PING_S = 8.0
#: Slow /ping answers in a row that fail the start (or FAST_FAIL_PING_S of them, if that comes first).
SLOW_PINGS_IN_A_ROW = 2
#: How often the sockets are read (one ``docker exec`` each) while /ping is polled much more often.
SOCKET_READ_INTERVAL_S = 0.5
#: /ping answers that mean "not yet", never "never": 503 Service Unavailable while the model loads.
_LOADING = 503


@dataclass(frozen=True)
class NotReady:
    """Why a starting container will not pass /ping: a short cause code, the problem and the fix, one line each."""

    #: ``loopback-only``, ``other-port``, ``ping-status`` or ``ping-slow``.
    cause: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}: {self.fix}"


class _Streak:
    """Since when one sign (with the same value) has held without a break."""

    def __init__(self) -> None:
        self.key: object = None
        self.since: float | None = None

    def see(self, now: float, key: object) -> float:
        """Record ``key`` (None: the sign is absent) at ``now``; the seconds it has held."""
        if key is None or key != self.key:
            self.key, self.since = key, (None if key is None else now)
        return 0.0 if self.since is None else now - self.since


class ReadinessWatch:
    """Feeds on what a start-up loop sees and says when a sure sign of failure has held long enough."""

    def __init__(self, port: int = SERVING_PORT) -> None:
        self.port = port
        self._sockets = _Streak()
        self._ping = _Streak()
        self._read_at: float | None = None
        self._slowest = 0.0
        self._slow_count = 0

    def wants_sockets(self, now: float) -> bool:
        """Whether it is time to read the sockets again (at most every :data:`SOCKET_READ_INTERVAL_S`)."""
        if self._read_at is not None and now - self._read_at < SOCKET_READ_INTERVAL_S:
            return False
        self._read_at = now
        return True

    def listeners(self, now: float, found: Sequence[Listener] | None) -> NotReady | None:
        """Judge the container's listening sockets (None: they could not be read, which proves nothing)."""
        if found is None:
            self._sockets.see(now, None)
            return None
        ours = [x for x in found if x.port == self.port]
        if any(not x.loopback for x in ours):
            self._sockets.see(now, None)  # reachable: /ping decides
            return None
        others = sorted({x.port for x in found if x.port != self.port})
        if ours:
            key: tuple[object, ...] | None = ("loopback-only", tuple(str(x) for x in ours))
        elif others:
            key = ("other-port", tuple(others))
        else:
            key = None  # nothing listens yet: still starting
        if self._sockets.see(now, key) < FAST_FAIL_LISTEN_S or key is None:
            return None
        if key[0] == "loopback-only":
            return NotReady(
                "loopback-only",
                f"the server listens on {', '.join(str(x) for x in ours)} only, inside the container, which the "
                f"published port {self.port} cannot reach",
                f"bind to 0.0.0.0:{self.port} (all interfaces), not 127.0.0.1 or localhost",
            )
        return NotReady(
            "other-port",
            f"nothing listens on port {self.port}; the container listens on port {', '.join(map(str, others))}",
            f"listen on 0.0.0.0:{self.port}: SageMaker sends /ping and /invocations to port {self.port} only"
            + (
                f" (the image is labelled accept-bind-to-port=true: listen on SAGEMAKER_BIND_TO_PORT, here {self.port})"
                if self.port != SERVING_PORT
                else ""
            ),
        )

    def ping(self, now: float, status: int | None, *, seconds: float = 0.0) -> NotReady | None:
        """Judge one ``GET /ping``: its status (None: no answer) and how long the answer took.

        No answer (refused, reset, or no answer within the ping timeout) proves nothing: a server whose workers
        are still booting has its socket accepting connections before anything answers them. An answer that
        came after more than the platform's 2 s, a status other than 200 and 503: those are signs.
        """
        if status is not None and seconds > PING_TIMEOUT_S:
            key: object = "slow"
        elif status is None or status in (200, _LOADING):
            key = None
        else:
            key = status
        if key == "slow":
            again = self._ping.key == "slow"
            self._slowest, self._slow_count = (
                (max(self._slowest, seconds), self._slow_count + 1) if again else (seconds, 1)
            )
        held_s = self._ping.see(now, key)
        if key is None:
            return None
        if key == "slow":
            # Each slow answer already took seconds; two in a row (a late first answer from a worker that was
            # still booting is followed by a fast one) are as sure as FAST_FAIL_PING_S of them.
            if self._slow_count < SLOW_PINGS_IN_A_ROW and held_s < FAST_FAIL_PING_S:
                return None
            return NotReady(
                "ping-slow",
                f"GET {PING_PATH} answered only after more than {PING_TIMEOUT_S:g} s, {self._slow_count} times in a "
                f"row (up to {self._slowest:.1f} s); the platform gives each ping {PING_TIMEOUT_S:g} s",
                f"answer GET {PING_PATH} within {PING_TIMEOUT_S:g} s: no heavy work in the handler (load the model "
                "once at start-up, answer 503 until it is loaded, then 200)",
            )
        if held_s < FAST_FAIL_PING_S:
            return None
        return NotReady(
            "ping-status",
            f"GET {PING_PATH} answered HTTP {key} every time for {FAST_FAIL_PING_S:g} s",
            f"answer GET {PING_PATH} with 200 once the model is loaded (503 while it loads); "
            + (
                f"HTTP {key} is a redirect: serve {PING_PATH} itself, without a trailing slash"
                if isinstance(key, int) and 300 <= key < 400
                else f"HTTP {key} means the handler fails or the route is missing"
            ),
        )
