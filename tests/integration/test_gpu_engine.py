"""GPU instance types on the real engine: refused in one line on an engine without GPUs, or run on the CPU when
allowed (the probe image records the environment it got). An engine with GPUs skips these: there the device
request goes through (the unit tests check its construction).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB
from emulator.errors import EXIT_ENVIRONMENT, GpuUnavailable
from emulator.runtime.docker import DockerClient
from emulator.training import TrainingJob

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def no_gpus(docker_available: str) -> None:
    client = DockerClient(EmulatorConfig.from_env())
    try:
        if client.has_gpus():
            pytest.skip("this engine has GPUs: the refusal and the CPU run cannot happen here")
    finally:
        client.close()


def _request(image: str, out: Path, name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": str(out)},
        "ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
    }


def _containers_of(job_name: str) -> list[str]:
    client = DockerClient(EmulatorConfig.from_env())
    try:
        return [m.id for m in client.list_managed(f"{LABEL_JOB}={job_name}")]
    finally:
        client.close()


def test_a_gpu_type_is_refused_on_an_engine_without_gpus(
    no_gpus: None, probe_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    job = TrainingJob(_request(probe_image, tmp_path / "out", "gpu-refused"), config=fast_config)
    with pytest.raises(GpuUnavailable, match="--allow-cpu-for-gpu"):
        job.run()
    assert not _containers_of(job.name)
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_the_cli_refusal_is_one_line_with_the_environment_exit_code(
    no_gpus: None, probe_image: str, fast_config: EmulatorConfig, tmp_path: Path, emulator_pids: set[int]
) -> None:
    env = {**os.environ, "SM_EMULATOR_WORK_DIR": str(fast_config.work_dir)}
    env.pop("SM_EMULATOR_ALLOW_CPU_FOR_GPU", None)
    command = [sys.executable, "-m", "emulator", "train", "--image", probe_image, "--instance-type", "ml.p3.2xlarge"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    emulator_pids.add(proc.pid)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_ENVIRONMENT
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ")
    assert "1 GPU(s)" in lines[-1]
    assert "--allow-cpu-for-gpu" in lines[-1]
    assert "Traceback" not in err


def test_allowed_a_gpu_type_runs_on_the_cpu_without_nvidia_visible_devices(
    no_gpus: None, probe_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    config = fast_config.with_(allow_cpu_for_gpu=True, stream_logs=False)
    result = TrainingJob(_request(probe_image, tmp_path / "out", "gpu-on-cpu"), config=config).run()
    assert result["TrainingJobStatus"] == "Completed"
    with tarfile.open(result["ModelArtifacts"]["S3ModelArtifacts"]) as tf:
        member = tf.extractfile("probe.json")
        assert member is not None
        probe = json.loads(member.read())
    assert "NVIDIA_VISIBLE_DEVICES" not in probe["env"]
    assert probe["env"]["TRAINING_JOB_NAME"] == "gpu-on-cpu"
