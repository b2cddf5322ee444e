"""Remote engines without an engine: the remote/local rule, the volume plan, the upload stream, the staging calls
and the unreachable-port check (emulator/runtime/remote.py, emulator/storage/uploads.py)."""

from __future__ import annotations

import importlib.util
import io
import os
import socket
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_PID
from emulator.errors import DockerUnavailable, EmulatorError, InputNotFound, PortUnreachable
from emulator.runtime import remote
from emulator.runtime.docker import ContainerSpec, DockerClient, Managed, Mount
from emulator.runtime.sweep import sweep
from emulator.storage.uploads import tar_stream


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, False),
        ({"DOCKER_HOST": "tcp://10.0.0.5:2376"}, True),
        ({"DOCKER_HOST": "ssh://ci@builder"}, True),
        ({"DOCKER_HOST": "TCP://127.0.0.1:2375"}, True),
        ({"DOCKER_HOST": "tcp://127.0.0.1:2375", "SM_EMULATOR_REMOTE_ENGINE": "0"}, False),
        ({"DOCKER_HOST": "unix:///run/user/1000/docker.sock", "SM_EMULATOR_REMOTE_ENGINE": "1"}, True),
        ({"SM_EMULATOR_REMOTE_ENGINE": "true"}, True),
    ],
)
def test_remote_or_local_by_docker_host_and_override(environ: dict[str, str], expected: bool) -> None:
    assert remote.is_remote(EmulatorConfig.from_env(environ)) is expected


def test_a_bad_override_is_one_line_naming_the_variable() -> None:
    with pytest.raises(EmulatorError, match="SM_EMULATOR_REMOTE_ENGINE='maybe'"):
        EmulatorConfig.from_env({"SM_EMULATOR_REMOTE_ENGINE": "maybe"})


def test_plan_turns_each_bind_into_its_own_named_volume_and_keeps_the_rest() -> None:
    spec = ContainerSpec(
        "img",
        mounts=[
            Mount("/opt/ml"),
            Mount("/opt/ml/input/data/train", "/client/train", read_only=True),
            Mount("/opt/ml/input/data/one/x.csv", "/client/x.csv", read_only=True),
            Mount("/opt/ml/input/config", "/client/config", read_only=False),
            Mount("/data", "existing-volume", named=True),
        ],
        environment={"A": "1"},
    )
    dirs = {"/client/train", "/client/config"}
    staged, uploads = remote.plan_volumes(spec, "p", lambda path: path in dirs)

    assert [(m.target, m.source, m.read_only, m.named) for m in staged.mounts] == [
        ("/opt/ml", None, False, False),
        ("/opt/ml/input/data/train", "p-0", True, True),
        ("/opt/ml/input/data/one", "p-1", True, True),
        ("/opt/ml/input/config", "p-2", False, True),
        ("/data", "existing-volume", False, True),
    ]
    assert uploads == [
        remote.Upload("p-0", "/client/train"),
        remote.Upload("p-1", "/client/x.csv", "x.csv"),
        remote.Upload("p-2", "/client/config"),
    ]
    assert staged.environment == spec.environment
    assert spec.mounts[1].source == "/client/train"  # the caller's spec is not changed


