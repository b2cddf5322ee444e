"""Checkpoints on the real engine (contract 1.9): synced while the job runs, restored into the next job.

The checkpointer image (tests/images/checkpointer) resumes from the newest ``step-N.ckpt`` in its LocalPath,
writes one checkpoint per step and deletes the previous one, so the location must hold exactly the newest step.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB
from emulator.storage.s3 import S3
from emulator.training import TrainingJob

pytestmark = pytest.mark.docker

#: Syncs this often in the tests (the default is CHECKPOINT_SYNC_INTERVAL_S).
SYNC_S = 0.3


@pytest.fixture(scope="module")
def checkpointer_image(docker_available: str, image_builder: ModuleType) -> str:
    try:
        image: str = image_builder.build_test_image("checkpointer")
    except image_builder.ImageBuildError as exc:
        pytest.fail(f"cannot build the checkpointer image: {exc}")
    return image


def _request(image: str, out: Path, checkpoints: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": str(out)},
        "CheckpointConfig": checkpoints,
        "Environment": env,
    }


def _resume(result: dict[str, Any]) -> dict[str, Any]:
    """What the image found in its checkpoint dir when it started (model.tar.gz's resume.json)."""
    with tarfile.open(result["ModelArtifacts"]["S3ModelArtifacts"]) as tf:
        member = tf.extractfile("resume.json")
        assert member is not None
        loaded: dict[str, Any] = json.loads(member.read())
        return loaded


def _left_behind(job: TrainingJob) -> str:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL_JOB}={job.name}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def test_checkpoints_reach_the_location_while_the_job_runs_and_a_restart_resumes(
    checkpointer_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    store = tmp_path / "checkpoints"
    config = fast_config.with_(checkpoint_sync_interval_s=SYNC_S, stream_logs=False)
    first = TrainingJob(_request(checkpointer_image, tmp_path / "out", {"S3Uri": str(store)}, {}), config=config)
    first.start()
    try:
        # The job runs until it is stopped, so a checkpoint at the location can only come from the live sync.
        for _ in range(600):
            if list(store.glob("step-*.ckpt")) or first.describe()["TrainingJobStatus"] != "InProgress":
                break
            time.sleep(0.1)
        assert first.describe()["TrainingJobStatus"] == "InProgress"
        assert list(store.glob("step-*.ckpt")), "no checkpoint reached the location while the job ran"
    finally:
        first.stop(grace_s=10)
    stopped = first.wait(120)
    assert stopped["TrainingJobStatus"] == "Stopped"
    assert not _left_behind(first)
    # The image deletes each older checkpoint: the location holds exactly the newest, owned by this user.
    (newest,) = store.glob("step-*.ckpt")
    step = int(newest.read_text())
    assert newest.name == f"step-{step}.ckpt"
    assert step >= 1
    assert newest.stat().st_uid == tmp_path.stat().st_uid

    # The spot restart: the same CheckpointConfig, and the image goes on from the newest checkpoint.
    env = {"CKPT_UNTIL": str(step + 2)}
    second = TrainingJob(_request(checkpointer_image, tmp_path / "out", {"S3Uri": str(store)}, env), config=config)
    result = second.run()
    assert result["TrainingJobStatus"] == "Completed"
    assert _resume(result) == {
        "local_path": "/opt/ml/checkpoints",
        "found": [newest.name],
        "files": [newest.name],
        "resumed_from": step,
    }
    assert {p.name: p.read_text() for p in store.iterdir()} == {f"step-{step + 2}.ckpt": str(step + 2)}


def test_checkpoints_through_s3_from_a_local_path_outside_opt_ml_after_a_failure(
    checkpointer_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    config = fast_config.with_(checkpoint_sync_interval_s=SYNC_S, stream_logs=False)
    with S3(config) as s3:
        s3.put_bytes("s3://ckpt-bucket/run-1/step-3.ckpt", b"3")
        s3.put_bytes("s3://ckpt-bucket/other/step-9.ckpt", b"9")  # another prefix: neither seeded nor touched
        s3.put_bytes("s3://ckpt-bucket/run-10/step-7.ckpt", b"7")  # a neighbour of the prefix "run-1": the same
        checkpoints = {"S3Uri": "s3://ckpt-bucket/run-1", "LocalPath": "/opt/checkpoints"}
        env = {"CKPT_UNTIL": "5", "CKPT_EXIT_CODE": "1"}  # fails after its last step
        request = _request(checkpointer_image, tmp_path / "out", checkpoints, env)
        result = TrainingJob(request, config=config, s3=s3).run()
        assert result["TrainingJobStatus"] == "Failed"
        assert _resume(result) == {
            "local_path": "/opt/checkpoints",
            "found": ["step-3.ckpt"],
            "files": ["step-3.ckpt"],  # nothing of the neighbour run-10/
            "resumed_from": 3,
        }
        assert s3.list_keys("s3://ckpt-bucket/run-1/") == [("run-1/step-5.ckpt", 1)]
        assert s3.read_bytes("s3://ckpt-bucket/run-1/step-5.ckpt") == b"5"
        assert s3.list_keys("s3://ckpt-bucket/other/") == [("other/step-9.ckpt", 1)]
        assert s3.list_keys("s3://ckpt-bucket/run-10/") == [("run-10/step-7.ckpt", 1)]
