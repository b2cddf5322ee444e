"""Inference pipelines and several instances on the real engine, with the chain image (tests/images/chain: each
container adds its own step to the JSON it is sent) and the recorder image.

Through the API server and boto3: CreateModel with two Containers, an endpoint of two instances (four containers),
InvokeEndpoint through the chain, the ModelError of the first container, a log stream per container, DeleteEndpoint
removing all. Through the Python API: a batch transform whose every batch goes through a pipeline.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.config
import pytest

from emulator.api.server import ApiServer
from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, SERVING_PORT
from emulator.transform import TransformJob

pytestmark = pytest.mark.docker

ROLE = "arn:aws:iam::123456789012:role/Emulator"


@pytest.fixture(scope="module")
def chain_image(docker_available: str, image_builder: ModuleType) -> str:
    """tests/images/chain, rebuilt only when its files changed."""
    image: str = image_builder.build_test_image("chain")
    return image


def containers_of(name: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL_JOB}={name}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.split()


def _client(server: ApiServer, service: str) -> Any:
    session: Any = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def server(fast_config: EmulatorConfig) -> Iterator[ApiServer]:
    with ApiServer(port=0, config=fast_config.with_(stream_logs=False)) as srv:
        yield srv


def _poll(check: Any, what: str, timeout_s: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.3)


def test_a_pipeline_endpoint_of_two_instances_through_boto3(server: ApiServer, chain_image: str) -> None:
    sm, runtime, logs = (_client(server, s) for s in ("sagemaker", "sagemaker-runtime", "logs"))
    steps = [
        {"Image": chain_image, "ContainerHostname": "pre", "Environment": {"CHAIN_NAME": "pre", **extra}}
        for extra in ({"CHAIN_CONTENT_TYPE": "application/x-pre", "CHAIN_FAIL_ON": "poison"},)
    ] + [{"Image": chain_image, "ContainerHostname": "post", "Environment": {"CHAIN_NAME": "post"}}]
    sm.create_model(
        ModelName="pipe",
        ExecutionRoleArn=ROLE,
        Containers=steps,
        InferenceExecutionConfig={"Mode": "Serial"},
    )
    described = sm.describe_model(ModelName="pipe")
    assert [c["ContainerHostname"] for c in described["Containers"]] == ["pre", "post"]
    assert described["InferenceExecutionConfig"] == {"Mode": "Serial"}
    sm.create_endpoint_config(
        EndpointConfigName="pipe-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "pipe",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.t2.medium",
            }
        ],
    )
    sm.create_endpoint(EndpointName="pipe-ep", EndpointConfigName="pipe-config")
    ready = _poll(
        lambda: (d := sm.describe_endpoint(EndpointName="pipe-ep"))["EndpointStatus"] != "Creating" and d,
        "InService",
    )
    assert ready["EndpointStatus"] == "InService", ready.get("FailureReason")
    assert ready["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert len(containers_of("pipe-ep")) == 4  # two instances of two containers

    answers = []
    for _ in range(2):
        out = runtime.invoke_endpoint(
            EndpointName="pipe-ep",
            Body=b"1,2",
            ContentType="text/csv",
            Accept="application/json",
            CustomAttributes="t=7",
        )
        assert out["ContentType"] == "application/json"
        assert out["CustomAttributes"] == "t=7"
        answers.append(json.loads(out["Body"].read()))
    for answer in answers:
        pre, post = answer["steps"]
        assert answer["input"] == "1,2"
        assert (pre["name"], post["name"]) == ("pre", "post")
        assert (pre["content_type"], post["content_type"]) == ("text/csv", "application/x-pre")
        assert pre["accept"] == post["accept"] == "application/json"
        for step in (pre, post):  # labelled accept-bind-to-port: each listens where the emulator said
            assert step["env"]["SAGEMAKER_BIND_TO_PORT"] == str(step["port"]) != str(SERVING_PORT)
    # round-robin: the second request went to the other instance's containers
    assert answers[0]["steps"][0]["process"] != answers[1]["steps"][0]["process"]
    assert answers[0]["steps"][0]["host"] == "pre"  # ContainerHostname

    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(EndpointName="pipe-ep", Body=b"poison", ContentType="text/csv")
    error = info.value.response
    assert error["OriginalStatusCode"] == 400
    assert 'Received client error (400) from pre with message "pre refuses: poison"' in error["Error"]["Message"]

    group = "/aws/sagemaker/Endpoints/pipe-ep"
    streams = _poll(
        lambda: (
            len(s := [x["logStreamName"] for x in logs.describe_log_streams(logGroupName=group)["logStreams"]]) == 4
            and s
        ),
        "a log stream per container",
    )
    assert sorted(s.rsplit("/", 1)[1] for s in streams) == ["post", "post", "pre", "pre"]
    assert all(s.startswith("AllTraffic/i-") for s in streams)

    # UpdateEndpointWeightsAndCapacities: DesiredInstanceCount starts a third instance, then 1 keeps one
    for count in (3, 1):
        sm.update_endpoint_weights_and_capacities(
            EndpointName="pipe-ep",
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": count}],
        )
        scaled = _poll(
            lambda: (d := sm.describe_endpoint(EndpointName="pipe-ep"))["EndpointStatus"] == "InService" and d,
            f"{count} instances",
        )
        assert "FailureReason" not in scaled, scaled["FailureReason"]
        variant = scaled["ProductionVariants"][0]
        assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (count, count)
        assert len(containers_of("pipe-ep")) == 2 * count
        seen = {
            json.loads(runtime.invoke_endpoint(EndpointName="pipe-ep", Body=b"x")["Body"].read())["steps"][0]["process"]
            for _ in range(count)
        }
        assert len(seen) == count  # every instance serves

    sm.delete_endpoint(EndpointName="pipe-ep")
    _poll(lambda: containers_of("pipe-ep") == [], "every container removed")


def test_every_batch_of_a_transform_goes_through_the_pipeline(
    chain_image: str, recorder_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text("a\nb\nc\n")
    models = {
        "pipe": {
            "Containers": [
                {"Image": chain_image, "Environment": {"CHAIN_NAME": "pre"}},
                {"Image": recorder_image, "Environment": {"RECORDER_CONTENT_TYPE": "application/json"}},
            ]
        }
    }
    job = TransformJob(
        {
            "ModelName": "pipe",
            "BatchStrategy": "SingleRecord",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(tmp_path / "in")}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": str(tmp_path / "out"), "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        },
        models=models,
        config=fast_config.with_(stream_logs=False),
    )
    result = job.run()
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    rows = [json.loads(line) for line in (tmp_path / "out" / "rows.csv.out").read_text().splitlines()]
    # the recorder (second) echoed what the chain image (first) made of each record
    assert [r["input"].strip() for r in rows] == ["a", "b", "c"]
    assert all([s["name"] for s in r["steps"]] == ["pre"] for r in rows)
    assert all(r["steps"][0]["env"]["SAGEMAKER_BATCH"] == "true" for r in rows)
    assert containers_of(job.name) == []
