"""Jobs on a second engine that cannot see the client's files (scripts/remote_engine.sh: its own mount namespace,
data root and bridge, on tcp://127.0.0.1): inputs travel as volumes, outputs as archives, nothing is left behind.

The module's fixture starts that engine (root needed) and loads the probe and recorder images into it, offline; it
stops the engine again when it started it.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_PID, LABEL_SESSION
from emulator.errors import EmulatorError, InputNotFound
from emulator.processing import ProcessingJob
from emulator.runtime import session as _session
from emulator.runtime.docker import ContainerSpec, DockerClient, Mount
from emulator.serving import multimodel
from emulator.serving.endpoint import Endpoint
from emulator.serving.multimodel import MultiModelEndpoint
from emulator.training import TrainingJob
from emulator.transform import TransformJob

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "remote_engine.sh"


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def multimodel_image(docker_available: str, image_builder: ModuleType) -> str:
    """tests/images/multimodel (labelled multi-models=true), rebuilt only when its files changed."""
    image: str = image_builder.build_test_image("multimodel")
    return image


@pytest.fixture(scope="module")
def pipe_reader_image(docker_available: str, image_builder: ModuleType) -> str:
    """tests/images/pipe_reader (records what each channel gave it), rebuilt only when its files changed."""
    image: str = image_builder.build_test_image("pipe_reader")
    return image


@pytest.fixture(scope="module")
def remote_host(probe_image: str, recorder_image: str, multimodel_image: str, pipe_reader_image: str) -> Iterator[str]:
    """The test engine's DOCKER_HOST, started (and the test images loaded into it) for this module."""
    host = _script("host").stdout.strip()
    env = {**os.environ, "DOCKER_HOST": host}
    running = subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=60, check=False).returncode == 0
    started = _script("start", probe_image, recorder_image, multimodel_image, pipe_reader_image)
    if started.returncode != 0:
        pytest.fail(f"scripts/remote_engine.sh start failed: {started.stderr.strip()}", pytrace=False)
    yield host
    if not running:
        _script("stop")


@pytest.fixture
def config(fast_config: EmulatorConfig, remote_host: str) -> Iterator[EmulatorConfig]:
    """A config for the test engine; after the test, nothing of this session is left on it (nor on the main one)."""
    yield fast_config.with_(docker_host=remote_host, stream_logs=False)
    label = f"{LABEL_SESSION}={_session.SESSION_ID}"
    for engine in (remote_host, fast_config.docker_host):
        client = DockerClient(fast_config.with_(docker_host=engine))
        try:
            left = [*client.list_managed(label), *client.list_volumes(label)]
        finally:
            client.close()
        assert left == [], f"left on {engine or 'the main engine'}: {left}"


def _ls_in_container(config: EmulatorConfig, client_dir: Path) -> str:
    """What ``ls -A`` shows of ``client_dir`` bind-mounted (a plain bind, no staging) into a container."""
    client = DockerClient(config)
    spec = ContainerSpec(
        "sagemaker-emulator-test/probe:latest",
        command=["sh", "-c", "ls -A /seen"],
        mounts=[Mount("/seen", str(client_dir), read_only=True)],
        labels=_session.labels("test", "remote-view"),
    )
    cid = client.create(spec)
    try:
        client.start(cid)
        assert client.wait(cid, timeout_s=60) == 0
        return client.logs_tail(cid).strip()
    finally:
        client.remove(cid)
        client.close()


def test_the_test_engine_cannot_see_the_clients_files(
    config: EmulatorConfig, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("client side")
    assert _ls_in_container(fast_config, tmp_path) == "secret.txt"  # the main engine shares this filesystem
    # the test engine does not: a plain bind of the client's dir has no source there
    with pytest.raises(EmulatorError, match="bind source path does not exist"):
        _ls_in_container(config, tmp_path)


def _channel(name: str, uri: Path) -> dict[str, Any]:
    return {"ChannelName": name, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(uri)}}}


def _probe_record(model_tar_gz: Path) -> dict[str, Any]:
    with tarfile.open(model_tar_gz) as tf:
        member = tf.extractfile("probe.json")
        assert member is not None
        record: dict[str, Any] = json.loads(member.read())
    return record


