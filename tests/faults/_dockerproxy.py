"""A Docker API proxy on a unix socket that injects faults: the fault-injection tier's only moving part.

Tests put it between the emulator and the engine (``EmulatorConfig(docker_host=proxy.url)`` or
``DOCKER_HOST=proxy.url`` for the CLI). Healthy, it forwards every request to ``/var/run/docker.sock`` byte for
byte, streaming (``wait`` is a long poll, ``logs`` a stream that lasts as long as the container). A :class:`Fault`
names one Docker call (:data:`CALLS`, matched on method + path pattern) and what happens at its ``nth``
occurrence:

* ``"drop"``: the connection is closed without an answer (a daemon that went away);
* ``"500"``: ``500 Internal Server Error`` with a Docker-style JSON message;
* ``after_s > 0``: the call is forwarded, then its connection is cut ``after_s`` seconds later (mid-stream).

With ``outage=True`` the engine stays "gone" from that moment: every open connection is cut and every later
request gets the same answer, until :meth:`FaultProxy.heal`. Every request is recorded in :attr:`FaultProxy.calls`
so a test can prove that its fault was hit.

Each forwarded request is sent with ``Connection: close``, so one client connection carries one request and the
proxy never has to parse a response (bodies and streams are relayed as raw bytes).
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self

UPSTREAM = "/var/run/docker.sock"

#: Docker calls by name: (method, path pattern after the optional /vX.YY prefix, query string excluded).
CALLS: dict[str, tuple[str, str]] = {
    "create": ("POST", r"/containers/create"),
    "start": ("POST", r"/containers/[^/]+/start"),
    "wait": ("POST", r"/containers/[^/]+/wait"),
    "logs": ("GET", r"/containers/[^/]+/logs"),
    "archive": ("GET", r"/containers/[^/]+/archive"),
    "put_archive": ("PUT", r"/containers/[^/]+/archive"),
    "inspect": ("GET", r"/containers/[^/]+/json"),
    "kill": ("POST", r"/containers/[^/]+/kill"),
    "remove": ("DELETE", r"/containers/[^/]+"),
    "network_create": ("POST", r"/networks/create"),
    "network_remove": ("DELETE", r"/networks/[^/]+"),
    "image_inspect": ("GET", r"/images/.+/json"),
    "ping": ("GET", r"/_ping"),
}

Action = Literal["drop", "500"]


@dataclass
class Fault:
    """What to do at the ``nth`` occurrence of ``call`` (a :data:`CALLS` name or ``"METHOD /path-regex"``)."""

    call: str
    action: Action = "drop"
    nth: int = 1
    #: How many matching occurrences from the nth on fail (None: every one until healed).
    times: int | None = 1
    #: Forward the call, then cut its connection this many seconds later (0: fail at once).
    after_s: float = 0.0
    #: The engine stays gone from the moment this fault fires (every connection, every call).
    outage: bool = False
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        """True when ``method path`` is this fault's call."""
        want_method, _, pattern = self.call.partition(" ")
        if self.call in CALLS:
            want_method, pattern = CALLS[self.call]
        return method == want_method and re.fullmatch(r"(?:/v[0-9.]+)?" + pattern, path) is not None


@dataclass(frozen=True)
class Call:
    """One request the proxy saw, and what it did with it."""

    method: str
    path: str
    verdict: str  # "forward" | "drop" | "500" | "cut"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    proxy: FaultProxy


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.proxy._serve(self.request)


class FaultProxy:
    """The proxy; a context manager (``with FaultProxy(tmp_path / "docker.sock") as proxy: ...``)."""

    def __init__(self, path: Path | str, upstream: str = UPSTREAM) -> None:
        self.path = str(path)
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self._outage: Action | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        """``unix:///...``: what DOCKER_HOST / ``EmulatorConfig.docker_host`` takes."""
        return f"unix://{self.path}"

    # -- control -----------------------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        """Arm ``fault`` (counted from now)."""
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        """Forget every fault and end an outage: the engine answers again."""
        with self._lock:
            self.faults.clear()
            self._outage = None

    @property
    def down(self) -> bool:
        """True during an outage."""
        return self._outage is not None

    def hits(self, verdicts: tuple[str, ...] = ("drop", "500", "cut")) -> list[Call]:
        """The calls a fault answered."""
        with self._lock:
            return [c for c in self.calls if c.verdict in verdicts]

    # -- serving -----------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Listen on :attr:`path` (in a daemon thread)."""
        Path(self.path).unlink(missing_ok=True)
        server = _Server(self.path, _Handler)
        server.proxy = self
        self._server = server
        threading.Thread(target=server.serve_forever, name="docker-fault-proxy", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._cut_all()
        Path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cut_all(self) -> None:
        with self._lock:
            conns = list(self._open)
        for s in conns:
            _shut(s)

    def _decide(self, method: str, path: str) -> tuple[str, float]:
        """The verdict for one request, and (for ``cut``) after how many seconds."""
        outage_started = False
        with self._lock:
            verdict, after = "forward", 0.0
            if self._outage is not None:
                verdict = self._outage
            else:
                for f in self.faults:
                    if not f.matches(method, path):
                        continue
                    f.seen += 1
                    if f.seen < f.nth or (f.times is not None and f.fired >= f.times):
                        continue
                    f.fired += 1
                    verdict, after = ("cut", f.after_s) if f.after_s > 0 else (f.action, 0.0)
                    if f.outage and verdict != "cut":
                        self._outage, outage_started = f.action, True
                    break
            self.calls.append(Call(method, path, verdict))
        if outage_started:
            self._cut_all()
        return verdict, after

    def _serve(self, client: socket.socket) -> None:
        head, rest = _read_head(client)
        if head is None:
            return
        lines = head.split(b"\r\n")
        try:
            method, target, _ = lines[0].decode("latin-1").split(" ", 2)
        except ValueError:
            return
        path = target.split("?", 1)[0]
        verdict, after = self._decide(method, path)
        if verdict == "drop":
            _shut(client)
            return
        if verdict == "500":
            _drain_body(client, lines, rest)
            body = b'{"message":"injected fault: the engine failed (500)"}'
            client.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            _shut(client)
            return
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith((b"connection:", b"keep-alive:"))]
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.upstream)
        except OSError:
            _shut(client)
            return
        with self._lock:
            if self._outage is not None:  # went down between the verdict and now
                _shut(client)
                upstream.close()
                return
            self._open.update((client, upstream))
        try:
            upstream.sendall(b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""]) + rest)
            if verdict == "cut":
                threading.Timer(after, _shut_both, args=(client, upstream)).start()
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream, close_dst=False)
            back.join()
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            _shut(upstream)
            upstream.close()
            _shut(client)


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return None, b""
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def _drain_body(sock: socket.socket, lines: list[bytes], rest: bytes) -> None:
    """Read a Content-Length body so that the client is not cut off while it still sends."""
    length = 0
    for ln in lines[1:]:
        name, _, value = ln.partition(b":")
        if name.strip().lower() == b"content-length":
            with contextlib.suppress(ValueError):
                length = int(value.strip())
    remaining = length - len(rest)
    sock.settimeout(5.0)
    with contextlib.suppress(OSError):
        while remaining > 0:
            chunk = sock.recv(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)


def _pipe(src: socket.socket, dst: socket.socket, *, close_dst: bool = True) -> None:
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        if close_dst:
            _shut(dst)
        else:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def _shut_both(a: socket.socket, b: socket.socket) -> None:
    _shut(a)
    _shut(b)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def wait_until(predicate: object, timeout_s: float = 30.0) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout_s`` passes."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False
