"""ProcessingJob against a fake Docker seam: what the container is given, and how its outcome is reported.

No engine is needed. ``FakeDocker`` records each ContainerSpec, snapshots what the read-only input mounts
show, plays a scripted run (files written, exit code, signals) and serves ``get_archive`` as Docker does.
"""

from __future__ import annotations

import io
import json
import signal
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _fakes import has_label

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_MANAGED
from emulator.errors import InvalidSpec
from emulator.processing import ProcessingJob
from emulator.runtime.docker import ContainerSpec, ContainerState, DockerSeam, ImageInfo, Managed
from emulator.storage.s3 import S3

IMAGE = "my-processor:latest"
CONFIG_DIR = "/opt/ml/config"


@dataclass
class Script:
    """What the fake container does once started."""

    exit_code: int = 0
    writes: dict[str, bytes] = field(default_factory=dict)
    runs_until_signalled: bool = False


@dataclass
class FakeContainer:
    spec: ContainerSpec
    files: dict[str, bytes]
    mounted: dict[str, dict[str, bytes]]
    exit_code: int | None = None
    signals: list[int] = field(default_factory=list)
    removed: bool = False
    started: bool = False


class FakeDocker:
    """The DockerSeam operations ProcessingJob and Cluster use; nothing runs."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.containers: dict[str, FakeContainer] = {}
        self.networks: list[str] = []

    def image_info(self, image: str) -> ImageInfo:
        return ImageInfo(id="sha256:fake", entrypoint=["/bin/entry"], cmd=["default"], user="", labels={}, env=[])

    def create(self, spec: ContainerSpec) -> str:
        mounted: dict[str, dict[str, bytes]] = {}
        for m in spec.mounts:
            if m.source is not None:
                src = Path(m.source)
                paths = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
                base = src if src.is_dir() else src.parent
                mounted[m.target] = {p.relative_to(base).as_posix(): p.read_bytes() for p in paths}
        cid = f"fake{len(self.containers):04d}"
        self.containers[cid] = FakeContainer(spec, dict(spec.files), mounted)
        return cid

    def start(self, container_id: str) -> None:
        c = self.containers[container_id]
        c.started = True
        c.files.update(self.script.writes)
        if not self.script.runs_until_signalled:
            c.exit_code = self.script.exit_code

    def wait(self, container_id: str, timeout_s: float | None = None) -> int | None:
        c = self.containers[container_id]
        if c.exit_code is None:
            time.sleep(min(timeout_s or 0.01, 0.01))
        return c.exit_code

    def signal(self, container_id: str, sig: int) -> None:
        c = self.containers[container_id]
        c.signals.append(int(sig))
        if c.exit_code is None:
            c.exit_code = 143 if sig == signal.SIGTERM else 137

    def state(self, container_id: str) -> ContainerState:
        return ContainerState("exited", self.containers[container_id].exit_code or 0, False)

    def iter_log_lines(self, container_id: str) -> Iterator[str]:
        return iter(["processing: started"])

    def logs_tail(self, container_id: str, lines: int = 50) -> str:
        return "processing: started"

    def host_port(self, container_id: str, port: int) -> int:
        raise NotImplementedError

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
        with tarfile.open(fileobj=buf, mode="w") as tf:
            if path in c.files:
                _add(tf, base, c.files[path])
            else:
                below = {p: d for p, d in c.files.items() if p.startswith(path + "/")}
                if not below and path not in c.spec.dirs:
                    return iter(())
                info = tarfile.TarInfo(base)
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
                for p, data in sorted(below.items()):
                    _add(tf, base + p[len(path) :], data)
        return iter([buf.getvalue()])

    def remove(self, container_id: str) -> None:
        self.containers[container_id].removed = True

    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str:
        self.networks.append(name)
        return f"net{len(self.networks)}"

    def remove_network(self, network_id: str) -> None:
        pass

    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]:
        found: list[Managed] = []
        for cid, c in self.containers.items():
            labels = {LABEL_MANAGED: "true", **c.spec.labels}
            if not c.removed and has_label(labels, label):
                state = "exited" if c.exit_code is not None else "running" if c.started else "created"
                found.append(Managed("container", cid, c.spec.name or cid, labels, state))
        return found

    #: What has_gpus() answers (a GPU instance type on an engine without GPUs is refused or run on the CPU).
    engine_gpus = False

    def has_gpus(self) -> bool:
        return self.engine_gpus

    def binds_in_place(self) -> bool:
        return False  # the fake's containers write nothing to the host: outputs leave through get_archive

    def close(self) -> None:
        pass

    @property
    def specs(self) -> list[ContainerSpec]:
        return [c.spec for c in self.containers.values()]


#: mypy proves that the fake implements the whole seam.
_SEAM_CHECK: type[DockerSeam] = FakeDocker


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


@pytest.fixture
def config(tmp_path: Path) -> EmulatorConfig:
    work = tmp_path / "work"
    work.mkdir()
    return EmulatorConfig(work_dir=str(work), training_stop_grace_s=0.2)


def request(**changes: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"ProcessingJobName": "proc-1", "AppSpecification": {"ImageUri": IMAGE}}
    req.update(changes)
    return req


def run(req: dict[str, Any], config: EmulatorConfig, script: Script | None = None) -> tuple[dict[str, Any], FakeDocker]:
    docker = FakeDocker(script)
    result = ProcessingJob(req, config=config, docker=docker).run()
    assert all(c.removed for c in docker.containers.values())
    return result, docker


# -- how the image is started -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "entrypoint", "command"),
    [
        ({}, None, None),  # neither: the image's ENTRYPOINT and CMD
        ({"ContainerEntrypoint": ["python3", "run.py"]}, ["python3", "run.py"], []),  # the image's CMD is dropped
        ({"ContainerArguments": ["--mode", "fast"]}, None, ["--mode", "fast"]),  # image ENTRYPOINT + these args
        ({"ContainerEntrypoint": ["processing"], "ContainerArguments": ["evaluate"]}, ["processing"], ["evaluate"]),
    ],
)
def test_entrypoint_and_arguments_semantics(
    config: EmulatorConfig, app: dict[str, Any], entrypoint: Any, command: Any
) -> None:
    result, docker = run(request(AppSpecification={"ImageUri": IMAGE, **app}), config)
    spec = docker.specs[0]
    assert (spec.entrypoint, spec.command) == (entrypoint, command)
    assert result["ProcessingJobStatus"] == "Completed"


def test_config_files_at_opt_ml_config(config: EmulatorConfig, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    req = request(
        AppSpecification={"ImageUri": IMAGE, "ContainerEntrypoint": ["processing"]},
        Environment={"MODE": "fast"},
        ProcessingInputs=[{"InputName": "raw", "S3Input": {"S3Uri": str(data), "LocalPath": "/opt/ml/processing/in"}}],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": str(tmp_path / "out"),
                        "LocalPath": "/opt/ml/processing/out",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 10}
        },
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    result, docker = run(req, config)
    assert len(docker.specs) == 2
    job = json.loads(docker.specs[0].files[f"{CONFIG_DIR}/processingjobconfig.json"])
    assert job["ProcessingJobName"] == "proc-1"
    assert job["ProcessingJobArn"] == result["ProcessingJobArn"]
    assert job["AppSpecification"] == {
        "ImageUri": IMAGE,
        "ContainerEntrypoint": ["processing"],
        "ContainerArguments": None,
    }
    assert job["Environment"] == {"MODE": "fast"}
    assert job["ProcessingInputs"][0]["S3Input"]["LocalPath"] == "/opt/ml/processing/in"
    assert job["ProcessingInputs"][0]["S3Input"]["S3InputMode"] == "File"
    assert job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3UploadMode"] == "EndOfJob"
    assert job["ProcessingOutputConfig"]["KmsKeyId"] is None
    assert job["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 2,
        "InstanceType": "ml.m5.xlarge",
        "VolumeSizeInGB": 10,
        "VolumeKmsKeyId": None,
    }
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    assert job["RoleArn"].startswith("arn:aws:iam::")
    for index, spec in enumerate(docker.specs):
        resource = json.loads(spec.files[f"{CONFIG_DIR}/resourceconfig.json"])
        assert resource["current_host"] == f"algo-{index + 1}"
        assert resource["hosts"] == ["algo-1", "algo-2"]
        assert resource["current_instance_type"] == "ml.m5.xlarge"
    # The processing config dir is /opt/ml/config, not training's /opt/ml/input/config.
    assert "/opt/ml/input/config/resourceconfig.json" not in docker.specs[0].files


def test_inputs_mounted_and_outputs_created_before_start(config: EmulatorConfig, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x.csv").write_text("x")
    (tmp_path / "one.csv").write_text("1")
    req = request(
        ProcessingInputs=[
            {"InputName": "d", "S3Input": {"S3Uri": str(tmp_path / "dir"), "LocalPath": "/opt/ml/processing/d"}},
            {"InputName": "f", "S3Input": {"S3Uri": str(tmp_path / "one.csv"), "LocalPath": "/opt/ml/processing/f"}},
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "o",
                    "S3Output": {
                        "S3Uri": str(tmp_path / "o"),
                        "LocalPath": "/opt/ml/processing/o/",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    )
    _, docker = run(req, config)
    spec = docker.specs[0]
    mounts = {m.target: m for m in spec.mounts}
    assert mounts["/opt/ml/processing/d"].read_only
    assert docker.containers["fake0000"].mounted["/opt/ml/processing/d"] == {"x.csv": b"x"}
    assert docker.containers["fake0000"].mounted["/opt/ml/processing/f/one.csv"] == {"one.csv": b"1"}
    assert "/opt/ml/processing/o" in spec.dirs
    assert "/opt/ml/output" in spec.dirs
    assert spec.environment["AWS_REGION"] == config.region


@pytest.mark.parametrize(
    "changes",
    [
        {"ProcessingInputs": [{"InputName": "i", "S3Input": {"S3Uri": "x", "LocalPath": "/data/in"}}]},
        {"ProcessingInputs": [{"InputName": "i", "S3Input": {"S3Uri": "x", "LocalPath": "/opt/ml/processingX/i"}}]},
        {
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "o",
                        "S3Output": {"S3Uri": "x", "LocalPath": "/opt/ml/output/o", "S3UploadMode": "EndOfJob"},
                    }
                ]
            }
        },
    ],
)
def test_local_path_must_be_under_opt_ml_processing(config: EmulatorConfig, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec, match=r"must start with /opt/ml/processing/"):
        ProcessingJob(request(**changes), config=config, docker=FakeDocker())


def test_network_isolation_means_no_network_and_no_region(config: EmulatorConfig) -> None:
    _, docker = run(request(NetworkConfig={"EnableNetworkIsolation": True}), config)
    assert docker.specs[0].network == "none"
    assert "AWS_REGION" not in docker.specs[0].environment


# -- how the outcome is reported ----------------------------------------------------------------------------


def test_exit_message_truncated_to_1_kb(config: EmulatorConfig) -> None:
    message = ("é" * 600).encode()  # 1200 bytes: the cut must not split a character
    result, _ = run(request(), config, Script(writes={"/opt/ml/output/message": message}))
    assert result["ProcessingJobStatus"] == "Completed"
    assert len(result["ExitMessage"].encode()) <= 1024
    assert result["ExitMessage"] == "é" * 512


def test_non_utf8_message_fails_with_client_error(config: EmulatorConfig) -> None:
    result, _ = run(request(), config, Script(writes={"/opt/ml/output/message": b"\xff\xfe bad"}))
    assert result["ProcessingJobStatus"] == "Failed"
    assert result["FailureReason"].startswith("ClientError:")
    assert "UTF-8" in result["FailureReason"]


def test_non_zero_exit_fails_and_outputs_are_still_exported(config: EmulatorConfig, tmp_path: Path) -> None:
    req = request(
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "o",
                    "S3Output": {
                        "S3Uri": str(tmp_path / "o"),
                        "LocalPath": "/opt/ml/processing/o",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        }
    )
    script = Script(exit_code=3, writes={"/opt/ml/processing/o/part.csv": b"1\n", "/opt/ml/output/message": b"bad row"})
    result, _ = run(req, config, script)
    assert result["ProcessingJobStatus"] == "Failed"
    assert result["FailureReason"] == "AlgorithmError: See job logs for more information, exit code: 3"
    assert result["ExitMessage"] == "bad row"
    assert (tmp_path / "o" / "part.csv").read_bytes() == b"1\n"


def test_max_runtime_stops_the_job(config: EmulatorConfig) -> None:
    start = time.monotonic()
    result, docker = run(
        request(StoppingCondition={"MaxRuntimeInSeconds": 1}), config, Script(runs_until_signalled=True)
    )
    assert result["ProcessingJobStatus"] == "Stopped"
    assert "MaxRuntimeInSeconds" in result["FailureReason"]
    assert docker.containers["fake0000"].signals[0] == signal.SIGTERM
    assert time.monotonic() - start < 10


def test_s3_inputs_and_outputs_through_moto(config: EmulatorConfig) -> None:
    with S3(config) as s3:
        s3.client.create_bucket(Bucket="bucket")
        s3.put_bytes("s3://bucket/raw/a.csv", b"a")
        s3.put_bytes("s3://bucket/raw/sub/b.csv", b"b")
        req = request(
            ProcessingInputs=[
                {
                    "InputName": "raw",
                    "S3Input": {
                        "S3Uri": "s3://bucket/raw",
                        "LocalPath": "/opt/ml/processing/raw",
                        "S3DataType": "S3Prefix",
                    },
                }
            ],
            ProcessingOutputConfig={
                "Outputs": [
                    {
                        "OutputName": "o",
                        "S3Output": {
                            "S3Uri": "s3://bucket/out",
                            "LocalPath": "/opt/ml/processing/o",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        )
        docker = FakeDocker(Script(writes={"/opt/ml/processing/o/r/result.txt": b"done"}))
        result = ProcessingJob(req, config=config, docker=docker, s3=s3).run()
        assert result["ProcessingJobStatus"] == "Completed"
        assert docker.containers["fake0000"].mounted["/opt/ml/processing/raw"] == {"a.csv": b"a", "sub/b.csv": b"b"}
        assert s3.read_bytes("s3://bucket/out/r/result.txt") == b"done"
