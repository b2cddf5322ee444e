"""The fault-injection tier: every job kind x every Docker call that can fail, through the CLI and the Python API.

A :class:`~_dockerproxy.FaultProxy` sits between the emulator and the engine. Each case arms one fault, runs a
job, and checks what docs/reliability.md promises:

* CLI: exit code 3, exactly one ``error:`` line on stderr that names the engine and the fix (``cleanup``), no
  traceback; Python API: :class:`DockerUnavailable` from ``run()``/``start()`` (and a Failed Describe);
* the job's temp folders are gone when the process ends, even while the engine is still failing;
* what the engine could not remove is labelled with the job's pid; once the proxy is healed, the sweep
  (``python -m emulator cleanup`` for the CLI, :func:`emulator.runtime.sweep.sweep` for the API) removes it, and
  afterwards no container, network or anonymous volume of the job is left.

Flavours per call: ``500`` (that one call answers 500; the exit sweep then cleans up), ``outage`` (the
connection is dropped and the engine stays gone until healed: nothing can be removed before ``cleanup``) and, for
the long-poll ``wait`` and the ``logs`` stream, ``cut`` (forwarded, then the connection closed 0.1 s later).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _dockerproxy import Fault, FaultProxy

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_PID, LABEL_SESSION
from emulator.errors import DockerUnavailable
from emulator.processing import ProcessingJob
from emulator.runtime import session as _session
from emulator.runtime.docker import DockerClient
from emulator.runtime.sweep import sweep
from emulator.serving import Endpoint
from emulator.training import TrainingJob
from emulator.transform import TransformJob

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
#: The Docker calls each job kind makes, i.e. the points a fault can hit.
POINTS: dict[str, tuple[str, ...]] = {
    "training": ("network_create", "create", "start", "logs", "wait", "archive", "remove"),
    "processing": ("network_create", "create", "start", "logs", "wait", "archive", "remove"),
    "transform": ("create", "start", "logs", "wait", "remove"),
    "serve": ("create", "start", "logs", "wait", "remove"),
}
FLAVOURS = ("500", "outage")
#: The long-poll and the stream are also cut mid-way (forwarded, then the connection closed).
STREAMING = ("logs", "wait")
CASES = [
    *((kind, point, flavour) for kind, points in POINTS.items() for point in points for flavour in FLAVOURS),
    # Not transform: its container lives a fraction of a second here, too short to cut its streams reliably.
    *((kind, point, "cut") for kind, points in POINTS.items() for point in points if point in STREAMING),
]
CASES = [c for c in CASES if not (c[0] == "transform" and c[2] == "cut")]


def _fault(point: str, flavour: str) -> Fault:
    if flavour == "500":
        return Fault(point, "500")
    if flavour == "cut":
        return Fault(point, after_s=0.1)
    return Fault(point, "drop", outage=True)


# -- the engine's view ------------------------------------------------------------------------------------------
def _docker_lines(*args: str) -> set[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60).stdout
    return {ln for ln in out.split() if ln}


def _labelled(label: str) -> set[str]:
    return _docker_lines("ps", "-aq", "--filter", f"label={label}") | _docker_lines(
        "network", "ls", "-q", "--filter", f"label={label}"
    )


def _dangling() -> set[str]:
    return _docker_lines("volume", "ls", "-q", "--filter", "dangling=true")


@dataclass
class Env:
    """One case's proxy, work dir, temp dir and the dangling volumes before it."""

    proxy: FaultProxy
    work: Path
    tmp: Path
    volumes_before: set[str]
    #: Off for the archive cases: as root on a local engine, training reads its outputs from binds, with no
    #: archive call for a fault to hit (processing always makes one).
    bind_outputs: bool = True

    def config(self) -> EmulatorConfig:
        return EmulatorConfig(
            docker_host=self.proxy.url,
            bind_outputs=self.bind_outputs,
            work_dir=str(self.work),
            training_stop_grace_s=1.0,
            serving_stop_grace_s=1.0,
            startup_timeout_s=60.0,
            stream_logs=False,
        )

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_EMULATOR_")}
        env.update(
            DOCKER_HOST=self.proxy.url,
            SM_EMULATOR_WORK_DIR=str(self.work),
            SM_EMULATOR_SERVING_STOP_GRACE_S="1",
            SM_EMULATOR_TRAINING_STOP_GRACE_S="1",
            TMPDIR=str(self.tmp),
            PYTHONPATH=str(REPO),
            SM_EMULATOR_BIND_OUTPUTS="1" if self.bind_outputs else "0",
        )
        env.pop("AWS_ENDPOINT_URL_S3", None)
        return env

    def assert_no_temp_dirs(self) -> None:
        left = [p.name for p in (*self.work.iterdir(), *self.tmp.iterdir()) if p.name.startswith("sm-emulator-")]
        assert not left, f"temp folders left behind: {left}"

    def assert_nothing_left(self, label: str) -> None:
        assert not _labelled(label), f"Docker resources labelled {label} are left"
        new = _dangling() - self.volumes_before
        if new:  # another test of this machine may remove a container right now: look again
            time.sleep(1.0)
            new &= _dangling()
        assert not new, f"anonymous volumes left behind: {sorted(new)}"


