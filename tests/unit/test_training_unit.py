"""TrainingJob against a fake Docker seam: what the containers are given, and how their outcome is reported.

No engine is needed. ``FakeDocker`` implements the DockerSeam methods TrainingJob and Cluster use; it records
every ContainerSpec, snapshots what each read-only mount shows, plays a scripted "training run" (files
written, log lines, exit code, signals) and serves ``get_archive`` as Docker does (in-memory tar streams).
"""

from __future__ import annotations

import _thread
import copy
import dataclasses
import io
import json
import signal
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _fakes import has_label
from botocore.model import ListShape, MapShape, Shape, StringShape, StructureShape

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_KIND, LABEL_MANAGED, LABEL_SESSION
from emulator.errors import ContainerFailed, ImageNotFound, Interrupted
from emulator.runtime import cluster as _cluster
from emulator.runtime import runner as runner_module
from emulator.runtime.docker import ContainerSpec, ContainerState, DockerSeam, ImageInfo, Managed
from emulator.spec import operation_model
from emulator.training import TrainingJob

IMAGE = "my-algo:latest"
CONFIG_DIR = "/opt/ml/input/config"


# -- the fake seam ----------------------------------------------------------------------------------------


@dataclass
class Script:
    """What the training code in a fake container does once started."""

    exit_code: int = 0
    logs: list[str] = field(default_factory=list)
    writes: dict[str, bytes] = field(default_factory=dict)  # container path -> content
    runs_until_signalled: bool = False
    ignores_sigterm: bool = False
    oom_killed: bool = False
    start_error: str | None = None
    interrupt_on_wait: bool = False  # the user presses Ctrl-C while the job waits


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    script: Script
    files: dict[str, bytes]
    dirs: set[str]
    mounted: dict[str, dict[str, bytes]]  # mount target -> {relative path: content} seen at create time
    status: str = "created"
    exit_code: int | None = None
    signals: list[int] = field(default_factory=list)
    removed: bool = False


class FakeDocker:
    """A DockerSeam that runs nothing: each container plays a Script chosen per ContainerSpec."""

    def __init__(
        self, script: Script | Callable[[ContainerSpec], Script] | None = None, *, missing: tuple[str, ...] = ()
    ) -> None:
        self._script = script or Script()
        self._missing = missing
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.removed_networks: list[str] = []
        self.interrupted = False

    # images
    def image_info(self, image: str) -> ImageInfo:
        if image in self._missing:
            raise ImageNotFound(f"image {image!r} is not present locally; build it or pull it")
        return ImageInfo(id="sha256:fake", entrypoint=None, cmd=None, user="", labels={}, env=[])

    # containers
    def create(self, spec: ContainerSpec) -> str:
        cid = f"fake{len(self.containers):04d}"
        mounted: dict[str, dict[str, bytes]] = {}
        volumes = [m.target for m in spec.mounts if m.source is None]
        seen = dict(spec.files)
        for m in spec.mounts:
            if m.source is None:
                continue
            src = Path(m.source)
            paths = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
            base = src if src.is_dir() else src.parent
            mounted[m.target] = {p.relative_to(base).as_posix(): p.read_bytes() for p in paths}
            # What the container sees there (get_archive includes bind mounts, as Docker's does).
            if src.is_dir():
                seen.update({f"{m.target}/{rel}": data for rel, data in mounted[m.target].items()})
            else:
                seen[m.target] = src.read_bytes()
        script = self._script(spec) if callable(self._script) else self._script
        self.containers[cid] = FakeContainer(
            # A volume mount (no source) is an empty dir, as Docker makes it.
            cid,
            copy.deepcopy(spec),
            script,
            seen,
            {*spec.dirs, *volumes},
            mounted,
        )
        return cid

    def start(self, container_id: str) -> None:
        c = self.containers[container_id]
        if c.script.start_error:
            raise ContainerFailed(f"Docker could not start the container: {c.script.start_error}")
        c.status = "running"
        c.files.update(c.script.writes)
        if not c.script.runs_until_signalled:
            self._exit(c, c.script.exit_code)

    def _exit(self, c: FakeContainer, code: int) -> None:
        c.status, c.exit_code = "exited", code

    def wait(self, container_id: str, timeout_s: float | None = None) -> int | None:
        c = self.containers[container_id]
        if c.script.interrupt_on_wait and not self.interrupted:
            self.interrupted = True
            _thread.interrupt_main()  # Ctrl-C reaches the main thread, where run() waits
            return None
        if c.exit_code is not None:
            return c.exit_code
        time.sleep(min(timeout_s or 0.01, 0.01))
        return None

    def signal(self, container_id: str, sig: int) -> None:
        c = self.containers[container_id]
        c.signals.append(int(sig))
        if c.status != "running":
            return
        if sig == signal.SIGKILL:
            self._exit(c, 137)
        elif sig == signal.SIGTERM and not c.script.ignores_sigterm:
            self._exit(c, 143)

    def state(self, container_id: str) -> ContainerState:
        c = self.containers[container_id]
        return ContainerState(c.status, c.exit_code or 0, c.script.oom_killed)

    def iter_log_lines(self, container_id: str) -> Iterator[str]:
        return iter(list(self.containers[container_id].script.logs))

    def logs_tail(self, container_id: str, lines: int = 50) -> str:
        return "\n".join(self.containers[container_id].script.logs[-lines:])

    def host_port(self, container_id: str, port: int) -> int:
        raise NotImplementedError("training publishes no ports")

    def exec_output(self, container_id: str, argv: list[str]) -> bytes | None:
        return None

    def exec_stdin(self, container_id: str, argv: list[str], chunks: Iterable[bytes]) -> int | None:
        return None  # no Pipe-mode channels here (tests/unit/test_input_modes.py fakes those)

    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]:
        """Like Docker: a tar whose top-level entry is the basename of ``path``; nothing for a missing path."""
        c = self.containers[container_id]
        path = path.rstrip("/")
        base = path.rsplit("/", 1)[-1]
        buf = io.BytesIO()
        if path in c.files:
            with tarfile.open(fileobj=buf, mode="w") as tf:
                _add_file(tf, base, c.files[path])
        else:
            below = {p: d for p, d in c.files.items() if p.startswith(path + "/")}
            subdirs = {d for d in c.dirs if d.startswith(path + "/")}
            for p in below:
                parent = p.rsplit("/", 1)[0]
                while parent.startswith(path + "/"):
                    subdirs.add(parent)
                    parent = parent.rsplit("/", 1)[0]
            if path not in c.dirs and not below and not subdirs:
                return iter(())
            with tarfile.open(fileobj=buf, mode="w") as tf:
                _add_dir(tf, base)
                for d in sorted(subdirs):
                    _add_dir(tf, base + d[len(path) :])
                for p in sorted(below):
                    _add_file(tf, base + p[len(path) :], below[p])
        data = buf.getvalue()
        return iter([data[i : i + 700] for i in range(0, len(data), 700)])  # odd chunk sizes, like a socket

    def remove(self, container_id: str) -> None:
        self.containers[container_id].removed = True

    # networks
    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str:
        nid = f"net{len(self.networks):04d}"
        self.networks[nid] = {"name": name, "labels": labels, "internal": internal}
        return nid

    def remove_network(self, network_id: str) -> None:
        self.removed_networks.append(network_id)

    # sweeping
    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]:
        found: list[Managed] = []
        for cid, c in self.containers.items():
            labels = {LABEL_MANAGED: "true", **c.spec.labels}
            if not c.removed and has_label(labels, label):
                found.append(Managed("container", cid, c.spec.name or cid, labels, c.status))
        for nid, n in self.networks.items():
            labels = {LABEL_MANAGED: "true", **n["labels"]}
            if nid not in self.removed_networks and has_label(labels, label):
                found.append(Managed("network", nid, n["name"], labels))
        return found

    #: What has_gpus() answers (a GPU instance type on an engine without GPUs is refused or run on the CPU).
    engine_gpus = False

    def has_gpus(self) -> bool:
        return self.engine_gpus

    def binds_in_place(self) -> bool:
        return False  # the fake's containers write nothing to the host: outputs leave through get_archive

    def close(self) -> None:
        pass

    # helpers for assertions
    @property
    def specs(self) -> list[ContainerSpec]:
        return [c.spec for c in self.containers.values()]

    def config_json(self, index: int, name: str) -> Any:
        return json.loads(self.config_bytes(index, name))

    def config_bytes(self, index: int, name: str) -> bytes:
        """A file of /opt/ml/input/config as the container saw it (bound read-only from the runner's work dir)."""
        c = list(self.containers.values())[index]
        assert next(m for m in c.spec.mounts if m.target == CONFIG_DIR).read_only
        return c.mounted[CONFIG_DIR][name]

    def all_removed(self) -> bool:
        return all(c.removed for c in self.containers.values()) and sorted(self.removed_networks) == sorted(
            self.networks
        )