def test_file_mode_training_with_two_channels_makes_model_tar_gz(
    probe_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "train" / "part").mkdir(parents=True)
    (tmp_path / "train" / "part" / "rows.json").write_text('{"rows": [1, 2, 3]}')
    (tmp_path / "train" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (tmp_path / "val.json").write_text('{"v": true}')
    req = {
        "AlgorithmSpecification": {"TrainingImage": probe_image, "TrainingInputMode": "File"},
        "InputDataConfig": [
            _channel("train", tmp_path / "train"),
            _channel("validation", tmp_path / "val.json"),
        ],
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "HyperParameters": {"epochs": "3"},
    }
    result = TrainingJob(req, config=config).run()
    assert result["TrainingJobStatus"] == "Completed", result.get("FailureReason")
    model = Path(result["ModelArtifacts"]["S3ModelArtifacts"])
    tree = _probe_record(model)["tree"]
    assert json.loads(tree["/opt/ml/input/data/train/part/rows.json"]["json_text"]) == {"rows": [1, 2, 3]}
    assert tree["/opt/ml/input/data/train/big.bin"] == {"size": 3 * 1024 * 1024 + 7}
    assert json.loads(tree["/opt/ml/input/data/validation/val.json"]["json_text"]) == {"v": True}
    assert json.loads(tree["/opt/ml/input/config/hyperparameters.json"]["json_text"]) == {"epochs": "3"}
    channels = json.loads(tree["/opt/ml/input/config/inputdataconfig.json"]["json_text"])
    assert sorted(channels) == ["train", "validation"]
    # the output dir came back through the archive API too
    assert (model.parent / "output.tar.gz").is_file()


def _one_channel_job(image: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.csv").write_text("1\n")
    return {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "InputDataConfig": [_channel("train", tmp_path / "train")],
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        **extra,
    }


def test_two_hosts_read_pipe_fastfile_and_gzip_channels(
    pipe_reader_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "b.txt").write_bytes(b"bb\n")
    (tmp_path / "pipe" / "a.txt").write_bytes(b"a\n")
    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "f.bin").write_bytes(b"xy")
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "d.csv.gz").write_bytes(gzip.compress(b"1,2\n"))
    req = {
        "AlgorithmSpecification": {"TrainingImage": pipe_reader_image, "TrainingInputMode": "File"},
        "InputDataConfig": [
            {**_channel("pipe", tmp_path / "pipe"), "InputMode": "Pipe"},
            {**_channel("fast", tmp_path / "fast"), "InputMode": "FastFile"},
            {**_channel("gz", tmp_path / "gz"), "CompressionType": "Gzip"},
        ],
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
        "Environment": {"PIPE_EPOCHS": "2"},
    }
    result = TrainingJob(req, config=config).run()
    assert result["TrainingJobStatus"] == "Completed", result.get("FailureReason")
    with tarfile.open(result["ModelArtifacts"]["S3ModelArtifacts"]) as tf:
        seen = [json.load(tf.extractfile(m)) for m in tf.getmembers() if m.name.startswith("seen")]  # type: ignore[arg-type]
    assert len(seen) == 2  # each host's seen.json
    for host in seen:
        assert [bytes.fromhex(e["hex"]) for e in host["pipe"]["epochs"]] == [b"a\nbb\n", b"a\nbb\n"]
        assert host["fast"] == {"files": {"f.bin": b"xy".hex()}, "write": "EROFS"}  # read-only on the volume too
        assert host["gz"] == {"files": {"d.csv": b"1,2\n".hex()}, "write": "EROFS"}


def test_failing_job_reports_its_failure_file(probe_image: str, config: EmulatorConfig, tmp_path: Path) -> None:
    env = {"PROBE_EXIT_CODE": "3", "PROBE_FAILURE": "remote failure: bad channel"}
    result = TrainingJob(_one_channel_job(probe_image, tmp_path, Environment=env), config=config).run()
    assert result["TrainingJobStatus"] == "Failed"
    assert "remote failure: bad channel" in result["FailureReason"]


def test_a_job_over_its_max_runtime_leaves_no_volume(probe_image: str, config: EmulatorConfig, tmp_path: Path) -> None:
    req = _one_channel_job(
        probe_image,
        tmp_path,
        StoppingCondition={"MaxRuntimeInSeconds": 1},
        Environment={"PROBE_SLEEP_S": "60"},
    )
    result = TrainingJob(req, config=config).run()
    # the platform stops a job at its MaxRuntimeInSeconds; the fixture checks that nothing is left
    assert result["TrainingJobStatus"] == "Stopped"
    assert result["SecondaryStatus"] == "MaxRuntimeExceeded"


def _model_tar_gz(tmp_path: Path) -> Path:
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "weights.txt").write_text("w")
    (tmp_path / "model" / "sub" / "vocab.txt").write_text("v")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for path in sorted((tmp_path / "model").rglob("*")):
            tf.add(path, path.relative_to(tmp_path / "model").as_posix(), recursive=False)
    return archive


