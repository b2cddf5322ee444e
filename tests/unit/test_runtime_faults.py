"""Engine faults and killed processes without an engine: the seam's error translation, the clean-up paths that
must run whatever the engine does, and the sweep of temp folders a killed CLI left (issue 12, points 1 and 6).

The same promises are held against a real engine behind a fault proxy in tests/faults/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests
from _fakes import CONFIG, IMAGE, FakeDocker

from emulator.cli import app
from emulator.errors import EXIT_ENVIRONMENT, DockerUnavailable
from emulator.runtime import session as _session
from emulator.runtime.cluster import Cluster
from emulator.runtime.docker import ContainerSpec, DockerClient, _import_docker
from emulator.runtime.sweep import sweep_work_dirs
from emulator.serving import Endpoint
from emulator.storage.workdirs import make_work_dir, owner_pid


# -- the seam: docker-py and requests errors become DockerUnavailable ---------------------------------------------
class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = "Internal Server Error"
        self.url = "http+docker://localhost/v1.41/x"


def _api_error(status: int, text: str = "boom") -> docker.errors.APIError:
    response: Any = _Response(status)
    return docker.errors.APIError(text, response=response, explanation=text)


class _Api:
    """Stands in for docker-py's APIClient: every call raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if name.startswith("create_") and name.endswith("_config"):
                return {}  # docker-py builds these locally, without the engine
            raise self.error

        return call


def _client(error: BaseException) -> DockerClient:
    _import_docker()  # what DockerClient.__init__ does first, skipped here
    client = object.__new__(DockerClient)
    fields: dict[str, Any] = {"_host": "unix:///proxy.sock", "_pull": False, "_api": _Api(error)}
    client.__dict__.update(fields)
    return client


DROPPED = requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected('closed'))")
CALLS = {
    "create": lambda c: c.create(ContainerSpec(image=IMAGE)),
    "start": lambda c: c.start("abc"),
    "wait": lambda c: c.wait("abc", timeout_s=1.0),
    "state": lambda c: c.state("abc"),
    "logs": lambda c: c.iter_log_lines("abc"),
    "archive": lambda c: c.get_archive("abc", "/opt/ml/model"),
    "remove": lambda c: c.remove("abc"),
    "network_create": lambda c: c.create_network("n", {}),
    "network_remove": lambda c: c.remove_network("n"),
    "list": lambda c: c.list_managed(),
    "image": lambda c: c.image_info(IMAGE),
}