#: mypy proves that the fake implements the whole seam.
_SEAM_CHECK: type[DockerSeam] = FakeDocker


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tf.addfile(info)


def _add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


# -- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> EmulatorConfig:
    work = tmp_path / "work"
    work.mkdir()
    return EmulatorConfig(work_dir=str(work), training_stop_grace_s=0.2)


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the cluster's clock run 40x faster, so MaxRuntimeInSeconds=1 passes in a blink."""
    real_time, real_sleep, real_monotonic = time.time, time.sleep, time.monotonic
    start, start_m = real_time(), real_monotonic()
    clock = SimpleNamespace(
        time=lambda: start + (real_time() - start) * 40,
        monotonic=lambda: start_m + (real_monotonic() - start_m) * 40,
        sleep=real_sleep,
    )
    monkeypatch.setattr(_cluster, "time", clock)


def make_request(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "TrainingJobName": "job-1",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(req.get(key), dict):
            req[key] = {**req[key], **value}
        else:
            req[key] = value
    return req


def channel(name: str, uri: str | Path, **extra: Any) -> dict[str, Any]:
    src = {"S3DataType": "S3Prefix", "S3Uri": str(uri)}
    dist = extra.pop("S3DataDistributionType", None)
    if dist:
        src["S3DataDistributionType"] = dist
    return {"ChannelName": name, "DataSource": {"S3DataSource": src}, **extra}


def run(
    tmp_path: Path,
    config: EmulatorConfig,
    script: Script | Callable[[ContainerSpec], Script] | None = None,
    **changes: Any,
) -> tuple[dict[str, Any], FakeDocker]:
    docker = FakeDocker(script)
    result = TrainingJob(make_request(tmp_path, **changes), config=config, docker=docker).run()
    return result, docker


def tar_names(path: str | Path) -> list[str]:
    with tarfile.open(path) as tf:
        return sorted(tf.getnames())


def tar_read(path: str | Path, name: str) -> bytes:
    with tarfile.open(path) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


# -- how the container is started -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "entrypoint", "command"),
    [
        ({}, None, ["train"]),
        ({"ContainerEntrypoint": ["python", "/opt/prog.py"]}, ["python", "/opt/prog.py"], []),
        ({"ContainerArguments": ["--epochs", "2"]}, None, ["--epochs", "2"]),
        (
            {"ContainerEntrypoint": ["python", "/opt/prog.py"], "ContainerArguments": ["--epochs", "2"]},
            ["python", "/opt/prog.py"],
            ["--epochs", "2"],
        ),
    ],
    ids=["neither-runs-train", "entrypoint-only-no-train", "arguments-replace-train", "both"],
)
def test_entrypoint_and_arguments(
    tmp_path: Path, config: EmulatorConfig, algo: dict[str, Any], entrypoint: list[str] | None, command: list[str]
) -> None:
    _, docker = run(tmp_path, config, AlgorithmSpecification=algo)
    [spec] = docker.specs
    assert spec.entrypoint == entrypoint  # None keeps the image's ENTRYPOINT
    assert spec.command == command
    assert spec.image == IMAGE


