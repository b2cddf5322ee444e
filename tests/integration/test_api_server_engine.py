"""The API server on the real engine with the sample image, driven only through boto3 clients.

One server for the module: raw iris CSV into S3 (moto, through the server) -> a processing job splits it -> a
training job fits the model (its logs read back through the logs client) -> model, endpoint config, endpoint,
InvokeEndpoint (and a ModelError) -> a batch transform -> the sample pipeline. Then: Stop of a running job, and
no container with the emulator's labels left, also after ``server.stop()`` while an endpoint is InService.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
import yaml

from emulator.api.server import ApiServer
from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_MANAGED, LABEL_SESSION
from emulator.runtime import session as _session

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BUCKET = "api-integration"
ROLE = "arn:aws:iam::123456789012:role/Emulator"
TIMEOUT_S = 300.0


def _client(server: ApiServer, service: str) -> Any:
    session: Any = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def our_containers(job: str | None = None) -> list[str]:
    """Containers with the emulator's labels that this test session created (of one job, if named)."""
    label = ["--filter", f"label={LABEL_JOB}={job}"] if job else []
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={LABEL_MANAGED}",
            "--filter",
            f"label={LABEL_SESSION}={_session.SESSION_ID}",
            *label,
            "--format",
            "{{.ID}} {{.Names}} {{.Status}}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.split("\n")[:-1]


def wait_for(describe: Callable[[], dict[str, Any]], field: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        answer = describe()
        if answer.get(field) in wanted:
            return answer
        assert time.monotonic() < deadline, f"{field} never became one of {sorted(wanted)}; last answer: {answer}"
        time.sleep(0.5)


class Api:
    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.sm = _client(server, "sagemaker")
        self.runtime = _client(server, "sagemaker-runtime")
        self.s3 = _client(server, "s3")
        self.logs = _client(server, "logs")


def serve(api: Api, model: str, config_name: str, endpoint: str) -> None:
    """An endpoint config of one variant for ``model`` and an endpoint on it, InService."""
    api.sm.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    api.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
    up = wait_for(lambda: api.sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus", {"InService", "Failed"})
    assert up["EndpointStatus"] == "InService", up


def delete_endpoint(api: Api, endpoint: str) -> None:
    """DeleteEndpoint, and its containers gone within a minute."""
    api.sm.delete_endpoint(EndpointName=endpoint)
    deadline = time.monotonic() + 60
    while our_containers(endpoint) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not our_containers(endpoint), our_containers()


@pytest.fixture(scope="module")
def api(fast_config: EmulatorConfig, sample_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    state = tmp_path_factory.mktemp("api-state")
    with ApiServer(port=0, state_dir=state, config=fast_config.with_(stream_logs=False)) as server:
        api = Api(server)
        api.s3.create_bucket(Bucket=BUCKET)
        yield api
    assert our_containers() == [], "the API server's stop left containers behind"


@pytest.fixture(scope="module")
def raw_uri(api: Api, iris_csv: Path) -> str:
    api.s3.put_object(Bucket=BUCKET, Key="raw/iris.csv", Body=iris_csv.read_bytes())
    return f"s3://{BUCKET}/raw"


@pytest.fixture(scope="module")
def splits(api: Api, raw_uri: str, sample_image: str) -> str:
    """A processing job (through the API) splits the raw CSV into s3://.../splits/{train,test}."""
    name = f"split-{uuid.uuid4().hex[:8]}"
    out = f"s3://{BUCKET}/{name}"
    api.sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": sample_image,
            "ContainerEntrypoint": ["processing"],
            "ContainerArguments": ["--test-fraction", "0.2", "--seed", "0"],
        },
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        ProcessingInputs=[
            {"InputName": "raw", "S3Input": _s3_input(raw_uri, "/opt/ml/processing/input/raw")},
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {"OutputName": s, "S3Output": _s3_output(f"{out}/{s}", f"/opt/ml/processing/output/{s}")}
                for s in ("train", "test")
            ]
        },
    )
    done = wait_for(
        lambda: api.sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", {"Completed", "Failed"}
    )
    assert done["ProcessingJobStatus"] == "Completed", done
    return out


