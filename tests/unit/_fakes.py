"""A fake Docker engine for the unit tests of endpoints and transform jobs (tests/unit is on sys.path).

``FakeDocker`` implements the DockerSeam operations Endpoint uses; each fake "container" runs the recorder
image's own request handler (tests/images/recorder/serve.py, configured by the container's RECORDER_*
environment) in-process on a 127.0.0.1 port, so the unit and the integration tests exercise the same server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import queue
import signal
import socket
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_MANAGED
from emulator.errors import ContainerFailed
from emulator.runtime.docker import ContainerSpec, ContainerState, DockerSeam, ImageInfo, Managed

RECORDER = Path(__file__).resolve().parents[1] / "images" / "recorder" / "serve.py"
IMAGE = "sagemaker-emulator-test/recorder:latest"
_ids = itertools.count(1)


def load_recorder(env: dict[str, str]) -> ModuleType:
    """A fresh copy of the recorder's server module whose ENV is ``env``."""
    spec = importlib.util.spec_from_file_location(f"recorder_{next(_ids)}", RECORDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.ENV = dict(env)  # type: ignore[attr-defined]
    return module


def has_label(labels: Mapping[str, str], label: str) -> bool:
    """Whether ``labels`` carry ``label`` (``key`` or ``key=value``), as Docker's ``label`` filter decides."""
    key, eq, value = label.partition("=")
    return key in labels and (not eq or labels[key] == value)


class _Server(ThreadingHTTPServer):
    """A threaded server whose kill() also drops open keep-alive connections, as a dying process does."""

    daemon_threads = True
    #: Every server still alive, so that the test session can end them all (see kill_all_servers).
    alive: weakref.WeakSet[_Server] = weakref.WeakSet()

    def __init__(self, handler: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections: list[socket.socket] = []
        _Server.alive.add(self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a job abandoning its requests on stop) is expected here: no traceback."""

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.append(request)
        super().process_request(request, client_address)

    def kill(self) -> None:
        _Server.alive.discard(self)
        self.shutdown()
        self.server_close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class FakeContainer:
    def __init__(self, spec: ContainerSpec) -> None:
        self.spec = spec
        self.env = dict(spec.environment)
        self.recorder = load_recorder(self.env)
        self.server: _Server | None = None
        self.exited = threading.Event()
        self.code: int | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self.signals: list[int] = []

    def say(self, line: str) -> None:
        self.log.append(line)
        self.lines.put(line)

    def start(self) -> None:
        if "RECORDER_EXIT_AT_START" in self.env:
            self.say("recorder: exiting at start as RECORDER_EXIT_AT_START asks")
            self.exit(int(self.env["RECORDER_EXIT_AT_START"]))
            return
        self.server = _Server(self.recorder.Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        self.say("recorder: listening")

    def exit(self, code: int) -> None:
        if self.exited.is_set():
            return
        if self.server is not None:
            self.server.kill()
        self.code = code
        self.exited.set()
        self.lines.put(None)


class FakeDocker:
    """The DockerSeam operations Endpoint uses, against in-process servers."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.removed: list[str] = []

    def only(self) -> FakeContainer:
        assert len(self.containers) == 1
        return next(iter(self.containers.values()))

    def image_info(self, image: str) -> ImageInfo:
        return ImageInfo(id="sha256:fake", entrypoint=None, cmd=None, user="", labels={}, env=[])

    def create(self, spec: ContainerSpec) -> str:
        cid = f"{next(_ids):064x}"
        self.containers[cid] = FakeContainer(spec)
        return cid

    def start(self, container_id: str) -> None:
        self.containers[container_id].start()

    def wait(self, container_id: str, timeout_s: float | None = None) -> int | None:
        c = self.containers[container_id]
        return c.code if c.exited.wait(timeout_s) else None

    def signal(self, container_id: str, sig: int) -> None:
        c = self.containers[container_id]
        c.signals.append(sig)
        if sig == signal.SIGKILL:
            c.exit(137)
        elif c.env.get("RECORDER_IGNORE_SIGTERM") != "1":
            c.exit(0)

    def state(self, container_id: str) -> ContainerState:
        c = self.containers[container_id]
        return ContainerState("exited" if c.exited.is_set() else "running", c.code or 0, False)

    def iter_log_lines(self, container_id: str) -> Iterator[str]:
        c = self.containers[container_id]
        while (line := c.lines.get()) is not None:
            yield line

    def logs_tail(self, container_id: str, lines: int = 50) -> str:
        if container_id in self.removed:
            return ""
        return "\n".join(self.containers[container_id].log[-lines:]) + "\n"

    def host_port(self, container_id: str, port: int) -> int:
        c = self.containers[container_id]
        if c.server is None:
            raise ContainerFailed(f"Docker did not publish port {port} of the container")
        return int(c.server.server_address[1])

    def exec_output(self, container_id: str, argv: list[str]) -> bytes | None:
        # RECORDER_PROC_NET_TCP: what `cat /proc/net/tcp` prints in the container (the sockets it listens on).
        c = self.containers[container_id]
        text = c.env.get("RECORDER_PROC_NET_TCP")
        return None if text is None or c.exited.is_set() else text.encode()

    def exec_stdin(self, container_id: str, argv: list[str], chunks: Iterable[bytes]) -> int | None:
        return None  # no Pipe-mode channels here (tests/unit/test_input_modes.py fakes those)

    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]:
        return iter(())

    def remove(self, container_id: str) -> None:
        self.containers[container_id].exit(137)
        self.removed.append(container_id)

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str:
        raise AssertionError("endpoints need no network")

    def remove_network(self, network_id: str) -> None:
        raise AssertionError("endpoints need no network")

    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]:
        found: list[Managed] = []
        for cid, c in self.containers.items():
            labels = {LABEL_MANAGED: "true", **c.spec.labels}
            if cid in self.removed or not has_label(labels, label):
                continue
            state = "exited" if c.exited.is_set() else ("running" if c.server is not None else "created")
            ports: dict[int, int] = {}
            if c.server is not None and c.spec.publish_port is not None:
                ports[c.spec.publish_port] = int(c.server.server_address[1])
            found.append(Managed("container", cid, c.spec.name or cid[:12], labels, state, ports))
        return found

    #: What has_gpus() answers (a GPU instance type on an engine without GPUs is refused or run on the CPU).
    engine_gpus = False

    def has_gpus(self) -> bool:
        return self.engine_gpus

    def binds_in_place(self) -> bool:
        return False  # the fake's containers write nothing to the host: outputs leave through get_archive

    def close(self) -> None:
        pass