def test_environment_is_exactly_the_platforms(tmp_path: Path, config: EmulatorConfig) -> None:
    result, docker = run(tmp_path, config, Environment={"MY_VAR": "1", "OTHER": "two words"})
    [spec] = docker.specs
    assert spec.environment == {
        "TRAINING_JOB_NAME": "job-1",
        "TRAINING_JOB_ARN": "arn:aws:sagemaker:us-east-1:000000000000:training-job/job-1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MY_VAR": "1",
        "OTHER": "two words",
    }
    assert result["TrainingJobArn"] == spec.environment["TRAINING_JOB_ARN"]
    assert spec.network is None  # the default bridge: the container may reach the internet, as on the platform
    assert not docker.networks


def test_network_isolation_single_host(tmp_path: Path, config: EmulatorConfig) -> None:
    _, docker = run(tmp_path, config, EnableNetworkIsolation=True, Environment={"MY_VAR": "1"})
    [spec] = docker.specs
    assert spec.network == "none"
    assert not [k for k in spec.environment if k.startswith("AWS_")]
    assert spec.environment["MY_VAR"] == "1"
    assert spec.extra_hosts == {"algo-1": "127.0.0.1"}  # the host still resolves its own name
    assert not docker.networks


def test_network_isolation_multi_host_uses_an_internal_network(tmp_path: Path, config: EmulatorConfig) -> None:
    _, docker = run(
        tmp_path,
        config,
        EnableNetworkIsolation=True,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
    )
    [net] = docker.networks.values()
    assert net["internal"] is True
    for spec in docker.specs:
        assert spec.network == net["name"]
        assert not [k for k in spec.environment if k.startswith("AWS_")]


def test_multi_host_containers_network_and_labels(tmp_path: Path, config: EmulatorConfig) -> None:
    _, docker = run(tmp_path, config, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 3})
    [(nid, net)] = docker.networks.items()
    assert net["internal"] is False
    assert net["labels"][LABEL_MANAGED] == "true"
    assert [s.hostname for s in docker.specs] == ["algo-1", "algo-2", "algo-3"]
    assert [s.network_aliases for s in docker.specs] == [["algo-1"], ["algo-2"], ["algo-3"]]
    for spec in docker.specs:
        assert spec.network == net["name"]
        assert spec.labels[LABEL_MANAGED] == "true"
        assert spec.labels[LABEL_KIND] == "training"
        assert spec.labels[LABEL_JOB] == "job-1"
        assert LABEL_SESSION in spec.labels
    assert docker.removed_networks == [nid]


def test_container_hostnames_differ_from_the_host_names_peers_resolve(tmp_path: Path, config: EmulatorConfig) -> None:
    lines: list[tuple[str, str]] = []
    docker = FakeDocker(Script(logs=["hello"]))
    request = make_request(tmp_path, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2})
    job = TrainingJob(
        request,
        config=config,
        docker=docker,
        log_sink=lambda host, line: lines.append((host, line)),
        host_names=["algo-1-ab12c", "algo-2-xy34z"],
        container_hostnames=["ip-10-0-0-1", "ip-10-0-0-2"],
    )
    assert job.run()["TrainingJobStatus"] == "Completed"
    [net] = docker.networks.values()
    # /etc/hostname says ip-10-...; the network aliases (what peers resolve) and resourceconfig.json say algo-N-xxxxx.
    assert [s.hostname for s in docker.specs] == ["ip-10-0-0-1", "ip-10-0-0-2"]
    assert [s.network_aliases for s in docker.specs] == [["algo-1-ab12c"], ["algo-2-xy34z"]]
    assert [s.network for s in docker.specs] == [net["name"], net["name"]]
    assert [s.extra_hosts for s in docker.specs] == [{}, {}]  # the network's DNS resolves the aliases
    assert [docker.config_json(i, "resourceconfig.json")["current_host"] for i in range(2)] == [
        "algo-1-ab12c",
        "algo-2-xy34z",
    ]
    assert sorted(lines) == [("algo-1-ab12c", "hello"), ("algo-2-xy34z", "hello")]  # logs are by host name


@pytest.mark.parametrize("isolated", [False, True], ids=["bridge", "network-isolation"])
def test_single_host_with_another_container_hostname_still_resolves_its_host_name(
    tmp_path: Path, config: EmulatorConfig, isolated: bool
) -> None:
    docker = FakeDocker()
    request = make_request(tmp_path, EnableNetworkIsolation=isolated)
    TrainingJob(request, config=config, docker=docker, container_hostnames=["ip-10-0-0-1"]).run()
    [spec] = docker.specs
    assert spec.hostname == "ip-10-0-0-1"
    assert spec.network == ("none" if isolated else None)
    assert spec.extra_hosts == {"algo-1": "127.0.0.1"}  # no network alias on the default bridge: /etc/hosts
    assert docker.config_json(0, "resourceconfig.json")["current_host"] == "algo-1"


def test_container_hostname_defaults_to_the_host_name(tmp_path: Path, config: EmulatorConfig) -> None:
    _, docker = run(tmp_path, config)
    [spec] = docker.specs
    assert (spec.hostname, spec.network_aliases, spec.extra_hosts) == ("algo-1", ["algo-1"], {})


