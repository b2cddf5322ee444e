"""The live checkpoint sync (emulator.runtime.sync) against fake archive streams and a local location."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from emulator.config import EmulatorConfig
from emulator.errors import InvalidSpec
from emulator.runtime.plan import JobPlan, Sync
from emulator.runtime.sync import LiveSync
from emulator.storage.locations import Storage
from emulator.storage.s3 import S3
from emulator.training import plan as training_plan

CKPT = "/opt/ml/checkpoints"


def _tar(files: dict[str, bytes] | None) -> list[bytes]:
    """What get_archive of /opt/ml/checkpoints streams for a dir holding ``files`` ([] : no such dir)."""
    if files is None:
        return []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        top = tarfile.TarInfo("checkpoints")
        top.type = tarfile.DIRTYPE
        tf.addfile(top)
        for rel, data in files.items():
            info = tarfile.TarInfo(f"checkpoints/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return [buf.getvalue()]


class Hosts:
    """Each host's checkpoint dir, as the archive function the sync reads."""

    def __init__(self, *dirs: dict[str, bytes] | None) -> None:
        self.dirs = list(dirs)
        self.reads = 0
        self.read = threading.Event()

    def __call__(self, host: int, path: str) -> Iterable[bytes]:
        assert path == CKPT
        self.reads += 1
        self.read.set()
        return _tar(self.dirs[host])


def _storage() -> Storage:
    def no_s3() -> S3:
        raise AssertionError("a local location needs no S3")

    return Storage(no_s3)


def _sync(tmp_path: Path, hosts: int, seeded: dict[str, bytes]) -> tuple[LiveSync, Path]:
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    sync = LiveSync([Sync("checkpoints", CKPT, str(store))], hosts, _storage(), work, 0.01, seeded)
    return sync, store


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_new_and_changed_files_are_sent_seeds_are_not(tmp_path: Path) -> None:
    sync, store = _sync(tmp_path, 1, {f"{CKPT}/step-1.ckpt": b"one"})
    (store / "step-1.ckpt").write_bytes(b"one")
    hosts = Hosts({"step-1.ckpt": b"one", "step-2.ckpt": b"two"})
    sync.sync_once(hosts)
    assert _files(store) == {"step-1.ckpt": b"one", "step-2.ckpt": b"two"}
    assert sync.sent == 1  # the seed was already there
    hosts.dirs[0] = {"step-1.ckpt": b"one", "step-2.ckpt": b"two, rewritten", "sub/step-3.ckpt": b"three"}
    sync.sync_once(hosts)
    assert _files(store) == {"step-1.ckpt": b"one", "step-2.ckpt": b"two, rewritten", "sub/step-3.ckpt": b"three"}
    assert sync.sent == 3
    sync.sync_once(hosts)  # nothing changed: nothing sent
    assert sync.sent == 3


def test_a_file_every_host_deleted_is_deleted_at_the_location(tmp_path: Path) -> None:
    sync, store = _sync(tmp_path, 2, {f"{CKPT}/old.ckpt": b"old"})
    (store / "old.ckpt").write_bytes(b"old")
    (store / "someone-elses.ckpt").write_bytes(b"not the job's")  # put there after the start: never touched
    hosts = Hosts({"old.ckpt": b"old"}, {"new.ckpt": b"new"})
    sync.sync_once(hosts)
    assert set(_files(store)) == {"old.ckpt", "new.ckpt", "someone-elses.ckpt"}  # host 1 still has old.ckpt
    hosts.dirs = [{}, {"new.ckpt": b"new"}]
    sync.sync_once(hosts)
    assert set(_files(store)) == {"new.ckpt", "someone-elses.ckpt"}
    assert sync.deleted == 1


def test_a_host_without_the_dir_deletes_nothing(tmp_path: Path) -> None:
    sync, store = _sync(tmp_path, 2, {f"{CKPT}/seed.ckpt": b"seed"})
    (store / "seed.ckpt").write_bytes(b"seed")
    sync.sync_once(Hosts({}, None))  # host 2's dir cannot be read: its files are unknown
    assert _files(store) == {"seed.ckpt": b"seed"}
    assert sync.deleted == 0


def test_the_last_host_wins_a_name_clash(tmp_path: Path) -> None:
    sync, store = _sync(tmp_path, 2, {})
    sync.sync_once(Hosts({"model.ckpt": b"from algo-1"}, {"model.ckpt": b"from algo-2"}))
    assert _files(store) == {"model.ckpt": b"from algo-2"}


def test_passes_run_in_the_background_until_the_block_ends_then_finish_syncs_once_more(tmp_path: Path) -> None:
    sync, store = _sync(tmp_path, 1, {})
    hosts = Hosts({"step-1.ckpt": b"1"})
    with sync.running(hosts):
        assert hosts.read.wait(30), "no pass ran while the job was running"
    reads = hosts.reads
    assert sync.passes >= 1
    assert _files(store) == {"step-1.ckpt": b"1"}
    hosts.dirs[0] = {"step-2.ckpt": b"2"}  # written after the last live pass (in the SIGTERM window, say)
    assert hosts.reads == reads  # the thread has ended with the block
    assert sync.finish(hosts) == {"checkpoints": str(store)}
    assert _files(store) == {"step-2.ckpt": b"2"}


def test_a_failing_pass_does_not_end_the_background_sync(tmp_path: Path) -> None:
    sync, store = _sync(tmp_path, 1, {})
    calls: list[int] = []
    done = threading.Event()

    def flaky(host: int, path: str) -> Iterable[bytes]:
        calls.append(host)
        if len(calls) == 1:
            raise OSError("the engine hiccuped")
        done.set()
        return _tar({"a.ckpt": b"a"})

    with sync.running(flaky):
        assert done.wait(30)
    assert _files(store) == {"a.ckpt": b"a"}


def test_no_syncs_no_thread(tmp_path: Path) -> None:
    sync = LiveSync([], 1, _storage(), tmp_path, 0.01, {})
    hosts = Hosts({})
    with sync.running(hosts):
        pass
    assert sync.finish(hosts) == {}
    assert hosts.reads == 0


# -- CheckpointConfig.LocalPath in the plan ---------------------------------------------------------------
def _plan(local_path: str) -> JobPlan:
    request = {
        "TrainingJobName": "ckpt-job",
        "AlgorithmSpecification": {"TrainingImage": "algo:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "out"},
        "CheckpointConfig": {"S3Uri": "s3://bucket/ckpt", "LocalPath": local_path},
    }
    return training_plan.plan(request, EmulatorConfig())


def test_a_local_path_with_a_trailing_slash_is_the_same_dir() -> None:
    plan = _plan("/opt/ml/checkpoints/")  # the API's own documented default is spelled so
    assert [(s.container_path, s.location) for s in plan.syncs] == [(CKPT, "s3://bucket/ckpt")]
    assert [s.container_path for s in plan.seeds] == [CKPT]
    spec = plan.hosts[0].spec
    assert sorted({d.rstrip("/") for d in spec.dirs}) == sorted(set(spec.dirs))  # one dir, one volume


@pytest.mark.parametrize("local_path", ["checkpoints", "/opt/ml", "/opt/ml/model", "/opt/ml/input/data/ckpt", "/"])
def test_a_local_path_the_job_cannot_own_is_refused(local_path: str) -> None:
    with pytest.raises(InvalidSpec, match=r"CheckpointConfig\.LocalPath"):
        _plan(local_path)


def test_a_local_path_outside_opt_ml_is_fine() -> None:
    assert [s.container_path for s in _plan("/ckpt/run/").syncs] == ["/ckpt/run"]
