"""Plans and Describe results are pure: checked here without any engine, real or fake."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import constants
from emulator.config import EmulatorConfig
from emulator.errors import InvalidSpec
from emulator.processing import describe as processing_describe
from emulator.processing import plan as processing_plan
from emulator.runtime.cluster import HostOutcome, Outcome
from emulator.runtime.runner import RunResult
from emulator.training import describe as training_describe
from emulator.training import plan as training_plan
from emulator.training.plan import TrainingOptions

CONFIG = EmulatorConfig(training_stop_grace_s=7.0)


def training_request(**changes: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "TrainingJobName": "plan-job",
        "AlgorithmSpecification": {"TrainingImage": "algo:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}}}
        ],
        "HyperParameters": {"depth": "3"},
    }
    req.update(changes)
    return req


def config_file(spec_files: dict[str, bytes], name: str) -> Any:
    return json.loads(spec_files[f"{constants.INPUT_CONFIG_DIR}/{name}"])


def test_training_plan_applies_defaults_once_and_names_every_host() -> None:
    plan = training_plan.plan(training_request(ResourceConfig={"InstanceCount": 2}), CONFIG)
    assert plan.host_names == ["algo-1", "algo-2"]
    assert plan.request["ResourceConfig"]["InstanceType"] == constants.DEFAULT_INSTANCE_TYPE
    assert plan.max_runtime_s == constants.DEFAULT_MAX_RUNTIME_S
    assert plan.stop_grace_s == 7.0
    assert plan.private_network  # two hosts resolve each other on a network of their own
    for i, host in enumerate(plan.hosts):
        rc = config_file(host.spec.files, constants.RESOURCE_CONFIG_FILE)
        assert rc["current_host"] == f"algo-{i + 1}"
        assert rc["hosts"] == ["algo-1", "algo-2"]
        assert host.spec.network_aliases == [host.name]
        assert host.spec.command == ["train"]
        assert host.spec.entrypoint is None
        assert config_file(host.spec.files, constants.HYPERPARAMETERS_FILE) == {"depth": "3"}
    assert [(d.uri, d.container_path) for d in plan.inputs] == [("s3://b/t", "/opt/ml/input/data/train")]


def test_training_plan_exports_model_and_output_under_the_job_name() -> None:
    plan = training_plan.plan(training_request(), CONFIG)
    exports = {e.name: (e.container_path, e.destination, e.form, e.always) for e in plan.exports}
    assert exports == {
        "model": ("/opt/ml/model", "s3://bucket/out/plan-job/output/model.tar.gz", "tar.gz", True),
        "output": ("/opt/ml/output/data", "s3://bucket/out/plan-job/output/output.tar.gz", "tar.gz", False),
    }
    assert plan.reads == ()
    assert plan.failure_reads == (constants.FAILURE_FILE,)  # read only when the job did not succeed


def test_training_plan_uncompressed_output_and_checkpoints() -> None:
    plan = training_plan.plan(
        training_request(
            OutputDataConfig={"S3OutputPath": "s3://bucket/out", "CompressionType": "NONE"},
            CheckpointConfig={"S3Uri": "s3://bucket/ckpt"},
        ),
        CONFIG,
    )
    model = next(e for e in plan.exports if e.name == "model")
    assert (model.destination.rsplit("/", 1)[-1], model.form) == ("model.tar", "tar")
    assert [(s.location, s.container_path) for s in plan.seeds] == [("s3://bucket/ckpt", "/opt/ml/checkpoints")]
    # Synced while the job runs and at its end, not exported once.
    assert [(s.container_path, s.location) for s in plan.syncs] == [("/opt/ml/checkpoints", "s3://bucket/ckpt")]
    assert all(e.name != "checkpoints" for e in plan.exports)


def test_training_plan_entrypoint_override_and_isolation() -> None:
    algo = {"TrainingImage": "algo:1", "ContainerEntrypoint": ["python", "t.py"], "ContainerArguments": ["--x"]}
    plan = training_plan.plan(training_request(AlgorithmSpecification=algo, EnableNetworkIsolation=True), CONFIG)
    spec = plan.hosts[0].spec
    assert (spec.entrypoint, spec.command) == (["python", "t.py"], ["--x"])
    assert spec.network == "none"
    assert "AWS_REGION" not in spec.environment
    assert spec.extra_hosts == {"algo-1": "127.0.0.1"}  # the host still resolves its own name


def test_training_plan_options_rename_hosts() -> None:
    options = TrainingOptions(host_names=["a", "b"], container_hostnames=["ip-1", "ip-2"])
    plan = training_plan.plan(training_request(ResourceConfig={"InstanceCount": 2}), CONFIG, options)
    assert plan.host_names == ["a", "b"]
    assert [h.spec.hostname for h in plan.hosts] == ["ip-1", "ip-2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"AlgorithmSpecification": {"TrainingImage": "a", "MetricDefinitions": [{"Name": "m", "Regex": "("}]}},
            "Regex",
        ),
        ({"InputDataConfig": training_request()["InputDataConfig"] * 2}, "unique"),
    ],
)
def test_training_plan_refuses_what_cannot_run(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        training_plan.plan(training_request(**change), CONFIG)


def processing_request() -> dict[str, Any]:
    return {
        "ProcessingJobName": "proc",
        "AppSpecification": {"ImageUri": "proc:1", "ContainerEntrypoint": ["processing"]},
        "ProcessingInputs": [
            {"InputName": "raw", "S3Input": {"S3Uri": "/data/raw", "LocalPath": "/opt/ml/processing/input"}}
        ],
        "ProcessingOutputConfig": {
            "Outputs": [{"OutputName": "o", "S3Output": {"S3Uri": "s3://b/o", "LocalPath": "/opt/ml/processing/o"}}]
        },
    }


def test_processing_plan_mounts_inputs_and_exports_outputs() -> None:
    plan = processing_plan.plan(processing_request(), CONFIG)
    spec = plan.hosts[0].spec
    assert (spec.entrypoint, spec.command) == (["processing"], [])  # an entrypoint override drops CMD
    assert [(d.uri, d.container_path) for d in plan.inputs] == [("/data/raw", "/opt/ml/processing/input")]
    assert [(e.container_path, e.destination, e.form) for e in plan.exports] == [
        ("/opt/ml/processing/o", "s3://b/o", "tree")
    ]
    job_config = json.loads(spec.files[f"{constants.PROCESSING_CONFIG_DIR}/{constants.PROCESSING_JOB_CONFIG_FILE}"])
    assert job_config["ProcessingJobName"] == "proc"
    assert "/opt/ml/processing/o" in spec.dirs


def test_processing_plan_refuses_a_local_path_outside_opt_ml_processing() -> None:
    req = processing_request()
    req["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/data"
    with pytest.raises(InvalidSpec, match="/opt/ml/processing/"):
        processing_plan.plan(req, CONFIG)


def result(
    *codes: int | None, stopped: str | None = None, files: list[dict[str, bytes | None]] | None = None
) -> RunResult:
    hosts = [HostOutcome(f"algo-{i + 1}", f"c{i}", code) for i, code in enumerate(codes)]
    outcome = Outcome(hosts, stopped_reason=stopped, start_time=100.0, end_time=103.4)
    failed = next((h for h in hosts if h.exit_code not in (0, None)), None)
    outcome.failed_first = failed
    return RunResult(outcome, {"model": "s3://b/m.tar.gz"}, files or [{} for _ in codes])


def test_training_describe_from_outcomes() -> None:
    assert training_describe.end_status(result(0, 0))[:2] == ("Completed", "Completed")
    assert training_describe.end_status(result(None, stopped="MaxRuntimeExceeded"))[:2] == (
        "Stopped",
        "MaxRuntimeExceeded",
    )
    failed = result(0, 3, files=[{}, {constants.FAILURE_FILE: b"bad hyperparameter: depth"}])
    assert training_describe.end_status(failed) == (
        "Failed",
        "Failed",
        "Training job failed",
        "bad hyperparameter: depth",
    )
    assert training_describe.failure_reason(result(2)) == "AlgorithmError: , exit code: 2"
    plan = training_plan.plan(training_request(), CONFIG)
    fields = training_describe.result_fields(plan, result(0))
    assert fields["ModelArtifacts"] == {"S3ModelArtifacts": "s3://b/m.tar.gz"}
    assert fields["TrainingTimeInSeconds"] == fields["BillableTimeInSeconds"] == 3


def test_processing_describe_from_outcomes() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    ok = processing_describe.final(result(0, files=[{constants.MESSAGE_FILE: b"done"}]), now)
    assert (ok["ProcessingJobStatus"], ok["ExitMessage"]) == ("Completed", "done")
    bad = processing_describe.final(result(0, files=[{constants.MESSAGE_FILE: b"\xff\xfe"}]), now)
    assert bad["ProcessingJobStatus"] == "Failed"
    assert "UTF-8" in bad["FailureReason"]
    failed = processing_describe.final(result(4), now)
    assert failed["FailureReason"].endswith("exit code: 4")