@pytest.mark.parametrize("names", [["ip-1"], ["ip-1", "ip-1"], ["ip-1", ""]], ids=["too-few", "twice", "empty"])
def test_container_hostnames_must_be_one_distinct_name_per_host(
    tmp_path: Path, config: EmulatorConfig, names: list[str]
) -> None:
    request = make_request(tmp_path, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2})
    with pytest.raises(ValueError, match="container_hostnames: give 2 distinct names"):
        TrainingJob(request, config=config, docker=FakeDocker(), container_hostnames=names)


def test_instance_type_sets_cpu_and_memory_limits(tmp_path: Path, config: EmulatorConfig) -> None:
    from emulator.runtime.resources import docker_limits

    _, docker = run(tmp_path, config, ResourceConfig={"InstanceType": "ml.t3.medium", "InstanceCount": 1})
    [spec] = docker.specs
    assert (spec.nano_cpus, spec.mem_limit) == docker_limits("ml.t3.medium")
    assert spec.nano_cpus is not None
    assert spec.mem_limit is not None


def test_opt_ml_is_a_fresh_volume_and_channels_are_read_only_mounts(tmp_path: Path, config: EmulatorConfig) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    _, docker = run(tmp_path, config, InputDataConfig=[channel("train", data)])
    [spec] = docker.specs
    opt_ml = [m for m in spec.mounts if m.target == "/opt/ml"]
    assert len(opt_ml) == 1
    assert opt_ml[0].source is None  # an empty volume: nothing baked in the image shows
    [ch] = [m for m in spec.mounts if m.target == "/opt/ml/input/data/train"]
    assert ch.read_only
    assert ch.source == str(data)
    # The empty dirs are volumes and the config files a read-only bind: no archive call before the start.
    volumes = {m.target for m in spec.mounts if m.source is None}
    assert volumes == {"/opt/ml", "/opt/ml/model", "/opt/ml/output/data", "/opt/ml/checkpoints"}
    assert spec.dirs == []  # /opt/ml/input/data: Docker makes it for the channel's mount
    assert spec.files == {}
    [config_mount] = [m for m in spec.mounts if m.target == CONFIG_DIR]
    assert config_mount.read_only
    assert config_mount.source is not None


# -- the config files -------------------------------------------------------------------------------------


def test_config_files_exact(tmp_path: Path, config: EmulatorConfig) -> None:
    train, val = tmp_path / "train", tmp_path / "val"
    for d in (train, val):
        d.mkdir()
        (d / "x.csv").write_text("1\n")
    _, docker = run(
        tmp_path,
        config,
        HyperParameters={"epochs": "2", "eta": "0.1", "flag": "true", "name": "a b"},
        InputDataConfig=[
            channel("train", train, ContentType="text/csv", S3DataDistributionType="ShardedByS3Key"),
            channel("validation", val, InputMode="FastFile"),
        ],
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 5},
    )
    assert sorted(next(iter(docker.containers.values())).mounted[CONFIG_DIR]) == [
        "hyperparameters.json",
        "inputdataconfig.json",
        "resourceconfig.json",
    ]  # and no checkpointconfig.json without CheckpointConfig
    hps = docker.config_json(0, "hyperparameters.json")
    assert hps == {"epochs": "2", "eta": "0.1", "flag": "true", "name": "a b"}
    assert all(isinstance(v, str) for v in hps.values())
    assert docker.config_json(0, "inputdataconfig.json") == {
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
        },
        "validation": {
            "TrainingInputMode": "FastFile",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
    }
    for i, host in enumerate(["algo-1", "algo-2"]):
        assert docker.config_json(i, "resourceconfig.json") == {
            "current_host": host,
            "current_instance_type": "ml.m5.xlarge",
            "current_group_name": "homogeneousCluster",
            "hosts": ["algo-1", "algo-2"],
            "instance_groups": [
                {
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": "ml.m5.xlarge",
                    "hosts": ["algo-1", "algo-2"],
                }
            ],
            "network_interface_name": "eth0",
        }


def test_no_hyperparameters_gives_an_empty_object(tmp_path: Path, config: EmulatorConfig) -> None:
    _, docker = run(tmp_path, config)
    assert docker.config_bytes(0, "hyperparameters.json") == b"{}"
    assert docker.config_json(0, "inputdataconfig.json") == {}


def test_checkpoints_seeded_described_and_exported(tmp_path: Path, config: EmulatorConfig) -> None:
    store = tmp_path / "ckpt-store"
    store.mkdir()
    (store / "step-1.ckpt").write_bytes(b"old")
    script = Script(writes={"/opt/ml/checkpoints/step-2.ckpt": b"new"})
    _, docker = run(tmp_path, config, script, CheckpointConfig={"S3Uri": str(store)})
    spec = docker.specs[0]
    assert docker.config_json(0, "checkpointconfig.json") == {"LocalPath": "/opt/ml/checkpoints", "S3Uri": str(store)}
    assert spec.files["/opt/ml/checkpoints/step-1.ckpt"] == b"old"  # copied in at job start
    assert (store / "step-2.ckpt").read_bytes() == b"new"  # synced back when the job ends
    assert (store / "step-1.ckpt").read_bytes() == b"old"


def test_checkpoint_local_path_outside_opt_ml_gets_its_own_volume(tmp_path: Path, config: EmulatorConfig) -> None:
    store = tmp_path / "ckpt-store"
    store.mkdir()
    _, docker = run(tmp_path, config, CheckpointConfig={"S3Uri": str(store), "LocalPath": "/ckpt"})
    spec = docker.specs[0]
    assert docker.config_json(0, "checkpointconfig.json") == {"LocalPath": "/ckpt", "S3Uri": str(store)}
    assert any(m.target == "/ckpt" and m.source is None for m in spec.mounts)


# -- channels ---------------------------------------------------------------------------------------------