def _s3_input(uri: str, local: str) -> dict[str, str]:
    return {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"}


def _s3_output(uri: str, local: str) -> dict[str, str]:
    return {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}


@pytest.fixture(scope="module")
def trained(api: Api, splits: str, sample_image: str) -> dict[str, Any]:
    """A training job through the API, Completed."""
    name = f"train-{uuid.uuid4().hex[:8]}"

    def channel(c: str, split: str) -> dict[str, Any]:
        source = {"S3DataType": "S3Prefix", "S3Uri": f"{splits}/{split}", "S3DataDistributionType": "FullyReplicated"}
        return {"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": source}}

    api.sm.create_training_job(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": sample_image, "TrainingInputMode": "File"},
        HyperParameters={"max_depth": "3"},
        InputDataConfig=[channel("train", "train"), channel("validation", "test")],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    done = wait_for(
        lambda: api.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"Completed", "Failed"}
    )
    assert done["TrainingJobStatus"] == "Completed", done
    return done


def test_training_writes_its_model_to_s3_and_its_logs_to_cloudwatch(api: Api, trained: dict[str, Any]) -> None:
    artifacts = trained["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = artifacts[len("s3://") :].split("/", 1)
    assert api.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    name = trained["TrainingJobName"]
    group = "/aws/sagemaker/TrainingJobs"
    streams = [
        s["logStreamName"]
        for s in api.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=name + "/")["logStreams"]
    ]
    assert len(streams) == 1
    assert streams[0].startswith(f"{name}/algo-1-")
    messages = [e["message"] for e in api.logs.get_log_events(logGroupName=group, logStreamName=streams[0])["events"]]
    assert any("train_accuracy=" in m for m in messages), messages[-20:]