@pytest.fixture
def env(docker_available: str, tmp_path: Path) -> Iterator[Env]:
    if not docker_available.startswith("unix://") or not Path(docker_available[7:]).exists():
        pytest.skip("the fault proxy needs the engine on a unix socket")
    (tmp_path / "work").mkdir()
    (tmp_path / "tmp").mkdir()
    with FaultProxy(tmp_path / "docker.sock", upstream=docker_available[7:]) as proxy:
        yield Env(proxy, tmp_path / "work", tmp_path / "tmp", _dangling())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fault-inputs")
    (root / "train").mkdir()
    (root / "train" / "data.csv").write_text("1,2\n3,4\n")
    (root / "batch").mkdir()
    (root / "batch" / "a.csv").write_text("1,2\n3,4\n")
    (root / "model").mkdir()
    (root / "model" / "weights.txt").write_text("w\n")
    return {p.name: p for p in root.iterdir()}


# -- the CLI ---------------------------------------------------------------------------------------------------
def _cli_args(kind: str, images: dict[str, str], inputs: dict[str, Path], out: Path) -> list[str]:
    probe_env = ["--env", "PROBE_SLEEP_S=2", "--env", "PROBE_RESOLVE_S=0", "--env", "PROBE_PRINT=hello"]
    # A stop that takes a moment, so that a fault can cut its wait.
    recorder_env = ["--env", "RECORDER_TERM_DELAY_S=0.5"]
    if kind == "training":
        return [
            "train", "--image", images["probe"], "--channel", f"train={inputs['train']}", "--output", str(out),
            "--instance-count", "2", *probe_env, "-q",
        ]  # fmt: skip
    if kind == "processing":
        return [
            "process", "--image", images["probe"], "--entrypoint", "probe", "--instance-count", "2",
            "--input", f"data={inputs['train']}:/opt/ml/processing/input",
            "--output", f"out=/opt/ml/processing/output:{out}", *probe_env, "-q",
        ]  # fmt: skip
    if kind == "transform":
        return [
            "transform", "--image", images["recorder"], "--model-data", str(inputs["model"]),
            "--input", str(inputs["batch"]), "--output", str(out), "--content-type", "text/csv", *recorder_env, "-q",
        ]  # fmt: skip
    return ["serve", "--image", images["recorder"], "--model-data", str(inputs["model"]), *recorder_env, "-q"]


def _run_cli(env: Env, args: list[str], serve: bool) -> tuple[int, str, int]:
    """Run the CLI to its end; ``serve`` is interrupted (SIGINT) once InService. (code, stderr, pid)"""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        env=env.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if serve:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the JSON line once InService, or "" when it ended before
            if line:
                json.loads(line)
                proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err, proc.pid