def test_sharded_by_s3_key_is_round_robin_over_sorted_files(tmp_path: Path, config: EmulatorConfig) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    names = ["e.csv", "a.csv", "sub/c.csv", "b.csv", "d.csv"]
    for n in names:
        (data / n).write_text(n)
    _, docker = run(
        tmp_path,
        config,
        InputDataConfig=[channel("train", data, S3DataDistributionType="ShardedByS3Key"), channel("full", data)],
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2},
    )
    ordered = sorted(names)  # a.csv b.csv d.csv e.csv sub/c.csv
    shards = [sorted(c.mounted["/opt/ml/input/data/train"]) for c in docker.containers.values()]
    assert shards == [sorted(ordered[0::2]), sorted(ordered[1::2])]
    for c in docker.containers.values():
        assert c.mounted["/opt/ml/input/data/train"] == {n: n.encode() for n in c.mounted["/opt/ml/input/data/train"]}
        assert sorted(c.mounted["/opt/ml/input/data/full"]) == ordered  # FullyReplicated: every host sees all


def test_more_hosts_than_files_leaves_some_hosts_empty(tmp_path: Path, config: EmulatorConfig) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "only.csv").write_text("1")
    _, docker = run(
        tmp_path,
        config,
        InputDataConfig=[channel("train", data, S3DataDistributionType="ShardedByS3Key")],
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 3},
    )
    assert [sorted(c.mounted["/opt/ml/input/data/train"]) for c in docker.containers.values()] == [["only.csv"], [], []]


def test_single_file_channel_appears_inside_the_channel_dir(tmp_path: Path, config: EmulatorConfig) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("1")
    (data / "secret.txt").write_text("not for the container")
    _, docker = run(tmp_path, config, InputDataConfig=[channel("train", data / "train.csv")])
    [m] = [m for m in docker.specs[0].mounts if m.source and m.target != CONFIG_DIR]
    assert (m.source, m.target, m.read_only) == (str(data / "train.csv"), "/opt/ml/input/data/train/train.csv", True)


# -- outcome ----------------------------------------------------------------------------------------------


def test_completed_job_exports_model_and_output_with_entries_at_the_root(
    tmp_path: Path, config: EmulatorConfig
) -> None:
    script = Script(
        writes={
            "/opt/ml/model/model.bin": b"weights",
            "/opt/ml/model/sub/extra.txt": b"x",
            "/opt/ml/output/data/report.txt": b"r",
        }
    )
    result, docker = run(tmp_path, config, script)
    assert (result["TrainingJobStatus"], result["SecondaryStatus"]) == ("Completed", "Completed")
    assert "FailureReason" not in result
    model = result["ModelArtifacts"]["S3ModelArtifacts"]
    assert model == str(tmp_path / "out" / "job-1" / "output" / "model.tar.gz")
    assert tar_names(model) == ["model.bin", "sub", "sub/extra.txt"]
    assert tar_read(model, "model.bin") == b"weights"
    output = tmp_path / "out" / "job-1" / "output" / "output.tar.gz"
    assert tar_names(output) == ["report.txt"]
    assert [t["Status"] for t in result["SecondaryStatusTransitions"]] == [
        "Starting",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert docker.all_removed()
    assert not list(Path(config.work_dir or "").iterdir())  # the job's temp dir is gone


class ArchiveCountingDocker(FakeDocker):
    """Records the path of every archive call."""

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.archived: list[str] = []

    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]:
        self.archived.append(path)
        return super().get_archive(container_id, path)


WRITES = {"/opt/ml/model/model.bin": b"weights", "/opt/ml/output/data/report.txt": b"r", "/opt/ml/output/x": b"y"}


def test_model_and_output_come_out_in_one_archive_call_per_host(tmp_path: Path, config: EmulatorConfig) -> None:
    docker = ArchiveCountingDocker(Script(writes=WRITES))
    request = make_request(tmp_path, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2})
    result = TrainingJob(request, config=config, docker=docker).run()
    assert docker.archived == ["/opt/ml", "/opt/ml"]
    assert tar_read(result["ModelArtifacts"]["S3ModelArtifacts"], "model.bin") == b"weights"
    assert set(tar_names(tmp_path / "out" / "job-1" / "output" / "output.tar.gz")) == {"report.txt"}  # both hosts'


def test_over_the_spool_limit_each_path_is_read_on_its_own(
    tmp_path: Path, config: EmulatorConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "WHOLE_ARCHIVE_MAX_BYTES", 4096)  # the /opt/ml tar is bigger
    docker = ArchiveCountingDocker(Script(writes=WRITES, exit_code=2))
    result = TrainingJob(make_request(tmp_path), config=config, docker=docker).run()
    assert docker.archived == ["/opt/ml", "/opt/ml/model", "/opt/ml/output/data", "/opt/ml/output/failure"]
    assert result["TrainingJobStatus"] == "Failed"
    assert tar_read(result["ModelArtifacts"]["S3ModelArtifacts"], "model.bin") == b"weights"
    assert tar_names(tmp_path / "out" / "job-1" / "output" / "output.tar.gz") == ["report.txt"]


def test_large_inputs_are_not_read_back(
    tmp_path: Path, config: EmulatorConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "WHOLE_ARCHIVE_MAX_BYTES", 100)
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.csv").write_bytes(b"1,2\n" * 100)  # over the limit: /opt/ml would carry it
    docker = ArchiveCountingDocker(Script(writes=WRITES))
    TrainingJob(make_request(tmp_path, InputDataConfig=[channel("train", data)]), config=config, docker=docker).run()
    assert docker.archived == ["/opt/ml/model", "/opt/ml/output/data"]