@pytest.mark.parametrize("error", [DROPPED, _api_error(500)], ids=["dropped", "500"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_engine_faults_raise_docker_unavailable(call: str, error: BaseException) -> None:
    with pytest.raises(DockerUnavailable) as raised:
        CALLS[call](_client(error))
    message = str(raised.value)
    assert raised.value.exit_code == EXIT_ENVIRONMENT
    assert "\n" not in message
    assert "unix:///proxy.sock" in message
    assert "python -m emulator cleanup" in message


def test_a_broken_stream_raises_docker_unavailable_when_read() -> None:
    client = _client(DROPPED)

    def stream() -> Iterator[bytes]:
        yield b"line 1\nline"
        raise requests.exceptions.ChunkedEncodingError("connection broken")

    api: Any = type("A", (), {"logs": lambda *a, **k: stream(), "get_archive": lambda *a, **k: (stream(), {})})()
    client.__dict__["_api"] = api
    lines = client.iter_log_lines("abc")
    assert next(lines) == "line 1"
    with pytest.raises(DockerUnavailable):
        next(lines)
    with pytest.raises(DockerUnavailable):
        list(client.get_archive("abc", "/opt/ml"))


def test_a_wait_timeout_is_not_a_fault() -> None:
    timeout = requests.exceptions.ConnectionError(
        "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out."
    )
    assert _client(timeout).wait("abc", timeout_s=0.1) is None
    assert _client(requests.exceptions.ReadTimeout("x")).wait("abc", timeout_s=0.1) is None


def test_user_errors_stay_user_errors() -> None:
    _client(docker.errors.NotFound("gone")).remove("abc")  # gone already: fine
    exec_error = _api_error(500, 'exec: "serve": executable file not found in $PATH')
    with pytest.raises(Exception) as raised:
        _client(exec_error).start("abc")
    assert not isinstance(raised.value, DockerUnavailable)


# -- clean-up paths run whatever the engine does -------------------------------------------------------------------
class _FailingRemove(FakeDocker):  # type: ignore[misc]
    """A fake engine whose removals fail as an engine that went away does."""

    def __init__(self) -> None:
        super().__init__()
        self.networks: list[str] = []

    def remove(self, container_id: str) -> None:
        self.containers[container_id].exit(137)
        raise DockerUnavailable("the Docker engine failed while removing; run 'python -m emulator cleanup'")

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str:
        self.networks.append(name)
        return f"net-{name}"

    def remove_network(self, network_id: str) -> None:
        raise AssertionError("a network in use by a container that could not be removed is left to the sweep")


def test_cluster_tries_every_removal_and_keeps_the_rest_registered() -> None:
    fake = _FailingRemove()
    specs = [ContainerSpec(image=IMAGE, environment={"RECORDER_EXIT_AT_START": "0"}) for _ in range(2)]
    cluster = Cluster(fake, specs, kind="training", job_name="j", private_network=True)
    with pytest.raises(DockerUnavailable), cluster:
        pass
    ids = cluster.container_ids
    assert len(ids) == 2
    with _session._lock:
        live = dict(_session._live)
    assert all(cid in live for cid in ids)  # the exit sweep retries them
    assert any(v[1] == "network" for v in live.values())
    for cid in [*ids, *(k for k, v in live.items() if v[1] == "network")]:
        _session.unregister(cid)


def test_the_first_error_wins_over_a_failed_removal() -> None:
    fake = _FailingRemove()
    cluster = Cluster(fake, [ContainerSpec(image=IMAGE)], kind="training", job_name="j", private_network=False)
    with pytest.raises(KeyError, match="first"), cluster:
        raise KeyError("first")
    for cid in cluster.container_ids:
        _session.unregister(cid)


def test_endpoint_removes_its_model_folder_when_the_engine_fails(tmp_path: Path) -> None:
    fake = _FailingRemove()
    (tmp_path / "model").mkdir()
    ep = Endpoint(IMAGE, model_data=str(tmp_path / "model"), docker=fake, config=CONFIG.with_(work_dir=str(tmp_path)))
    ep.start()
    with pytest.raises(DockerUnavailable):
        ep.close()
    assert ep.describe()["EndpointStatus"] == "Failed"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("sm-emulator-")]
    _session.unregister(ep.container_id)


# -- temp folders a killed process left (point 6) ------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_work_dirs_carry_their_owner(tmp_path: Path) -> None:
    work = make_work_dir("training", tmp_path)
    assert work.parent == tmp_path
    assert work.name.startswith(f"sm-emulator-training-p{os.getpid()}-")
    assert owner_pid(work.name) == os.getpid()
    assert owner_pid("sm-emulator-training-abc123") is None  # an older name: whose, nobody can say


def test_sweep_removes_only_folders_whose_process_is_gone(tmp_path: Path) -> None:
    dead = tmp_path / f"sm-emulator-training-p{_dead_pid()}-abcd1234"
    (dead / "input-0").mkdir(parents=True)
    (dead / "input-0" / "data.csv").write_text("downloaded from S3\n")
    mine = make_work_dir("model", tmp_path)
    live = tmp_path / f"sm-emulator-model-p{os.getppid()}-zz99zz99"
    live.mkdir()
    legacy = tmp_path / "sm-emulator-transform-14fvdnvd"
    legacy.mkdir()
    a_file = tmp_path / f"sm-emulator-x-p{_dead_pid()}-abcd1234"
    a_file.write_text("not a folder")
    other = tmp_path / "user-data"
    other.mkdir()

    listed = sweep_work_dirs([tmp_path], dry_run=True)
    assert [s.id for s in listed] == [str(dead)]
    assert dead.exists()

    removed = sweep_work_dirs([tmp_path])
    assert [(s.kind, s.id) for s in removed] == [("folder", str(dead))]
    assert not dead.exists()
    assert mine.exists() and live.exists() and legacy.exists() and a_file.exists() and other.exists()  # noqa: PT018

    assert [s.id for s in sweep_work_dirs([tmp_path], include_running_sessions=True)] == [str(live)]


def test_cleanup_command_removes_folders_of_killed_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = tmp_path / f"sm-emulator-processing-p{_dead_pid()}-abcd1234"
    dead.mkdir()
    monkeypatch.setenv("SM_EMULATOR_WORK_DIR", str(tmp_path))
    # No engine in unit tests (the package re-exports the function ``sweep``: reach the module itself).
    monkeypatch.setattr(sys.modules["emulator.runtime.sweep"], "sweep", lambda *a, **k: [])
    assert app.main(["cleanup"]) == 0
    assert not dead.exists()
    out = capsys.readouterr().out
    assert f"removed folder {dead}" in out
    assert "removed 1 resource(s)" in out


class _CutLogs(FakeDocker):  # type: ignore[misc]
    """A fake engine that cuts every log stream when :attr:`cut` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.cut = threading.Event()

    def iter_log_lines(self, container_id: str) -> Iterator[str]:
        self.cut.wait(10)
        raise DockerUnavailable("the Docker engine failed while following; run 'python -m emulator cleanup'")
        yield ""  # a generator


def test_a_cut_log_stream_fails_the_endpoint_once() -> None:
    fake = _CutLogs()
    ep = Endpoint(IMAGE, docker=fake, config=CONFIG)
    ep.start()
    fake.cut.set()
    with pytest.raises(DockerUnavailable):
        ep.wait(5)
    with pytest.raises(DockerUnavailable):
        ep.close()
    assert ep.describe()["EndpointStatus"] == "Failed"
    ep.close()  # idempotent: reported once
