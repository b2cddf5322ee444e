"""Pipelines on the real Docker engine: the sample pipeline from the CLI, parallel branches, failures.

The sample pipeline (sample_algorithm/pipeline.yaml) runs end to end in a subprocess, with local paths
and with s3:// on a moto server; small probe-image pipelines run in-process to check the scheduling
facts (independent steps overlap in time; a failure stops its dependants only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.pipelines import PipelineExecution

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PIPELINE = REPO / "sample_algorithm" / "pipeline.yaml"


def emulator_command() -> list[str]:
    return [sys.executable, "-m", "emulator"]


@pytest.fixture
def run_cli(emulator_pids: set[int], fast_config: EmulatorConfig, tmp_path: Path) -> Any:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SM_EMULATOR_WORK_DIR": str(fast_config.work_dir)}
        proc = subprocess.Popen(
            [*emulator_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        emulator_pids.add(proc.pid)
        try:
            out, err = proc.communicate(timeout=600)
        finally:
            proc.kill()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    return run


def run_sample_pipeline(run_cli: Any, input_data: str, output_prefix: str, *extra: str) -> Any:
    """``pipeline run sample_algorithm/pipeline.yaml`` with its InputData and OutputPrefix, then ``extra``."""
    return run_cli(
        "pipeline",
        "run",
        str(SAMPLE_PIPELINE),
        "--param",
        f"InputData={input_data}",
        "--param",
        f"OutputPrefix={output_prefix}",
        *extra,
    )


def test_sample_pipeline_end_to_end(run_cli: Any, iris_csv: Path, tmp_path: Path) -> None:
    result = run_sample_pipeline(run_cli, str(iris_csv), str(tmp_path / "out"), "--stop-grace", "2", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    steps = {s["StepName"]: s["StepStatus"] for s in report["PipelineExecutionSteps"]}
    assert steps == {
        "Preprocess": "Succeeded",
        "Train": "Succeeded",
        "Evaluate": "Succeeded",
        "CheckAccuracy": "Succeeded",
        "IrisModel-CreateModel": "Succeeded",
        "BatchTransform": "Succeeded",
        "AccuracyTooLow": "NotExecuted",
    }
    execution_id = report["PipelineExecution"]["PipelineExecutionArn"].rsplit("/", 1)[-1]
    base = tmp_path / "out" / execution_id
    test_rows = (base / "preprocess" / "test" / "test.csv").read_text().splitlines()
    outputs = list((base / "transform").rglob("*.out"))
    assert len(outputs) == 1
    lines = outputs[0].read_text().splitlines()
    assert len(lines) == len(test_rows) == 30
    # JoinSource=Input: the whole input row (label first), then the 3 class probabilities.
    assert [line.split(",")[:5] for line in lines] == [row.split(",") for row in test_rows]
    assert all(len(line.split(",")) == 8 for line in lines)
    jobs = report["StepResults"]
    assert jobs["Train"]["TrainingJobName"].startswith(f"pipelines-{execution_id}-Train-")
    accuracy = json.loads((base / "evaluation" / "evaluation.json").read_text())["metrics"]["accuracy"]["value"]
    assert accuracy >= 0.8


def test_sample_pipeline_else_branch_fails_with_the_message(run_cli: Any, iris_csv: Path, tmp_path: Path) -> None:
    result = run_sample_pipeline(run_cli, str(iris_csv), str(tmp_path / "out"), "--param", "AccuracyThreshold=1.1")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "AccuracyTooLow            Fail        Failed" in result.stderr
    assert "IrisModel-CreateModel     Model       NotExecuted" in result.stderr
    reason = next(line for line in result.stdout.splitlines() if line.startswith("reason"))
    assert "step AccuracyTooLow (Fail) failed: model accuracy 0.9" in reason
    assert reason.endswith("is below the threshold 1.1")
    assert not list((tmp_path / "out").glob("*/transform"))


def test_sample_pipeline_with_s3(run_cli: Any, iris_csv: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        s3.create_bucket(Bucket="iris")
        s3.upload_file(str(iris_csv), "iris", "raw/iris.csv")
        result = run_sample_pipeline(
            run_cli, "s3://iris/raw/iris.csv", "s3://iris/runs", "--s3-endpoint", endpoint, "--json"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="iris", Prefix="runs/")["Contents"]]
        assert any(k.endswith("/evaluation/evaluation.json") for k in keys)
        assert any(k.endswith("/model.tar.gz") for k in keys)
        out = next(k for k in keys if k.endswith(".out"))
        assert len(s3.get_object(Bucket="iris", Key=out)["Body"].read().decode().splitlines()) == 30
    finally:
        server.stop()


def probe_step(name: str, probe_image: str, env: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": probe_image, "ContainerEntrypoint": ["probe"]},
            "Environment": env,
        },
        **extra,
    }


def test_independent_steps_overlap_in_time(probe_image: str, fast_config: EmulatorConfig) -> None:
    definition = {
        "Version": "2020-12-01",
        "Steps": [
            probe_step("Left", probe_image, {"PROBE_SLEEP_S": "2"}),
            probe_step("Right", probe_image, {"PROBE_SLEEP_S": "2"}),
        ],
    }
    execution = PipelineExecution(definition, config=fast_config.with_(stream_logs=False))
    execution.run()
    results = execution.step_results()
    left = (results["Left"]["ProcessingStartTime"], results["Left"]["ProcessingEndTime"])
    right = (results["Right"]["ProcessingStartTime"], results["Right"]["ProcessingEndTime"])
    # Both containers were running at the same moment: each started before the other ended.
    assert left[0] < right[1]
    assert right[0] < left[1]


def test_a_failed_step_stops_its_dependants(probe_image: str, fast_config: EmulatorConfig) -> None:
    definition = {
        "Version": "2020-12-01",
        "Steps": [
            probe_step("Broken", probe_image, {"PROBE_EXIT_CODE": "3"}),
            probe_step("After", probe_image, {}, DependsOn=["Broken"]),
            probe_step("Aside", probe_image, {}),
        ],
    }
    execution = PipelineExecution(definition, config=fast_config.with_(stream_logs=False))
    described = execution.run()
    assert {n: s.status for n, s in execution.states.items()} == {
        "Broken": "Failed",
        "After": "NotExecuted",
        "Aside": "Succeeded",
    }
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == (
        "step Broken (Processing) failed: AlgorithmError: See job logs for more information, exit code: 3"
    )
    assert execution.states["After"].note == "upstream step Broken failed"


def test_sdk_built_definition_runs(
    sample_image: str, iris_csv: Path, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    pytest.importorskip("sagemaker", reason="the SageMaker SDK is not installed (sample_algorithm/make_pipeline.py)")
    sys.path.insert(0, str(REPO / "sample_algorithm"))
    try:
        import make_pipeline
    finally:
        sys.path.remove(str(REPO / "sample_algorithm"))
    execution = PipelineExecution(
        make_pipeline.definition(),
        config=fast_config.with_(stream_logs=False),
        parameters={"InputData": str(iris_csv), "OutputPrefix": str(tmp_path / "sdk")},
    )
    assert execution.run()["PipelineExecutionStatus"] == "Succeeded"