def test_plan_without_binds_uploads_nothing() -> None:
    spec = ContainerSpec("img", mounts=[Mount("/opt/ml")])
    staged, uploads = remote.plan_volumes(spec, "p", lambda path: True)
    assert uploads == []
    assert staged.mounts == spec.mounts


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def _extract(data: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        tf.extractall(dest, filter="tar")


def test_tar_stream_carries_trees_files_links_and_sizes_across_chunks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    big = bytes(range(256)) * 5000 + b"tail"  # over one 1 MiB read, not a multiple of 512
    (src / "nested" / "deeper" / "big.bin").write_bytes(big)
    (src / "empty.txt").write_bytes(b"")
    (src / "private.txt").write_text("secret")
    (src / "private.txt").chmod(0o600)
    (src / "link").symlink_to("nested/deeper/big.bin")
    single = tmp_path / "single.csv"
    single.write_text("1,2\n")

    data = b"".join(tar_stream([(str(src), "stage/0"), (str(single), "stage/1/renamed.csv")]))
    members = _members(data)
    out = tmp_path / "out"
    _extract(data, out)

    assert (out / "stage/0/nested/deeper/big.bin").read_bytes() == big
    assert (out / "stage/0/empty.txt").read_bytes() == b""
    assert (out / "stage/1/renamed.csv").read_text() == "1,2\n"
    assert members["stage/0/link"].issym()
    assert members["stage/0/link"].linkname == "nested/deeper/big.bin"
    assert members["stage/0/private.txt"].mode & 0o444 == 0o444  # readable by whatever user the image runs as
    assert members["stage/0/nested"].isdir()
    assert members["stage/0/nested"].mode & 0o111 == 0o111
    assert {m.uname for m in members.values()} == {"root"}


class _Seam:
    """Records what volume staging asks of the engine; ``fail_on`` makes one operation raise."""

    def __init__(self, fail_on: str = "") -> None:
        self.calls: list[tuple[str, str]] = []
        self.specs: dict[str, ContainerSpec] = {}
        self.uploads: dict[str, bytes] = {}
        self.volumes: set[str] = set()
        self.containers: set[str] = set()
        self._fail_on = fail_on

    def _maybe_fail(self, op: str) -> None:
        if op == self._fail_on:
            raise DockerUnavailable(f"the engine failed while {op}")

    def create(self, spec: ContainerSpec) -> str:
        self._maybe_fail("create" if spec.entrypoint is None else "create-helper")
        cid = f"c{len(self.specs)}"
        self.specs[cid] = spec
        self.containers.add(cid)
        self.calls.append(("create", cid))
        return cid

    def remove(self, container_id: str) -> None:
        self.containers.discard(container_id)
        self.calls.append(("remove", container_id))

    def create_volume(self, name: str, labels: dict[str, str]) -> str:
        self._maybe_fail("create_volume")
        self.volumes.add(name)
        self.calls.append(("create_volume", name))
        return name

    def remove_volume(self, name: str) -> None:
        self.volumes.discard(name)
        self.calls.append(("remove_volume", name))

    def put_archive(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None:
        self._maybe_fail("put_archive")
        self.uploads[container_id] = b"".join(chunks)
        self.calls.append(("put_archive", container_id))


def _job_spec(tmp_path: Path) -> ContainerSpec:
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.csv").write_text("1,2\n")
    single = tmp_path / "val.txt"
    single.write_text("v")
    return ContainerSpec(
        "job-image",
        command=["train"],
        mounts=[
            Mount("/opt/ml"),
            Mount("/opt/ml/input/data/train", str(train), read_only=True),
            Mount("/opt/ml/input/data/val/val.txt", str(single), read_only=True),
        ],
        labels={"sagemaker-emulator.job": "j"},
    )


def test_staging_fills_every_volume_through_one_never_started_helper(tmp_path: Path) -> None:
    seam = _Seam()
    cid, uploads = remote.create_with_volumes(seam, _job_spec(tmp_path), "v")

    assert {target: u.volume for target, u in uploads.items()} == {
        "/opt/ml/input/data/train": "v-0",
        "/opt/ml/input/data/val/val.txt": "v-1",
    }
    helper = next(c for c, s in seam.specs.items() if s.entrypoint is not None)
    helper_spec = seam.specs[helper]
    assert helper_spec.image == "job-image"
    assert helper_spec.network == "none"
    assert [(m.target, m.source, m.named) for m in helper_spec.mounts] == [
        (f"{remote.STAGE_DIR}/0", "v-0", True),
        (f"{remote.STAGE_DIR}/1", "v-1", True),
    ]
    assert helper_spec.labels == {"sagemaker-emulator.job": "j"}
    # volumes first, one archive call into the helper, the helper gone before the job's container exists
    assert seam.calls == [
        ("create_volume", "v-0"),
        ("create_volume", "v-1"),
        ("create", helper),
        ("put_archive", helper),
        ("remove", helper),
        ("create", cid),
    ]
    out = tmp_path / "out"
    _extract(seam.uploads[helper], out)
    stage = out / remote.STAGE_DIR.strip("/")
    assert (stage / "0" / "a.csv").read_text() == "1,2\n"
    assert (stage / "1" / "val.txt").read_text() == "v"
    job = seam.specs[cid]
    assert [(m.target, m.source, m.read_only) for m in job.mounts if m.named] == [
        ("/opt/ml/input/data/train", "v-0", True),
        ("/opt/ml/input/data/val", "v-1", True),
    ]
    assert seam.containers == {cid}


@pytest.mark.parametrize("fail_on", ["create_volume", "create-helper", "put_archive", "create"])
def test_a_failure_while_staging_leaves_no_volume_and_no_helper(tmp_path: Path, fail_on: str) -> None:
    seam = _Seam(fail_on)
    with pytest.raises(DockerUnavailable, match=f"while {fail_on}"):
        remote.create_with_volumes(seam, _job_spec(tmp_path), "v")
    assert seam.volumes == set()
    assert seam.containers == set()


def test_a_spec_without_binds_is_created_as_it_is(tmp_path: Path) -> None:
    seam = _Seam()
    spec = ContainerSpec("img", mounts=[Mount("/opt/ml")])
    cid, uploads = remote.create_with_volumes(seam, spec, "v")
    assert uploads == {}
    assert seam.calls == [("create", cid)]
    assert seam.specs[cid] is spec


def test_removing_volumes_tries_them_all_then_reports_the_engine_fault() -> None:
    seam = _Seam()
    seam.volumes = {"a", "b"}
    failing = {"a"}

    def remove_volume(name: str) -> None:
        if name in failing:
            raise DockerUnavailable("engine gone")
        seam.volumes.discard(name)

    seam.remove_volume = remove_volume  # type: ignore[method-assign]
    with pytest.raises(DockerUnavailable):
        remote.remove_volumes(seam, ["a", "b"])
    assert seam.volumes == {"a"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_published_port_that_refuses_connections_is_one_clear_line() -> None:
    port = _closed_port()
    with pytest.raises(PortUnreachable) as err:
        remote.check_published_port(port, "tcp://builder:2376", patience_s=0.2, running=lambda: True, interval_s=0.05)
    message = str(err.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message
    assert "tcp://builder:2376" in message
    assert "docs/remote-engine.md" in message
    assert err.value.exit_code == 3


def test_a_listening_port_passes_and_a_stopped_container_is_left_to_the_caller() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        remote.check_published_port(server.getsockname()[1], "tcp://x", patience_s=0.0, running=lambda: True)
    # refused, but the container is not running: no verdict here (the endpoint reports the exit)
    remote.check_published_port(_closed_port(), "tcp://x", patience_s=60.0, running=lambda: False)


class _SweptSeam:
    """An engine with two labelled volumes (one of a live process) and no containers."""

    def __init__(self) -> None:
        self.volumes = {
            "dead": Managed("volume", "dead", "dead", {LABEL_PID: "999999999"}),
            "live": Managed("volume", "live", "live", {LABEL_PID: str(os.getppid())}),
        }

    def list_managed(self, label: str) -> list[Managed]:
        return []

    def list_volumes(self, label: str) -> list[Managed]:
        return list(self.volumes.values())

    def remove_volume(self, name: str) -> None:
        del self.volumes[name]

    def close(self) -> None:
        pass


def test_cleanup_sweeps_volumes_of_finished_processes_only() -> None:
    seam = _SweptSeam()
    done = sweep(docker=seam)  # type: ignore[arg-type]
    assert [(s.kind, s.id) for s in done] == [("volume", "dead")]
    assert list(seam.volumes) == ["live"]


def test_a_dir_that_changes_while_the_container_runs_is_refreshed_into_its_volume(tmp_path: Path) -> None:
    staging = tmp_path / "models"
    staging.mkdir()
    seam = _Seam()
    spec = ContainerSpec("mme", mounts=[Mount("/opt/ml/models", str(staging), read_only=True)], labels={"k": "v"})
    cid, uploads = remote.create_with_volumes(seam, spec, "v")
    (staging / "model-a" / "model").mkdir(parents=True)  # staged after the container exists
    (staging / "model-a" / "model" / "w.txt").write_text("a")

    remote.refresh_volume(seam, "mme", uploads["/opt/ml/models"], "model-a", {"k": "v"})

    helper = [c for c, s in seam.specs.items() if s.entrypoint is not None][-1]
    assert [(m.target, m.source) for m in seam.specs[helper].mounts] == [(f"{remote.STAGE_DIR}/0", "v-0")]
    out = tmp_path / "out"
    _extract(seam.uploads[helper], out)
    assert (out / remote.STAGE_DIR.strip("/") / "0" / "model-a" / "model" / "w.txt").read_text() == "a"
    assert seam.containers == {cid}


def test_an_ssh_engine_without_paramiko_names_the_package_to_install() -> None:
    if importlib.util.find_spec("paramiko") is not None:
        pytest.skip("paramiko is installed here: docker-py would try the ssh connection itself")
    with pytest.raises(DockerUnavailable) as err:
        DockerClient(EmulatorConfig(docker_host="ssh://ci@127.0.0.1:1"))
    assert "pip install paramiko" in str(err.value)
    assert err.value.exit_code == 3


def test_an_unreadable_input_file_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ok.csv").write_text("1\n")
    (tmp_path / "locked.csv").write_text("2\n")
    real_open = Path.open

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "locked.csv":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    with pytest.raises(InputNotFound) as err:
        b"".join(tar_stream([(str(tmp_path), "stage/0")]))
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "locked.csv") in message
    assert "Permission denied" in message
