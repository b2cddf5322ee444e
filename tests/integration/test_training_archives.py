"""Training on a real engine: the config dir is a read-only bind, and /opt/ml comes out in one archive call unless
it is large (then one call per path, after the first call was given up)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from emulator.config import EmulatorConfig
from emulator.runtime import runner as runner_module
from emulator.training import TrainingJob

pytestmark = pytest.mark.docker

IMAGE = "sagemaker-emulator-sample:latest"


def _job(tmp_path: Path, script: str) -> dict[str, object]:
    request = {
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["sh", "-c", script],
        },
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    }
    return TrainingJob(request, config=EmulatorConfig(stream_logs=False)).run()


def _members(archive: object) -> dict[str, int]:
    with tarfile.open(str(archive)) as tf:
        return {m.name: m.size for m in tf.getmembers()}


def test_config_is_read_only_and_the_dirs_are_there(sample_image: str, tmp_path: Path) -> None:
    script = (
        "touch /opt/ml/input/config/x 2>/dev/null && exit 3; cd /opt/ml && test -d checkpoints -a -d input/data && "
        "cp input/config/resourceconfig.json model/ && echo r > output/data/report.txt"
    )
    described = _job(tmp_path, script)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    model = described["ModelArtifacts"]["S3ModelArtifacts"]  # type: ignore[index]
    with tarfile.open(str(model)) as tf:
        member = tf.extractfile("resourceconfig.json")
        assert member is not None
        assert json.loads(member.read())["current_host"] == "algo-1"
    assert _members(tmp_path / "out" / described["TrainingJobName"] / "output" / "output.tar.gz") == {"report.txt": 2}  # type: ignore[operator]


def test_a_large_model_is_read_path_by_path(sample_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "WHOLE_ARCHIVE_MAX_BYTES", 1024 * 1024)
    script = "head -c 5000000 /dev/urandom > /opt/ml/model/big.bin && echo r > /opt/ml/output/data/x.txt; exit 4"
    described = _job(tmp_path, script)
    assert described["TrainingJobStatus"] == "Failed"  # and the failure file was read after the given-up call
    assert _members(described["ModelArtifacts"]["S3ModelArtifacts"]) == {"big.bin": 5_000_000}  # type: ignore[index]