class InPlaceDocker(ArchiveCountingDocker):
    """An engine that writes binds in place: a container's writes below a read-write bind land in its host dir."""

    def __init__(self, script: Script, user: str = "") -> None:
        super().__init__(script)
        self.user = user

    def binds_in_place(self) -> bool:
        return True

    def image_info(self, image: str) -> ImageInfo:
        return dataclasses.replace(super().image_info(image), user=self.user)

    def start(self, container_id: str) -> None:
        super().start(container_id)
        c = self.containers[container_id]
        for m in c.spec.mounts:
            for path, data in c.script.writes.items():
                if m.source and not m.read_only and path.startswith(m.target + "/"):
                    host = Path(m.source) / path[len(m.target) + 1 :]
                    host.parent.mkdir(parents=True, exist_ok=True)
                    host.write_bytes(data)


def test_where_binds_are_written_in_place_outputs_are_read_from_the_host(
    tmp_path: Path, config: EmulatorConfig
) -> None:
    docker = InPlaceDocker(Script(writes={**WRITES, "/opt/ml/output/failure": b"bad input"}, exit_code=1))
    request = make_request(tmp_path, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2})
    result = TrainingJob(request, config=config, docker=docker).run()
    assert docker.archived == []  # no archive call: model, output data and the failure file came from the binds
    binds = {m.target: m for m in docker.specs[0].mounts if m.target in ("/opt/ml/model", "/opt/ml/output")}
    assert [binds[t].read_only for t in sorted(binds)] == [False, False]
    assert "/opt/ml/output/data" not in [m.target for m in docker.specs[0].mounts]  # a dir in the bound dir
    assert result["FailureReason"].endswith("bad input")
    assert tar_read(result["ModelArtifacts"]["S3ModelArtifacts"], "model.bin") == b"weights"
    assert set(tar_names(tmp_path / "out" / "job-1" / "output" / "output.tar.gz")) == {"report.txt"}
    assert not list(Path(config.work_dir or "").iterdir())  # the bound dirs went with the work dir


@pytest.mark.parametrize("user", ["1000", "app:app"])
def test_an_image_that_runs_as_another_user_keeps_its_outputs_in_volumes(
    tmp_path: Path, config: EmulatorConfig, user: str
) -> None:
    docker = InPlaceDocker(Script(writes=WRITES), user=user)
    result = TrainingJob(make_request(tmp_path), config=config, docker=docker).run()
    assert docker.archived == ["/opt/ml"]
    assert not [m for m in docker.specs[0].mounts if m.source and not m.read_only]
    assert tar_read(result["ModelArtifacts"]["S3ModelArtifacts"], "model.bin") == b"weights"


@pytest.mark.parametrize("change", [{"keep_containers": True}, {"bind_outputs": False}])
def test_kept_containers_or_binds_turned_off_keep_the_outputs_in_volumes(
    tmp_path: Path, config: EmulatorConfig, change: dict[str, bool]
) -> None:
    docker = InPlaceDocker(Script(writes=WRITES), user="root")
    TrainingJob(make_request(tmp_path), config=config.with_(**change), docker=docker).run()
    assert docker.archived == ["/opt/ml"]


def test_record_tree_lists_the_files_each_host_left_under_opt_ml(tmp_path: Path, config: EmulatorConfig) -> None:
    script = Script(
        writes={
            "/opt/ml/model/model.bin": b"weights",
            "/opt/ml/output/model/copy.bin": b"weights",
            "/opt/ml/stray.txt": b"s",
        }
    )
    docker = FakeDocker(script)
    request = make_request(tmp_path, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2})
    job = TrainingJob(request, config=config, docker=docker, host_names=["h-a", "h-b"], record_tree=True)
    assert job.run()["TrainingJobStatus"] == "Completed"
    expected = [
        "/opt/ml/input/config/hyperparameters.json",
        "/opt/ml/input/config/inputdataconfig.json",
        "/opt/ml/input/config/resourceconfig.json",
        "/opt/ml/model/model.bin",
        "/opt/ml/output/model/copy.bin",
        "/opt/ml/stray.txt",
    ]  # absolute paths, by host name
    files = {h: sorted(p for p, kind in tree.items() if kind == "file") for h, tree in job.final_tree.items()}
    assert files == {"h-a": expected, "h-b": expected}
    assert docker.all_removed()  # listed before the containers went away


def test_record_tree_is_off_by_default(tmp_path: Path, config: EmulatorConfig) -> None:
    job = TrainingJob(make_request(tmp_path), config=config, docker=FakeDocker(Script(writes={"/opt/ml/x": b"x"})))
    job.run()
    assert job.final_tree == {}


def test_record_tree_also_after_a_failure(tmp_path: Path, config: EmulatorConfig) -> None:
    script = Script(exit_code=1, writes={"/opt/ml/output/failure": b"boom"})
    job = TrainingJob(make_request(tmp_path), config=config, docker=FakeDocker(script), record_tree=True)
    assert job.run()["TrainingJobStatus"] == "Failed"
    assert "/opt/ml/output/failure" in job.final_tree["algo-1"]


def test_empty_model_dir_still_gives_a_model_tar_gz(tmp_path: Path, config: EmulatorConfig) -> None:
    result, _ = run(tmp_path, config)
    assert tar_names(result["ModelArtifacts"]["S3ModelArtifacts"]) == []
    assert not (tmp_path / "out" / "job-1" / "output" / "output.tar.gz").exists()


def test_compression_none_writes_an_uncompressed_tar(tmp_path: Path, config: EmulatorConfig) -> None:
    script = Script(writes={"/opt/ml/model/model.bin": b"w"})
    result, _ = run(tmp_path, config, script, OutputDataConfig={"CompressionType": "NONE"})
    model = result["ModelArtifacts"]["S3ModelArtifacts"]
    assert model.endswith("/job-1/output/model.tar")
    with tarfile.open(model, "r:") as tf:  # plain tar, not gzip
        assert tf.getnames() == ["model.bin"]