@pytest.mark.parametrize(("kind", "point", "flavour"), CASES, ids=[f"{k}-{p}-{f}" for k, p, f in CASES])
def test_cli_exits_3_and_leaves_nothing(
    env: Env,
    kind: str,
    point: str,
    flavour: str,
    probe_image: str,
    recorder_image: str,
    inputs: dict[str, Path],
    emulator_pids: set[int],
    tmp_path: Path,
) -> None:
    env.bind_outputs = point != "archive"
    fault = env.proxy.inject(_fault(point, flavour))
    args = _cli_args(kind, {"probe": probe_image, "recorder": recorder_image}, inputs, tmp_path / "out")
    code, err, pid = _run_cli(env, args, serve=kind == "serve")
    emulator_pids.add(pid)

    assert fault.fired, f"the {point} fault was never hit: {[c.path for c in env.proxy.calls][-10:]}"
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 3, f"exit {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(errors) == 1, err
    assert "Docker engine" in errors[0], errors[0]
    assert "python -m emulator cleanup" in errors[0], errors[0]
    env.assert_no_temp_dirs()  # removed by the process itself, engine or no engine

    env.proxy.heal()
    swept = subprocess.run(
        [sys.executable, "-m", "emulator", "cleanup"],
        env=env.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert swept.returncode == 0, swept.stderr
    if flavour == "outage" and point == "remove":
        assert "removed container" in swept.stdout, swept.stdout  # nothing could be removed before the heal
    env.assert_nothing_left(f"{LABEL_PID}={pid}")


# -- the Python API --------------------------------------------------------------------------------------------
def _api_job(kind: str, images: dict[str, str], inputs: dict[str, Path], out: Path, config: EmulatorConfig) -> Any:
    probe_env = {"PROBE_SLEEP_S": "1", "PROBE_RESOLVE_S": "0", "PROBE_PRINT": "hello"}
    if kind == "training":
        return TrainingJob(
            {
                "AlgorithmSpecification": {"TrainingImage": images["probe"], "TrainingInputMode": "File"},
                "InputDataConfig": [
                    {
                        "ChannelName": "train",
                        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(inputs["train"])}},
                    }
                ],
                "OutputDataConfig": {"S3OutputPath": str(out)},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
                "Environment": probe_env,
            },
            config=config,
        )
    if kind == "processing":
        return ProcessingJob(
            {
                "AppSpecification": {"ImageUri": images["probe"], "ContainerEntrypoint": ["probe"]},
                "ProcessingResources": {
                    "ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1}
                },
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "out",
                            "S3Output": {
                                "S3Uri": str(out),
                                "LocalPath": "/opt/ml/processing/output",
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                    ]
                },
                "Environment": probe_env,
            },
            config=config,
        )
    if kind == "transform":
        return TransformJob(
            {
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(inputs["batch"])}},
                    "ContentType": "text/csv",
                },
                "TransformOutput": {"S3OutputPath": str(out)},
                "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            },
            image=images["recorder"],
            model_data=str(inputs["model"]),
            config=config,
        )
    return Endpoint(images["recorder"], model_data=str(inputs["model"]), config=config)


def _run_api(job: Any) -> None:
    """Run a job to its end, or start an endpoint and close it (its stop waits and removes)."""
    if isinstance(job, Endpoint):
        with job:
            job.close()
    else:
        job.run()


@pytest.mark.parametrize(("kind", "point"), [(k, p) for k, p, f in CASES if f == "outage"])
def test_api_raises_docker_unavailable_and_leaves_nothing(
    env: Env,
    kind: str,
    point: str,
    probe_image: str,
    recorder_image: str,
    inputs: dict[str, Path],
    tmp_path: Path,
) -> None:
    env.bind_outputs = point != "archive"
    fault = env.proxy.inject(_fault(point, "outage"))
    job = _api_job(kind, {"probe": probe_image, "recorder": recorder_image}, inputs, tmp_path / "out", env.config())
    with pytest.raises(DockerUnavailable) as raised:
        _run_api(job)
    assert fault.fired
    assert "\n" not in str(raised.value)
    assert "python -m emulator cleanup" in str(raised.value)
    d = job.describe()
    if isinstance(job, Endpoint):
        assert d["EndpointStatus"] == "Failed"
        assert d["FailureReason"]
    elif kind != "transform":  # a transform job's Describe is left InProgress: wait() raises (documented)
        status = next(v for k, v in d.items() if k.endswith("JobStatus"))
        assert status == "Failed", d
        assert "Docker engine" in d["FailureReason"], d
    env.assert_no_temp_dirs()

    env.proxy.heal()
    sweep(env.config(), session_id=_session.SESSION_ID, docker=DockerClient(env.config()))
    env.assert_nothing_left(f"{LABEL_SESSION}={_session.SESSION_ID}")