#: mypy proves that the fake implements the whole seam.
_SEAM_CHECK: type[DockerSeam] = FakeDocker


CONFIG = EmulatorConfig(stream_logs=False, serving_stop_grace_s=0.5, startup_timeout_s=5)


class JobsDocker(FakeDocker):
    """FakeDocker that also plays job containers (training, processing) and their networks.

    A container that publishes no port is a job's host; its environment says what it does:
    ``FAKE_LOG`` (lines separated by ``|``, printed at start), ``FAKE_EXIT_CODE`` (default 0),
    ``FAKE_RUN_S`` (seconds before it exits, default 0), ``FAKE_RUN_UNTIL_STOPPED=1`` (runs until signalled).
    Containers that publish a port run the recorder, as in :class:`FakeDocker`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.networks: dict[str, dict[str, str]] = {}
        self.removed_networks: list[str] = []

    def start(self, container_id: str) -> None:
        c = self.containers[container_id]
        if c.spec.publish_port is not None:
            super().start(container_id)
            return
        for line in filter(None, c.env.get("FAKE_LOG", "").split("|")):
            c.say(line)
        if c.env.get("FAKE_RUN_UNTIL_STOPPED") == "1":
            return
        code = int(c.env.get("FAKE_EXIT_CODE", "0"))
        delay = float(c.env.get("FAKE_RUN_S", "0"))
        if delay:
            timer = threading.Timer(delay, c.exit, args=(code,))
            timer.daemon = True
            timer.start()
        else:
            c.exit(code)

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str:
        nid = f"net{next(_ids):08d}"
        self.networks[nid] = {"name": name, **labels}
        return nid

    def remove_network(self, network_id: str) -> None:
        self.removed_networks.append(network_id)

    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]:
        found = super().list_managed(label)
        for nid, n in self.networks.items():
            labels = {LABEL_MANAGED: "true", **{k: v for k, v in n.items() if k != "name"}}
            if nid not in self.removed_networks and has_label(labels, label):
                found.append(Managed("network", nid, n["name"], labels))
        return found

    def running(self) -> list[str]:
        """Containers neither exited nor removed (what a leak would leave)."""
        return [cid for cid, c in self.containers.items() if cid not in self.removed and not c.exited.is_set()]


_JOBS_SEAM_CHECK: type[DockerSeam] = JobsDocker


def kill_all_servers() -> None:
    """End every fake container's server still running (a test that abandoned one must not print after the run)."""
    for server in list(_Server.alive):
        with contextlib.suppress(Exception):
            server.kill()
