"""ProcessingJob on the real Docker engine: the sample algorithm's ``processing`` and the probe image.

Local paths and s3:// (a moto server on 127.0.0.1) as inputs and outputs; a non-UTF-8 message; a job that
outlives MaxRuntimeInSeconds. Every container is removed (the session-end check in tests/conftest.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.processing import ProcessingJob
from emulator.storage.s3 import S3

pytestmark = pytest.mark.docker


@pytest.fixture
def config(fast_config: EmulatorConfig) -> EmulatorConfig:
    return fast_config.with_(stream_logs=False)


def output(name: str, destination: Path | str, local: str | None = None) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {
            "S3Uri": str(destination),
            "LocalPath": local or f"/opt/ml/processing/output/{name}",
            "S3UploadMode": "EndOfJob",
        },
    }


def s3_input(name: str, source: Path | str, local: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": str(source),
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def split_request(image: str, source: str, destination: str) -> dict[str, Any]:
    return {
        "AppSpecification": {
            "ImageUri": image,
            "ContainerEntrypoint": ["processing"],
            "ContainerArguments": ["--test-fraction", "0.2", "--seed", "1"],
        },
        "ProcessingInputs": [s3_input("raw", source, "/opt/ml/processing/input/raw")],
        "ProcessingOutputConfig": {
            "Outputs": [output("train", f"{destination}/train"), output("test", f"{destination}/test")]
        },
    }


def test_sample_processing_with_local_paths(
    sample_image: str, iris_csv: Path, config: EmulatorConfig, tmp_path: Path
) -> None:
    result = ProcessingJob(split_request(sample_image, str(iris_csv), str(tmp_path)), config=config).run()
    assert result["ProcessingJobStatus"] == "Completed", result.get("FailureReason")
    assert len((tmp_path / "train" / "train.csv").read_text().splitlines()) == 120
    assert len((tmp_path / "test" / "test.csv").read_text().splitlines()) == 30
    assert result["ProcessingEndTime"] >= result["ProcessingStartTime"]


def test_sample_processing_with_s3(sample_image: str, iris_csv: Path, config: EmulatorConfig) -> None:
    with S3(config) as s3:
        s3.client.create_bucket(Bucket="iris")
        s3.upload_file(iris_csv, "s3://iris/raw/iris.csv")
        req = split_request(sample_image, "s3://iris/raw", "s3://iris/split")
        result = ProcessingJob(req, config=config, s3=s3).run()
        assert result["ProcessingJobStatus"] == "Completed", result.get("FailureReason")
        keys = {key for key, _ in s3.list_keys("s3://iris/split/")}
        assert keys == {"split/train/train.csv", "split/test/test.csv"}
        assert len(s3.read_bytes("s3://iris/split/test/test.csv").decode().splitlines()) == 30


def test_sample_processing_failure_reports_the_message(
    sample_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no csv here")
    req = split_request(sample_image, str(tmp_path / "empty"), str(tmp_path / "out"))
    result = ProcessingJob(req, config=config).run()
    assert result["ProcessingJobStatus"] == "Failed"
    assert result["FailureReason"] == "AlgorithmError: See job logs for more information, exit code: 1"
    assert "no .csv file under /opt/ml/processing/input/raw" in result["ExitMessage"]


def probe_view(
    probe_image: str, config: EmulatorConfig, tmp_path: Path, **app: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the probe as a processing job; its record of the container comes back through an output."""
    copy = "probe; cp /opt/ml/model/probe.json /opt/ml/processing/view/probe.json"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.txt").write_text("hello")
    req = {
        "ProcessingJobName": "probe-view",
        "AppSpecification": {"ImageUri": probe_image, "ContainerEntrypoint": ["sh", "-c", copy], **app},
        "Environment": {"MODE": "view"},
        "ProcessingInputs": [s3_input("in", tmp_path / "in", "/opt/ml/processing/input/in")],
        "ProcessingOutputConfig": {"Outputs": [output("view", tmp_path / "view", "/opt/ml/processing/view")]},
    }
    result = ProcessingJob(req, config=config).run()
    return result, json.loads((tmp_path / "view" / "probe.json").read_text())


def test_probe_sees_the_processing_tree(probe_image: str, config: EmulatorConfig, tmp_path: Path) -> None:
    result, record = probe_view(probe_image, config, tmp_path)
    assert result["ProcessingJobStatus"] == "Completed", result.get("FailureReason")
    tree = record["tree"]
    job = json.loads(tree["/opt/ml/config/processingjobconfig.json"]["json_text"])
    assert job["ProcessingJobName"] == "probe-view"
    assert job["Environment"] == {"MODE": "view"}
    resource = json.loads(tree["/opt/ml/config/resourceconfig.json"]["json_text"])
    assert resource["current_host"] == "algo-1"
    assert resource["hosts"] == ["algo-1"]
    assert "/opt/ml/processing/view/" in tree  # created before the entrypoint ran
    assert tree["/opt/ml/processing/input/in/data.txt"] == {"size": 5}
    assert "/opt/ml/input/config/" not in tree
    assert record["env"]["MODE"] == "view"
    assert record["env"]["AWS_REGION"] == config.region


def test_container_arguments_alone_replace_the_command(
    probe_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    # The probe image has no ENTRYPOINT, so ContainerArguments alone are the whole command line.
    req = {
        "AppSpecification": {"ImageUri": probe_image, "ContainerArguments": ["probe", "one", "two"]},
        "Environment": {"PROBE_EXIT_CODE": "7"},
    }
    result = ProcessingJob(req, config=config).run()
    assert result["ProcessingJobStatus"] == "Failed"
    assert result["FailureReason"].endswith("exit code: 7")


def test_non_utf8_message_fails_the_job(probe_image: str, config: EmulatorConfig) -> None:
    write = "open('/opt/ml/output/message', 'wb').write(b'\\xff\\xfe not utf-8')"
    req = {"AppSpecification": {"ImageUri": probe_image, "ContainerEntrypoint": ["python3", "-c", write]}}
    result = ProcessingJob(req, config=config).run()
    assert result["ProcessingJobStatus"] == "Failed"
    assert result["FailureReason"].startswith("ClientError:")


def test_max_runtime_stops_the_job(probe_image: str, config: EmulatorConfig) -> None:
    req = {
        "AppSpecification": {"ImageUri": probe_image, "ContainerEntrypoint": ["probe"]},
        "Environment": {"PROBE_SLEEP_S": "60"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 2},
    }
    start = time.monotonic()
    result = ProcessingJob(req, config=config).run()
    assert result["ProcessingJobStatus"] == "Stopped"
    assert result["FailureReason"] == "Processing job exceeded MaxRuntimeInSeconds"
    assert time.monotonic() - start < 30