# -- a killed CLI (issue 12, point 6) ---------------------------------------------------------------------------
def test_cleanup_removes_what_a_killed_cli_left(
    env: Env, probe_image: str, inputs: dict[str, Path], emulator_pids: set[int], tmp_path: Path
) -> None:
    args = [
        "train", "--image", probe_image, "--channel", f"train={inputs['train']}", "--output", str(tmp_path / "out"),
        "--env", "PROBE_SLEEP_S=120", "--env", "PROBE_RESOLVE_S=0", "-q",
    ]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "emulator", *args], env=env.cli_env(), stderr=subprocess.PIPE)
    emulator_pids.add(proc.pid)
    label = f"{LABEL_PID}={proc.pid}"
    try:
        deadline = time.monotonic() + 60
        while not (_labelled(label) and list(env.work.glob(f"sm-emulator-training-p{proc.pid}-*"))):
            assert proc.poll() is None, "the CLI ended before it was killed"
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.1)
    finally:
        proc.kill()  # SIGKILL: no atexit hook, no finally
        proc.communicate()
    assert list(env.work.glob(f"sm-emulator-training-p{proc.pid}-*"))
    assert _labelled(label)

    swept = subprocess.run(
        [sys.executable, "-m", "emulator", "cleanup"], env=env.cli_env(), capture_output=True, text=True, timeout=120
    )
    assert swept.returncode == 0, swept.stderr
    assert "removed folder" in swept.stdout, swept.stdout
    assert "removed container" in swept.stdout, swept.stdout
    env.assert_no_temp_dirs()
    env.assert_nothing_left(label)


# -- pipelines ----------------------------------------------------------------------------------------------------
PIPELINE_POINTS = ("create", "start", "logs", "wait", "archive", "remove")


def _pipeline_definition(image: str, out: Path) -> dict[str, Any]:
    return {
        "Version": "2020-12-01",
        "Parameters": [],
        "Steps": [
            {
                "Name": "Probe",
                "Type": "Processing",
                "Arguments": {
                    "RoleArn": "arn:aws:iam::000000000000:role/SageMakerEmulator",
                    "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": ["probe"]},
                    "ProcessingResources": {
                        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
                    },
                    "Environment": {"PROBE_SLEEP_S": "2", "PROBE_PRINT": "hello"},
                    "ProcessingOutputConfig": {
                        "Outputs": [
                            {
                                "OutputName": "out",
                                "S3Output": {
                                    "S3Uri": str(out),
                                    "LocalPath": "/opt/ml/processing/output",
                                    "S3UploadMode": "EndOfJob",
                                },
                            }
                        ]
                    },
                },
            }
        ],
    }


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("point", PIPELINE_POINTS)
def test_pipeline_under_a_fault_leaves_nothing(
    env: Env, point: str, flavour: str, probe_image: str, emulator_pids: set[int], tmp_path: Path
) -> None:
    definition = tmp_path / "pipeline.json"
    definition.write_text(json.dumps(_pipeline_definition(probe_image, tmp_path / "out")))
    fault = env.proxy.inject(_fault(point, flavour))
    code, err, pid = _run_cli(env, ["pipeline", "run", str(definition)], serve=False)
    emulator_pids.add(pid)

    assert fault.fired
    assert "Traceback" not in err, err
    env.assert_no_temp_dirs()
    env.proxy.heal()
    swept = subprocess.run(
        [sys.executable, "-m", "emulator", "cleanup"], env=env.cli_env(), capture_output=True, text=True, timeout=120
    )
    assert swept.returncode == 0, swept.stderr
    env.assert_nothing_left(f"{LABEL_PID}={pid}")
    assert code == 3, err  # the execution ends Failed and re-raises the engine fault its step met