def test_endpoint_serves_the_trained_model_and_reports_model_errors(
    api: Api, trained: dict[str, Any], sample_image: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    model, cfg, ep = f"m-{suffix}", f"c-{suffix}", f"e-{suffix}"
    api.sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": sample_image, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    serve(api, model, cfg, ep)
    rows = b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    answer = api.runtime.invoke_endpoint(EndpointName=ep, Body=rows, ContentType="text/csv", Accept="text/csv")
    assert answer["ContentType"].startswith("text/csv")
    lines = answer["Body"].read().decode().split()
    assert len(lines) == 2  # one answer per row sent
    for line in lines:  # class probabilities
        assert sum(float(x) for x in line.split(",")) == pytest.approx(1.0, abs=1e-3)

    with pytest.raises(api.runtime.exceptions.ModelError) as info:
        api.runtime.invoke_endpoint(EndpointName=ep, Body=b'{"a": 1}', ContentType="application/json")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert info.value.response["OriginalStatusCode"] == 415  # the sample's answer to another Content-Type
    assert "Content-Type" in info.value.response["OriginalMessage"]
    delete_endpoint(api, ep)


def test_transform_job_scores_every_test_row(api: Api, trained: dict[str, Any], splits: str, sample_image: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    model, job = f"tm-{suffix}", f"tj-{suffix}"
    api.sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": sample_image, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    api.sm.create_transform_job(
        TransformJobName=job,
        ModelName=model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{splits}/test"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/{job}", "Accept": "text/csv", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input"},
    )
    done = wait_for(
        lambda: api.sm.describe_transform_job(TransformJobName=job), "TransformJobStatus", {"Completed", "Failed"}
    )
    assert done["TransformJobStatus"] == "Completed", done
    test_key = next(
        o["Key"] for o in api.s3.list_objects_v2(Bucket=BUCKET, Prefix=splits.split("/", 3)[3] + "/test")["Contents"]
    )
    rows = api.s3.get_object(Bucket=BUCKET, Key=test_key)["Body"].read().decode().split()
    outputs = api.s3.list_objects_v2(Bucket=BUCKET, Prefix=job + "/")["Contents"]
    assert len(outputs) == 1
    scored = api.s3.get_object(Bucket=BUCKET, Key=outputs[0]["Key"])["Body"].read().decode().split()
    assert len(scored) == len(rows)
    assert [s.startswith(r) for s, r in zip(scored, rows, strict=True)] == [True] * len(rows)  # JoinSource: Input


def test_stop_of_a_running_processing_job(api: Api, sample_image: str) -> None:
    name = f"sleep-{uuid.uuid4().hex[:8]}"
    api.sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": sample_image, "ContainerEntrypoint": ["sleep", "300"]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
    )
    deadline = time.monotonic() + 60
    while not our_containers(name):
        assert time.monotonic() < deadline, "the job's container never appeared"
        time.sleep(0.5)
    assert api.sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress"
    started = time.monotonic()
    api.sm.stop_processing_job(ProcessingJobName=name)
    wait_for(lambda: api.sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", {"Stopped"})
    assert time.monotonic() - started < 60
    assert not our_containers(name), our_containers()


def test_the_sample_pipeline_runs_to_succeeded(api: Api, raw_uri: str, sample_image: str) -> None:
    definition = yaml.safe_load((REPO / "sample_algorithm" / "pipeline.yaml").read_text(encoding="utf-8"))
    name = f"iris-{uuid.uuid4().hex[:8]}"
    api.sm.create_pipeline(
        PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE, ClientRequestToken=uuid.uuid4().hex
    )
    prefix = f"s3://{BUCKET}/{name}"
    params = {"InputData": raw_uri, "OutputPrefix": prefix, "ImageUri": sample_image}
    arn = api.sm.start_pipeline_execution(
        PipelineName=name,
        PipelineParameters=[{"Name": k, "Value": v} for k, v in params.items()],
        ClientRequestToken=uuid.uuid4().hex,
    )["PipelineExecutionArn"]
    done = wait_for(
        lambda: api.sm.describe_pipeline_execution(PipelineExecutionArn=arn),
        "PipelineExecutionStatus",
        {"Succeeded", "Failed", "Stopped"},
    )
    steps = api.sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert done["PipelineExecutionStatus"] == "Succeeded", (done, steps)
    statuses = {s["StepName"]: s["StepStatus"] for s in steps}
    expected = [s["Name"] for s in definition["Steps"][:3]]
    assert all(statuses.get(n) == "Succeeded" for n in expected), statuses
    assert statuses.get("BatchTransform") == "Succeeded", statuses
    execution_id = arn.rsplit("/", 1)[-1]
    written = api.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{name}/{execution_id}/transform/")
    assert written.get("KeyCount", 0) >= 1


def test_server_stop_removes_an_in_service_endpoint(
    fast_config: EmulatorConfig, sample_image: str, trained: dict[str, Any], tmp_path: Path
) -> None:
    with ApiServer(port=0, config=fast_config.with_(stream_logs=False)) as server:
        api = Api(server)
        # the model's data lives in the module server's S3 (the same in-process moto backend)
        api.sm.create_model(
            ModelName="m",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": sample_image, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]},
        )
        api.sm.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        api.sm.create_endpoint(EndpointName="stays-up", EndpointConfigName="c")
        up = wait_for(
            lambda: api.sm.describe_endpoint(EndpointName="stays-up"), "EndpointStatus", {"InService", "Failed"}
        )
        assert up["EndpointStatus"] == "InService", up
        assert our_containers("stays-up"), our_containers()
    assert not our_containers("stays-up"), our_containers()


def test_multi_model_endpoint_loads_each_target_model_from_the_s3_prefix(
    api: Api, trained: dict[str, Any], sample_image: str
) -> None:
    """CreateModel Mode MultiModel over an S3 prefix; boto3's invoke_endpoint(TargetModel=...) against the sample."""
    suffix = uuid.uuid4().hex[:8]
    model, cfg, ep = f"mm-{suffix}", f"mc-{suffix}", f"me-{suffix}"
    bucket, key = trained["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    for target in ("iris.tar.gz", "v2/iris.tar.gz"):
        api.s3.copy_object(Bucket=BUCKET, Key=f"mme-{suffix}/{target}", CopySource={"Bucket": bucket, "Key": key})
    api.sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": sample_image, "Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/mme-{suffix}/"},
    )
    serve(api, model, cfg, ep)
    rows = b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    for target in ("iris.tar.gz", "v2/iris.tar.gz", "iris.tar.gz"):
        answer = api.runtime.invoke_endpoint(EndpointName=ep, Body=rows, ContentType="text/csv", TargetModel=target)
        lines = answer["Body"].read().decode().split()
        assert len(lines) == 2, lines
        assert sum(float(x) for x in lines[0].split(",")) == pytest.approx(1.0, abs=1e-3)

    for extra, wanted in (
        ({}, "is missing a target model header."),
        (
            {"TargetModel": "nope.tar.gz"},
            f"Failed to download model data(bucket: {BUCKET}, key: mme-{suffix}/nope.tar.gz)",
        ),
    ):
        with pytest.raises(api.runtime.exceptions.ClientError) as info:
            api.runtime.invoke_endpoint(EndpointName=ep, Body=rows, ContentType="text/csv", **extra)
        assert info.value.response["Error"]["Code"] == "ValidationError"
        assert wanted in info.value.response["Error"]["Message"]
    delete_endpoint(api, ep)