def test_endpoint_serves_its_model_read_only_and_answers(
    recorder_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    with Endpoint(recorder_image, model_data=str(_model_tar_gz(tmp_path)), config=config) as endpoint:
        assert requests.get(f"{endpoint.url}/_model", timeout=10).json() == {
            "files": ["sub/vocab.txt", "weights.txt"],
            "writable": False,
        }
        answer = endpoint.invoke(b"1,2\n3,4\n", content_type="text/csv")
    assert answer["Body"] == b"1,2\n3,4\n"


def test_batch_transform_writes_its_outputs_here(recorder_image: str, config: EmulatorConfig, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text("1,2\n3,4\n5,6\n")
    req = {
        "ModelName": "summer",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(tmp_path / "in")}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": str(tmp_path / "out"), "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    model = {"PrimaryContainer": {"Image": recorder_image, "Environment": {"RECORDER_RESPONSE": "sum"}}}
    result = TransformJob(req, models={"summer": model}, config=config).run()
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    assert (tmp_path / "out" / "rows.csv.out").read_text() == "3\n7\n11\n"


def test_processing_job_reads_an_input_and_writes_an_output(
    probe_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "in" / "deep").mkdir(parents=True)
    (tmp_path / "in" / "deep" / "data.txt").write_text("hello remote")
    script = "cat /opt/ml/processing/input/in/deep/data.txt | tr a-z A-Z > /opt/ml/processing/output/out/upper.txt"
    req = {
        "AppSpecification": {"ImageUri": probe_image, "ContainerEntrypoint": ["sh", "-c", script]},
        "ProcessingInputs": [
            {
                "InputName": "in",
                "S3Input": {
                    "S3Uri": str(tmp_path / "in"),
                    "LocalPath": "/opt/ml/processing/input/in",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": str(tmp_path / "out"),
                        "LocalPath": "/opt/ml/processing/output/out",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }
    result = ProcessingJob(req, config=config).run()
    assert result["ProcessingJobStatus"] == "Completed", result.get("FailureReason")
    assert (tmp_path / "out" / "upper.txt").read_text() == "HELLO REMOTE"


def test_multi_model_endpoint_sees_models_staged_after_it_started(
    multimodel_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "answer.txt").write_text(f"model {name}")
        with tarfile.open(models / f"{name}.tar.gz", "w:gz") as tf:
            tf.add(tmp_path / name / "answer.txt", "answer.txt")
    with MultiModelEndpoint(multimodel_image, model_data=str(models), config=config) as endpoint:
        answers = [json.loads(endpoint.invoke(b"x", target_model=f"{n}.tar.gz")["Body"]) for n in ("a", "b", "a")]
        # as another process does it (`invoke NAME --target-model`): found by name, the model copied into the volume
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "answer.txt").write_text("model c")
        with tarfile.open(models / "c.tar.gz", "w:gz") as tf:
            tf.add(tmp_path / "c" / "answer.txt", "answer.txt")
        other = multimodel.invoke_endpoint(endpoint.name, b"x", target_model="c.tar.gz", config=config)
    assert [a["answer"] for a in answers] == ["model a", "model b", "model a"]
    assert json.loads(other["Body"])["answer"] == "model c"


def test_cleanup_removes_the_volumes_a_killed_cli_left(
    probe_image: str, config: EmulatorConfig, emulator_pids: set[int], tmp_path: Path
) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.csv").write_text("1\n")
    env = {**os.environ, "DOCKER_HOST": str(config.docker_host), "SM_EMULATOR_WORK_DIR": str(tmp_path)}
    args = ["train", "--image", probe_image, "--channel", f"train={tmp_path / 'train'}", "--output", str(tmp_path)]
    args += ["--env", "PROBE_SLEEP_S=120", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "emulator", *args], env=env, stderr=subprocess.PIPE)
    emulator_pids.add(proc.pid)
    label = f"{LABEL_PID}={proc.pid}"
    client = DockerClient(config)
    try:
        deadline = time.monotonic() + 60
        while not client.list_managed(label):
            assert proc.poll() is None, "the CLI ended before it was killed"
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.1)
        proc.kill()  # SIGKILL: no atexit hook, no finally
        proc.communicate()
        assert len(client.list_volumes(label)) == 2  # the channel and the config files
        swept = subprocess.run(
            [sys.executable, "-m", "emulator", "cleanup"], env=env, capture_output=True, text=True, timeout=120
        )
        assert swept.returncode == 0, swept.stderr
        assert swept.stdout.count("removed volume sm-emulator-in-") == 2, swept.stdout
        assert client.list_managed(label) == []
        assert client.list_volumes(label) == []
    finally:
        proc.kill()
        client.close()


def test_an_input_file_that_cannot_be_read_is_bad_input_and_leaves_nothing(
    probe_image: str, config: EmulatorConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = _one_channel_job(probe_image, tmp_path)
    (tmp_path / "train" / "locked.csv").write_text("2\n")
    real_open = Path.open

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:  # root reads anything: refuse as a user would
        if self.name == "locked.csv":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    with pytest.raises(InputNotFound, match=r"cannot read .*locked\.csv .*Permission denied"):
        TrainingJob(req, config=config).run()  # the fixture checks that nothing is left on either engine