def test_failure_reason_is_the_failure_file(tmp_path: Path, config: EmulatorConfig) -> None:
    script = Script(exit_code=2, writes={"/opt/ml/output/failure": b"ValueError: column 'x' missing"})
    result, docker = run(tmp_path, config, script)
    assert (result["TrainingJobStatus"], result["SecondaryStatus"]) == ("Failed", "Failed")
    assert result["FailureReason"] == "ValueError: column 'x' missing"
    assert Path(result["ModelArtifacts"]["S3ModelArtifacts"]).is_file()  # exported even when the job failed
    assert docker.all_removed()


def test_failure_reason_is_the_first_1024_characters(tmp_path: Path, config: EmulatorConfig) -> None:
    text = "é" + "x" * 1500  # characters, not bytes
    script = Script(exit_code=1, writes={"/opt/ml/output/failure": text.encode()})
    result, _ = run(tmp_path, config, script)
    assert result["FailureReason"] == text[:1024]


def test_failure_reason_without_a_failure_file_has_the_exit_code(tmp_path: Path, config: EmulatorConfig) -> None:
    result, _ = run(tmp_path, config, Script(exit_code=3))
    assert result["TrainingJobStatus"] == "Failed"
    assert result["FailureReason"] == "AlgorithmError: , exit code: 3"


def test_failure_reason_names_an_oom_kill(tmp_path: Path, config: EmulatorConfig) -> None:
    result, _ = run(tmp_path, config, Script(exit_code=137, oom_killed=True))
    assert result["FailureReason"] == "AlgorithmError: the container ran out of memory (OOMKilled), exit code: 137"


def test_one_failing_host_stops_the_others_and_gives_the_reason(tmp_path: Path, config: EmulatorConfig) -> None:
    def script(spec: ContainerSpec) -> Script:
        if spec.hostname == "algo-2":
            return Script(exit_code=4, writes={"/opt/ml/output/failure": b"algo-2 broke"})
        return Script(runs_until_signalled=True)

    result, docker = run(tmp_path, config, script, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 3})
    assert result["TrainingJobStatus"] == "Failed"
    assert result["FailureReason"] == "algo-2 broke"
    signals = {c.spec.hostname: c.signals for c in docker.containers.values()}
    assert signals["algo-1"][:1] == [signal.SIGTERM]
    assert signals["algo-3"][:1] == [signal.SIGTERM]
    assert docker.all_removed()


@pytest.mark.usefixtures("fast_clock")
def test_max_runtime_exceeded_stops_the_job(tmp_path: Path, config: EmulatorConfig) -> None:
    script = Script(runs_until_signalled=True, writes={"/opt/ml/model/partial.bin": b"p"})
    result, docker = run(tmp_path, config, script, StoppingCondition={"MaxRuntimeInSeconds": 1})
    assert (result["TrainingJobStatus"], result["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert "FailureReason" not in result
    [c] = docker.containers.values()
    assert c.signals == [signal.SIGTERM]
    assert tar_names(result["ModelArtifacts"]["S3ModelArtifacts"]) == ["partial.bin"]  # exported after a stop
    assert docker.all_removed()


@pytest.mark.usefixtures("fast_clock")
def test_sigterm_ignored_means_sigkill_after_the_grace_period(tmp_path: Path, config: EmulatorConfig) -> None:
    script = Script(runs_until_signalled=True, ignores_sigterm=True)
    result, docker = run(tmp_path, config, script, StoppingCondition={"MaxRuntimeInSeconds": 1})
    assert result["SecondaryStatus"] == "MaxRuntimeExceeded"
    [c] = docker.containers.values()
    assert c.signals == [signal.SIGTERM, signal.SIGKILL]
    assert c.exit_code == 137


def test_final_metrics_keep_the_last_value_of_each_regex(tmp_path: Path, config: EmulatorConfig) -> None:
    script = Script(logs=["epoch 1 loss=0.9", "epoch 2 loss=0.5 acc=0.7", "noise", "loss=0.25;", "acc=nan?"])
    result, _ = run(
        tmp_path,
        config,
        script,
        AlgorithmSpecification={
            "MetricDefinitions": [
                {"Name": "loss", "Regex": r"loss=([0-9.]+)"},
                {"Name": "acc", "Regex": r"acc=([0-9.]+)"},
                {"Name": "never", "Regex": r"never=(\d+)"},
            ]
        },
    )
    metrics = {m["MetricName"]: m["Value"] for m in result["FinalMetricDataList"]}
    assert metrics == {"loss": 0.25, "acc": 0.7}
    assert all(isinstance(m["Timestamp"], datetime) for m in result["FinalMetricDataList"])


def test_timestamps_are_ordered(tmp_path: Path, config: EmulatorConfig) -> None:
    result, _ = run(tmp_path, config)
    assert result["CreationTime"] <= result["TrainingStartTime"] <= result["TrainingEndTime"]
    assert result["TrainingEndTime"] <= result["LastModifiedTime"]
    starts = [t["StartTime"] for t in result["SecondaryStatusTransitions"]]
    assert starts == sorted(starts)
    for t in result["SecondaryStatusTransitions"]:
        assert t["StartTime"] <= t["EndTime"]
    assert result["TrainingTimeInSeconds"] >= 1


def test_training_and_billable_time_are_wall_clock_not_per_host(tmp_path: Path, config: EmulatorConfig) -> None:
    result, _ = run(tmp_path, config, ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 3})
    # The API: "Multiply BillableTimeInSeconds by the number of instances ... to get the total compute time".
    assert result["TrainingTimeInSeconds"] == result["BillableTimeInSeconds"] == 1


# -- errors and cleanup -----------------------------------------------------------------------------------


def test_missing_image_fails_before_anything_is_created(tmp_path: Path, config: EmulatorConfig) -> None:
    docker = FakeDocker(missing=(IMAGE,))
    with pytest.raises(ImageNotFound, match=IMAGE):
        TrainingJob(make_request(tmp_path), config=config, docker=docker).run()
    assert not docker.containers
    assert not docker.networks
    assert not list(Path(config.work_dir or "").iterdir())


def test_image_without_train_is_explained_and_cleaned_up(tmp_path: Path, config: EmulatorConfig) -> None:
    err = 'OCI runtime create failed: exec: "train": executable file not found in $PATH: unknown'
    docker = FakeDocker(Script(start_error=err))
    with pytest.raises(ContainerFailed) as info:
        TrainingJob(make_request(tmp_path), config=config, docker=docker).run()
    message = str(info.value)
    assert "\n" not in message
    assert "'train'" in message
    assert "executable named 'train' on PATH" in message
    assert docker.all_removed()
    assert not list(Path(config.work_dir or "").iterdir())


def test_ctrl_c_stops_cleans_up_and_raises_interrupted(tmp_path: Path, config: EmulatorConfig) -> None:
    docker = FakeDocker(Script(runs_until_signalled=True, interrupt_on_wait=True, writes={"/opt/ml/model/m.bin": b"m"}))
    job = TrainingJob(make_request(tmp_path), config=config, docker=docker)
    with pytest.raises(Interrupted) as info:
        job.run()
    assert info.value.exit_code == 130
    [c] = docker.containers.values()
    assert c.signals[:1] == [signal.SIGTERM]
    assert docker.all_removed()
    assert job.describe()["TrainingJobStatus"] == "Stopped"
    assert tar_names(job.describe()["ModelArtifacts"]["S3ModelArtifacts"]) == ["m.bin"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {
                "InputDataConfig": [
                    channel("train", "s3://bucket/train", InputMode="File", RecordWrapperType="RecordIO")
                ]
            },
            r"InputDataConfig\[train\]: RecordWrapperType RecordIO is for InputMode Pipe only",
        ),
        ({"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 0}}, "InstanceCount"),
        ({"TrainingJobName": "bad_name"}, "TrainingJobName"),
        ({"HyperParameters": {"epochs": 2}}, 'quote it: "2"'),
        (
            {"AlgorithmSpecification": {"MetricDefinitions": [{"Name": "m", "Regex": "loss=(["}]}},
            r"MetricDefinitions\[m\]\.Regex: .*; fix the regular expression",
        ),
    ],
)
def test_requests_refused_before_running(
    tmp_path: Path, config: EmulatorConfig, change: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        TrainingJob(make_request(tmp_path, **change), config=config, docker=FakeDocker())


# -- DescribeTrainingJob shape ----------------------------------------------------------------------------


def shape_errors(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Where ``value`` does not fit botocore's ``shape``: required members, unknown keys, enums, types."""
    where = path or "response"
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{where}: expected a structure, got {type(value).__name__}"]
        errors = [f"{where}.{m}: required, missing" for m in shape.required_members if m not in value]
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{where}.{key}: not a member of {shape.name}")
            else:
                errors += shape_errors(shape.members[key], item, f"{where}.{key}")
        return errors
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [e for i, item in enumerate(value) for e in shape_errors(shape.member, item, f"{where}[{i}]")]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {type(value).__name__}"]
        return [
            e
            for k, v in value.items()
            for e in shape_errors(shape.key, k, f"{where} key") + shape_errors(shape.value, v, f"{where}.{k}")
        ]
    kind = shape.type_name
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "long": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "double": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "timestamp": isinstance(value, datetime) and value.tzinfo is not None,
        "blob": isinstance(value, bytes),
    }.get(kind, True)
    if not ok:
        return [f"{where}: expected {kind}, got {type(value).__name__} {value!r:.40}"]
    if isinstance(shape, StringShape) and shape.enum and value not in shape.enum:
        return [f"{where}: {value!r} is not one of {shape.enum}"]
    return []


def test_shape_walker_catches_what_it_should() -> None:
    shape = operation_model("DescribeTrainingJob").output_shape
    assert shape is not None
    bad = {"TrainingJobName": 1, "TrainingJobStatus": "Done", "Bogus": True, "CreationTime": "yesterday"}
    errors = shape_errors(shape, bad)
    assert any("TrainingJobName: expected string" in e for e in errors)
    assert any("TrainingJobStatus: 'Done' is not one of" in e for e in errors)
    assert any("Bogus: not a member" in e for e in errors)
    assert any("CreationTime: expected timestamp" in e for e in errors)
    assert any("TrainingJobArn: required, missing" in e for e in errors)


@pytest.mark.usefixtures("fast_clock")
@pytest.mark.parametrize(
    ("script", "stopping"),
    [
        (Script(logs=["loss=0.1"]), 86400),
        (Script(exit_code=1, writes={"/opt/ml/output/failure": b"boom"}), 86400),
        (Script(exit_code=5), 86400),
        (Script(runs_until_signalled=True), 1),
    ],
    ids=["completed", "failed-with-file", "failed-without-file", "max-runtime"],
)
def test_describe_result_fits_botocores_output_shape(
    tmp_path: Path, config: EmulatorConfig, script: Script, stopping: int
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("1")
    store = tmp_path / "ckpt"
    store.mkdir()
    result, _ = run(
        tmp_path,
        config,
        script,
        HyperParameters={"a": "1"},
        Environment={"E": "1"},
        InputDataConfig=[channel("train", data, ContentType="text/csv")],
        CheckpointConfig={"S3Uri": str(store)},
        StoppingCondition={"MaxRuntimeInSeconds": stopping},
        AlgorithmSpecification={"MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]},
    )
    shape = operation_model("DescribeTrainingJob").output_shape
    assert shape is not None
    assert shape_errors(shape, result) == []
