"""The API server answers as AWS would: real boto3 clients over HTTP, every answer parsed by botocore.

No engine: the server's jobs and endpoints run on ``_fakes.JobsDocker`` (job hosts play ``FAKE_*`` variables,
serving containers run the recorder in-process). Every SageMaker answer is also checked, raw, against the
operation's output shape in botocore's model (members, types, required members): botocore's parser would
silently drop a member the shape lacks, so the raw body is what tells.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.session
import pytest
from _fakes import IMAGE, JobsDocker
from botocore.exceptions import ClientError
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from emulator.api.server import ApiServer
from emulator.config import EmulatorConfig

_SM_MODEL = botocore.session.get_session().get_service_model("sagemaker")
BUCKET = "api-unit"
ROLE = "arn:aws:iam::123456789012:role/Emulator"
#: Every SageMaker operation an answer of this module came from (the coverage check at the end reads it).
SEEN: set[str] = set()
TIMEOUT_S = 20.0


# -- the output-shape oracle ---------------------------------------------------------------------------------


def shape_problems(shape: Shape, value: Any, where: str) -> list[str]:
    """What in ``value`` (raw JSON) does not fit ``shape``: unknown or missing-required members, wrong types."""
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a structure"]
        out = [f"{where}.{k}: not a member of {shape.name}" for k in value if k not in shape.members]
        out += [f"{where}.{k}: required by {shape.name}, missing" for k in shape.required_members if k not in value]
        for k, v in value.items():
            if k in shape.members:
                out += shape_problems(shape.members[k], v, f"{where}.{k}")
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [p for i, v in enumerate(value) for p in shape_problems(shape.member, v, f"{where}[{i}]")]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a map"]
        return [p for k, v in value.items() for p in shape_problems(shape.value, v, f"{where}[{k}]")]
    expected: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "blob": (str,),
        "boolean": (bool,),
        "integer": (int,),
        "long": (int,),
        "float": (int, float),
        "double": (int, float),
        "timestamp": (int, float),
    }
    types = expected.get(shape.type_name)
    if types is None:
        return []
    if not isinstance(value, types) or (shape.type_name != "boolean" and isinstance(value, bool)):
        return [f"{where}: {value!r} is not a {shape.type_name}"]
    enum = getattr(shape, "enum", None) or []
    if enum and value not in enum:
        return [f"{where}: {value!r} is not one of {shape.name}'s values"]
    return []


def _check_answer(http_response: Any, model: OperationModel, **_: Any) -> None:
    if http_response.status_code != 200:
        return
    SEEN.add(model.name)
    raw = json.loads(http_response.content or b"{}")
    problems = shape_problems(model.output_shape, raw, model.name) if model.output_shape is not None else []
    assert raw == {} or model.output_shape is not None, f"{model.name} answered {raw} but has no output shape"
    assert not problems, f"{model.name}'s answer does not fit its output shape:\n" + "\n".join(problems)


# -- fixtures ------------------------------------------------------------------------------------------------


def _client(server: ApiServer, service: str, **config: Any) -> Any:
    session: Any = boto3.session.Session()
    client = session.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1}, **config),
    )
    if service == "sagemaker":
        client.meta.events.register("after-call.sagemaker", _check_answer)
    return client


class Api:
    """The server and its boto3 clients."""

    def __init__(self, server: ApiServer, docker: JobsDocker) -> None:
        self.server = server
        self.docker = docker
        self.sm = _client(server, "sagemaker")
        self.runtime = _client(server, "sagemaker-runtime")
        self.s3 = _client(server, "s3", s3={"addressing_style": "path"})
        self.logs = _client(server, "logs")
        self.sts = _client(server, "sts")


@pytest.fixture
def config(tmp_path: Path) -> EmulatorConfig:
    work = tmp_path / "work"
    work.mkdir()
    return EmulatorConfig(
        work_dir=str(work), stream_logs=False, training_stop_grace_s=0.5, serving_stop_grace_s=0.5, startup_timeout_s=5
    )


@pytest.fixture
def api(config: EmulatorConfig) -> Iterator[Api]:
    docker = JobsDocker()
    with ApiServer(port=0, config=config, docker=docker) as server:
        api = Api(server, docker)
        try:
            api.s3.create_bucket(Bucket=BUCKET)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        yield api
    assert docker.running() == [], "the server's stop left containers running"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(describe: Callable[[], dict[str, Any]], field: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        answer = describe()
        if answer.get(field) in wanted:
            return answer
        assert time.monotonic() < deadline, f"{field} never became one of {sorted(wanted)}; last answer: {answer}"
        time.sleep(0.05)


def error_of(call: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return dict(info.value.response["Error"])


def training_request(name: str, env: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "fake-algo:latest", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": env,
        **extra,
    }


def processing_request(name: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": "fake-proc:latest"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        "Environment": env,
    }


def create_model(api: Api, name: str, env: dict[str, str] | None = None, **extra: Any) -> str:
    arn: str = api.sm.create_model(
        ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE, "Environment": env or {}}, **extra
    )["ModelArn"]
    return arn


def create_config(api: Api, name: str, model: str) -> str:
    arn: str = api.sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )["EndpointConfigArn"]
    return arn


# -- training, processing ------------------------------------------------------------------------------------


def test_training_job_runs_to_completed_with_its_s3_input_and_logs(api: Api) -> None:
    name = unique("train")
    api.s3.put_object(Bucket=BUCKET, Key=f"{name}/train/data.csv", Body=b"1,2\n")
    line = f"epoch=1 loss=0.5 ({name})"
    channel = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/train"}},
    }
    request = training_request(name, {"FAKE_LOG": line, "FAKE_RUN_S": "1"}, InputDataConfig=[channel])
    arn = api.sm.create_training_job(**request)["TrainingJobArn"]
    assert arn.endswith(f":training-job/{name}")
    first = api.sm.describe_training_job(TrainingJobName=name)
    assert first["TrainingJobStatus"] == "InProgress"
    done = wait_for(lambda: api.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"Completed"})
    assert done["TrainingJobArn"] == arn
    assert done["TrainingJobName"] == name
    assert done["ModelArtifacts"]["S3ModelArtifacts"].startswith(f"s3://{BUCKET}/out/{name}/")
    assert done["InputDataConfig"][0]["ChannelName"] == "train"
    listed = api.sm.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [(s["TrainingJobName"], s["TrainingJobStatus"]) for s in listed] == [(name, "Completed")]
    # the platform's log group and stream names: /aws/sagemaker/TrainingJobs, <job>/algo-1-<epoch>
    streams = api.logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name + "/")
    names = [s["logStreamName"] for s in streams["logStreams"]]
    assert len(names) == 1, names
    assert names[0].startswith(f"{name}/algo-1-")
    events = api.logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=names[0])
    assert line in [e["message"] for e in events["events"]]


def test_training_job_that_exits_non_zero_is_failed(api: Api) -> None:
    name = unique("train-fail")
    api.sm.create_training_job(**training_request(name, {"FAKE_EXIT_CODE": "3"}))
    done = wait_for(lambda: api.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"Failed"})
    assert done["FailureReason"]
    assert api.sm.list_training_jobs(StatusEquals="Failed", NameContains=name)["TrainingJobSummaries"]


def test_stop_training_job_ends_it_stopped(api: Api) -> None:
    name = unique("train-stop")
    api.sm.create_training_job(**training_request(name, {"FAKE_RUN_UNTIL_STOPPED": "1"}))
    wait_for(lambda: api.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"InProgress"})
    api.sm.stop_training_job(TrainingJobName=name)
    wait_for(lambda: api.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"Stopped"})
    assert api.docker.running() == []


def test_tuning_job_runs_lists_and_stops(api: Api) -> None:
    def tuning(name: str, env: dict[str, str]) -> dict[str, Any]:
        training = training_request("unused", env)
        del training["TrainingJobName"]
        training["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "score", "Regex": "score=([0-9.]+)"}]
        return {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobConfig": {
                "Strategy": "Random",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
                "ParameterRanges": {"IntegerParameterRanges": [{"Name": "x", "MinValue": "1", "MaxValue": "5"}]},
            },
            "TrainingJobDefinition": {k: v for k, v in training.items() if k != "HyperParameters"},
        }

    done, stopped = unique("tune")[:20], unique("tune-stop")[:20]
    api.sm.create_hyper_parameter_tuning_job(**tuning(done, {"FAKE_LOG": "score=0.5"}))
    described = wait_for(
        lambda: api.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=done),
        "HyperParameterTuningJobStatus",
        {"Completed", "Failed"},
    )
    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get("FailureReason")
    assert described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.5
    listed = api.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=done)
    assert len(listed["TrainingJobSummaries"]) == 2
    api.sm.create_hyper_parameter_tuning_job(**tuning(stopped, {"FAKE_RUN_UNTIL_STOPPED": "1"}))
    api.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=stopped)
    wait_for(
        lambda: api.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=stopped),
        "HyperParameterTuningJobStatus",
        {"Stopped"},
    )
    names = api.sm.list_hyper_parameter_tuning_jobs(SortBy="Name")["HyperParameterTuningJobSummaries"]
    assert [n["HyperParameterTuningJobName"] for n in names] == sorted([done, stopped], reverse=True)
    assert api.docker.running() == []


def test_processing_job_completes_fails_and_stops(api: Api) -> None:
    ok, bad, stopped = unique("proc-ok"), unique("proc-bad"), unique("proc-stop")
    arn = api.sm.create_processing_job(**processing_request(ok, {"FAKE_RUN_S": "1"}))["ProcessingJobArn"]
    assert api.sm.describe_processing_job(ProcessingJobName=ok)["ProcessingJobStatus"] == "InProgress"
    api.sm.create_processing_job(**processing_request(bad, {"FAKE_EXIT_CODE": "2"}))
    api.sm.create_processing_job(**processing_request(stopped, {"FAKE_RUN_UNTIL_STOPPED": "1"}))
    done = wait_for(lambda: api.sm.describe_processing_job(ProcessingJobName=ok), "ProcessingJobStatus", {"Completed"})
    assert done["ProcessingJobArn"] == arn
    failed = wait_for(lambda: api.sm.describe_processing_job(ProcessingJobName=bad), "ProcessingJobStatus", {"Failed"})
    assert failed.get("ExitMessage") or failed.get("FailureReason")
    wait_for(lambda: api.sm.describe_processing_job(ProcessingJobName=stopped), "ProcessingJobStatus", {"InProgress"})
    api.sm.stop_processing_job(ProcessingJobName=stopped)
    wait_for(lambda: api.sm.describe_processing_job(ProcessingJobName=stopped), "ProcessingJobStatus", {"Stopped"})
    summaries = api.sm.list_processing_jobs(NameContains="proc-", SortBy="Name", SortOrder="Ascending")
    names = [s["ProcessingJobName"] for s in summaries["ProcessingJobSummaries"]]
    assert set(names) >= {ok, bad, stopped}
    assert names == sorted(names)


# -- models, endpoint configs, endpoints, invocations --------------------------------------------------------


def test_model_endpoint_config_endpoint_invoke_update_delete(api: Api) -> None:
    model, model2, cfg, cfg2, ep = (unique(p) for p in ("model", "model2", "cfg", "cfg2", "ep"))
    model_arn = create_model(api, model, {"RECORDER_FAIL_ON": "poison"})
    described = api.sm.describe_model(ModelName=model)
    assert (described["ModelName"], described["ModelArn"]) == (model, model_arn)
    assert described["PrimaryContainer"]["Image"] == IMAGE
    cfg_arn = create_config(api, cfg, model)
    described_cfg = api.sm.describe_endpoint_config(EndpointConfigName=cfg)
    assert described_cfg["EndpointConfigArn"] == cfg_arn
    assert described_cfg["ProductionVariants"][0]["ModelName"] == model

    ep_arn = api.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)["EndpointArn"]
    assert api.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] in ("Creating", "InService")
    up = wait_for(lambda: api.sm.describe_endpoint(EndpointName=ep), "EndpointStatus", {"InService", "Failed"})
    assert up["EndpointStatus"] == "InService", up
    assert up["EndpointArn"] == ep_arn
    assert up["EndpointConfigName"] == cfg
    assert api.sm.list_endpoints(NameContains=ep)["Endpoints"][0]["EndpointName"] == ep

    answer = api.runtime.invoke_endpoint(EndpointName=ep, Body=b"1,2,3", ContentType="text/csv", Accept="text/csv")
    assert answer["Body"].read() == b"1,2,3"  # the recorder echoes
    assert answer["ContentType"] == "text/csv"

    with pytest.raises(api.runtime.exceptions.ModelError) as info:
        api.runtime.invoke_endpoint(EndpointName=ep, Body=b"poison", ContentType="text/csv")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert info.value.response["OriginalStatusCode"] == 400  # the recorder's RECORDER_FAIL_STATUS default
    assert "poison" in info.value.response["OriginalMessage"]

    create_model(api, model2)
    create_config(api, cfg2, model2)
    api.sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    updated = wait_for(
        lambda: api.sm.describe_endpoint(EndpointName=ep),
        "EndpointConfigName",
        {cfg2},
    )
    assert updated["EndpointStatus"] in ("Updating", "InService")
    wait_for(lambda: api.sm.describe_endpoint(EndpointName=ep), "EndpointStatus", {"InService"})
    # the new model has no RECORDER_FAIL_ON: the update took effect
    assert api.runtime.invoke_endpoint(EndpointName=ep, Body=b"poison")["Body"].read() == b"poison"

    api.sm.delete_endpoint(EndpointName=ep)
    assert "Could not find" in error_of(api.sm.describe_endpoint, EndpointName=ep)["Message"]
    err = error_of(api.runtime.invoke_endpoint, EndpointName=ep, Body=b"x")
    assert err["Code"] == "ValidationError"
    for c in (cfg, cfg2):
        api.sm.delete_endpoint_config(EndpointConfigName=c)
    for m in (model, model2):
        api.sm.delete_model(ModelName=m)
    assert not api.sm.list_models(NameContains=model)["Models"]
    assert not api.sm.list_endpoint_configs(NameContains=cfg)["EndpointConfigs"]
    deadline = time.monotonic() + TIMEOUT_S
    while api.docker.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.docker.running() == [], "DeleteEndpoint left the serving container running"


def test_production_variants_each_serve_by_target_variant_and_weight(api: Api) -> None:
    one, two, cfg, ep = (unique(p) for p in ("vmodel1", "vmodel2", "vcfg", "vep"))
    create_model(api, one, {"RECORDER_CONTENT_TYPE": "text/one"})
    create_model(api, two, {"RECORDER_CONTENT_TYPE": "text/two"})
    variant = {"InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    api.sm.create_endpoint_config(
        EndpointConfigName=cfg,
        ProductionVariants=[
            {**variant, "VariantName": "One", "ModelName": one, "InitialVariantWeight": 1.0},
            {**variant, "VariantName": "Two", "ModelName": two, "InitialVariantWeight": 0.0},
        ],
    )
    api.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    up = wait_for(lambda: api.sm.describe_endpoint(EndpointName=ep), "EndpointStatus", {"InService", "Failed"})
    assert up["EndpointStatus"] == "InService", up
    assert [(v["VariantName"], v["CurrentWeight"]) for v in up["ProductionVariants"]] == [("One", 1.0), ("Two", 0.0)]
    assert len(api.docker.running()) >= 2

    def served(**kwargs: Any) -> tuple[str, str]:
        answer = api.runtime.invoke_endpoint(EndpointName=ep, Body=b"1", **kwargs)
        return answer["InvokedProductionVariant"], answer["ContentType"]

    assert {served() for _ in range(5)} == {("One", "text/one")}  # weight 0 takes no untargeted traffic
    assert served(TargetVariant="Two") == ("Two", "text/two")
    err = error_of(api.runtime.invoke_endpoint, EndpointName=ep, Body=b"1", TargetVariant="Three")
    assert err["Code"] == "ValidationError"
    assert "Three" in err["Message"]

    api.sm.update_endpoint_weights_and_capacities(
        EndpointName=ep,
        DesiredWeightsAndCapacities=[
            {"VariantName": "One", "DesiredWeight": 0.0},
            {"VariantName": "Two", "DesiredWeight": 1.0},
        ],
    )
    weights = {
        v["VariantName"]: v["DesiredWeight"] for v in api.sm.describe_endpoint(EndpointName=ep)["ProductionVariants"]
    }
    assert weights == {"One": 0.0, "Two": 1.0}
    assert {served() for _ in range(5)} == {("Two", "text/two")}
    err = error_of(
        api.sm.update_endpoint_weights_and_capacities,
        EndpointName=ep,
        DesiredWeightsAndCapacities=[{"VariantName": "Two", "DesiredWeight": 0.0}],
    )
    assert err["Code"] == "ValidationException"
    assert "weight above 0" in err["Message"]

    api.sm.delete_endpoint(EndpointName=ep)
    deadline = time.monotonic() + TIMEOUT_S
    while api.docker.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.docker.running() == [], "DeleteEndpoint left a variant's container running"


def test_transform_job_completes_and_stops(api: Api) -> None:
    model, job, slow_model, slow_job = unique("tmodel"), unique("transform"), unique("tslow"), unique("tstop")
    create_model(api, model)
    create_model(api, slow_model, {"RECORDER_SLEEP_S": "30"})
    api.s3.put_object(Bucket=BUCKET, Key=f"{job}/in/rows.csv", Body=b"1,2\n3,4\n")

    def request(name: str, model_name: str) -> dict[str, Any]:
        return {
            "TransformJobName": name,
            "ModelName": model_name,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{job}/in"}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/{name}/out"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        }

    arn = api.sm.create_transform_job(**request(job, model))["TransformJobArn"]
    done = wait_for(
        lambda: api.sm.describe_transform_job(TransformJobName=job), "TransformJobStatus", {"Completed", "Failed"}
    )
    assert done["TransformJobStatus"] == "Completed", done
    assert done["TransformJobArn"] == arn
    keys = [o["Key"] for o in api.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{job}/out")["Contents"]]
    # as the platform documents it: input s3://b/input-data-prefix/x.csv -> s3://b/output-prefix/input-data-prefix/x.csv.out
    assert keys == [f"{job}/out/in/rows.csv.out"], keys
    out = api.s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    assert out.split() == [b"1,2", b"3,4"]  # the recorder echoes each record
    assert api.sm.list_transform_jobs(NameContains=job)["TransformJobSummaries"][0]["TransformJobName"] == job

    api.sm.create_transform_job(**request(slow_job, slow_model))
    wait_for(lambda: api.sm.describe_transform_job(TransformJobName=slow_job), "TransformJobStatus", {"InProgress"})
    time.sleep(0.5)
    api.sm.stop_transform_job(TransformJobName=slow_job)
    wait_for(lambda: api.sm.describe_transform_job(TransformJobName=slow_job), "TransformJobStatus", {"Stopped"})

    err = error_of(api.sm.create_transform_job, **request(unique("tnomodel"), unique("missing-model")))
    assert "Could not find" in err["Message"]


# -- pipelines -----------------------------------------------------------------------------------------------


def pipeline_definition(env: dict[str, str]) -> str:
    return json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [{"Name": "Note", "Type": "String", "DefaultValue": "default-note"}],
            "Steps": [
                {
                    "Name": "Work",
                    "Type": "Processing",
                    "Arguments": {
                        **{k: v for k, v in processing_request("ignored", {}).items() if k != "ProcessingJobName"},
                        "Environment": {**env, "FAKE_LOG": {"Get": "Parameters.Note"}},
                    },
                }
            ],
        }
    )


def test_pipeline_crud_execution_steps_and_stop(api: Api) -> None:
    name = unique("pipe")
    arn = api.sm.create_pipeline(
        PipelineName=name,
        PipelineDefinition=pipeline_definition({"FAKE_RUN_S": "0.5"}),
        RoleArn=ROLE,
        ClientRequestToken=uuid.uuid4().hex,
    )["PipelineArn"]
    described = api.sm.describe_pipeline(PipelineName=name)
    assert (described["PipelineName"], described["PipelineArn"]) == (name, arn)
    assert api.sm.list_pipelines(PipelineNamePrefix=name)["PipelineSummaries"][0]["PipelineArn"] == arn
    assert api.sm.update_pipeline(PipelineName=name, PipelineDescription="updated")["PipelineArn"] == arn
    assert api.sm.describe_pipeline(PipelineName=name)["PipelineDescription"] == "updated"

    note = unique("note")
    execution = api.sm.start_pipeline_execution(
        PipelineName=name, PipelineParameters=[{"Name": "Note", "Value": note}], ClientRequestToken=uuid.uuid4().hex
    )["PipelineExecutionArn"]
    assert execution.startswith(arn + "/execution/")
    done = wait_for(
        lambda: api.sm.describe_pipeline_execution(PipelineExecutionArn=execution),
        "PipelineExecutionStatus",
        {"Succeeded", "Failed", "Stopped"},
    )
    assert done["PipelineExecutionStatus"] == "Succeeded", done
    assert done["PipelineArn"] == arn
    steps = api.sm.list_pipeline_execution_steps(PipelineExecutionArn=execution)["PipelineExecutionSteps"]
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("Work", "Succeeded")]
    job_arn = steps[0]["Metadata"]["ProcessingJob"]["Arn"]
    job = api.sm.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
    assert job["Environment"]["FAKE_LOG"] == note  # the execution's parameter reached the step
    executions = api.sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in executions] == [execution]

    api.sm.update_pipeline(PipelineName=name, PipelineDefinition=pipeline_definition({"FAKE_RUN_UNTIL_STOPPED": "1"}))
    running = api.sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=uuid.uuid4().hex)
    stop_arn = running["PipelineExecutionArn"]
    wait_for(
        lambda: api.sm.describe_pipeline_execution(PipelineExecutionArn=stop_arn),
        "PipelineExecutionStatus",
        {"Executing"},
    )
    assert api.sm.stop_pipeline_execution(PipelineExecutionArn=stop_arn, ClientRequestToken=uuid.uuid4().hex)[
        "PipelineExecutionArn"
    ] == (stop_arn)
    wait_for(
        lambda: api.sm.describe_pipeline_execution(PipelineExecutionArn=stop_arn),
        "PipelineExecutionStatus",
        {"Stopped"},
    )
    assert api.sm.delete_pipeline(PipelineName=name, ClientRequestToken=uuid.uuid4().hex)["PipelineArn"] == arn
    assert error_of(api.sm.describe_pipeline, PipelineName=name)["Code"] == "ResourceNotFound"


def test_a_pipeline_definition_that_is_not_one_is_refused(api: Api) -> None:
    err = error_of(
        api.sm.create_pipeline,
        PipelineName=unique("bad-pipe"),
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "X", "Type": "NoSuchType"}]}),
        RoleArn=ROLE,
        ClientRequestToken=uuid.uuid4().hex,
    )
    assert err["Code"] == "ValidationException"


# -- errors --------------------------------------------------------------------------------------------------

_DESCRIBE_MISSING = [
    ("describe_training_job", "TrainingJobName"),
    ("describe_processing_job", "ProcessingJobName"),
    ("describe_transform_job", "TransformJobName"),
    ("describe_model", "ModelName"),
    ("describe_endpoint_config", "EndpointConfigName"),
    ("describe_endpoint", "EndpointName"),
    ("stop_training_job", "TrainingJobName"),
    ("delete_model", "ModelName"),
    ("delete_endpoint", "EndpointName"),
]


@pytest.mark.parametrize(("method", "member"), _DESCRIBE_MISSING)
def test_a_missing_resource_is_a_validation_exception_that_could_not_find_it(
    api: Api, method: str, member: str
) -> None:
    name = unique("missing")
    err = error_of(getattr(api.sm, method), **{member: name})
    assert err["Code"] == "ValidationException"
    assert "Could not find" in err["Message"]
    assert name in err["Message"]


def test_a_missing_pipeline_execution_could_not_be_found(api: Api) -> None:
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{unique('p')}/execution/abc"
    err = error_of(api.sm.describe_pipeline_execution, PipelineExecutionArn=arn)
    assert "Could not find" in err["Message"] or err["Code"] == "ResourceNotFound"


def test_create_of_a_name_in_use_already_exists(api: Api) -> None:
    model, cfg, ep, job, pipe = unique("m"), unique("c"), unique("e"), unique("t"), unique("p")
    create_model(api, model)
    create_config(api, cfg, model)
    api.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    api.sm.create_training_job(**training_request(job, {}))
    definition = pipeline_definition({})
    api.sm.create_pipeline(
        PipelineName=pipe, PipelineDefinition=definition, RoleArn=ROLE, ClientRequestToken=uuid.uuid4().hex
    )
    again: list[Callable[[], Any]] = [
        lambda: create_model(api, model),
        lambda: create_config(api, cfg, model),
        lambda: api.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg),
        lambda: api.sm.create_training_job(**training_request(job, {})),
        lambda: api.sm.create_pipeline(
            PipelineName=pipe, PipelineDefinition=definition, RoleArn=ROLE, ClientRequestToken=uuid.uuid4().hex
        ),
    ]
    for call in again:
        err = error_of(call)
        assert err["Code"] == "ValidationException"
        assert "already exists" in err["Message"]
    wait_for(lambda: api.sm.describe_endpoint(EndpointName=ep), "EndpointStatus", {"InService", "Failed"})
    api.sm.delete_endpoint(EndpointName=ep)


def test_an_operation_not_served_is_unknown_and_named(api: Api) -> None:
    served = {op for op in _SM_MODEL.operation_names if api.server.backend.handler(op) is not None}
    not_served = sorted(set(_SM_MODEL.operation_names) - served)
    assert "CreateAutoMLJob" in not_served
    err = error_of(api.sm.list_auto_ml_jobs)
    assert err["Code"] == "UnknownOperationException"
    assert "ListAutoMLJobs" in err["Message"]


def test_a_request_that_does_not_fit_the_input_shape_names_the_field(api: Api) -> None:
    loose = _client(api.server, "sagemaker", parameter_validation=False)
    request = training_request(unique("bad"), {})
    del request["AlgorithmSpecification"]
    err = error_of(loose.create_training_job, **request)
    assert err["Code"] == "ValidationException"
    assert "AlgorithmSpecification" in err["Message"]
    err = error_of(loose.list_models, MaxResults="many")
    assert err["Code"] == "ValidationException"
    assert "MaxResults" in err["Message"]


# -- paging, tags, sts ---------------------------------------------------------------------------------------


def test_max_results_one_walks_every_page_with_next_token(api: Api) -> None:
    prefix = unique("page")
    names = {f"{prefix}-{i}" for i in range(3)}
    for n in sorted(names):
        create_model(api, n)
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        page = api.sm.list_models(NameContains=prefix, MaxResults=1, **({"NextToken": token} if token else {}))
        assert len(page["Models"]) == 1
        seen.append(page["Models"][0]["ModelName"])
        token = page.get("NextToken")
        if token is None:
            break
    assert sorted(seen) == sorted(names)
    paginated = [
        m["ModelName"]
        for page in api.sm.get_paginator("list_models").paginate(NameContains=prefix, PaginationConfig={"PageSize": 2})
        for m in page["Models"]
    ]
    assert sorted(paginated) == sorted(names)
    # Descending creation time is the platform's default order
    assert seen == sorted(names, reverse=True)


def test_tags_round_trip(api: Api) -> None:
    name = unique("tagged")
    arn = create_model(api, name, Tags=[{"Key": "team", "Value": "a"}])
    assert api.sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    api.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "b"}, {"Key": "cost", "Value": "1"}])
    tags = {t["Key"]: t["Value"] for t in api.sm.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "b", "cost": "1"}
    api.sm.delete_tags(ResourceArn=arn, TagKeys=["team"])
    assert api.sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "cost", "Value": "1"}]
    err = error_of(api.sm.list_tags, ResourceArn=arn.replace(name, unique("none")))
    assert err["Code"] == "ValidationException"


def test_sts_answers_with_the_account_of_the_arns(api: Api) -> None:
    arn = create_model(api, unique("acct"))
    assert api.sts.get_caller_identity()["Account"] == arn.split(":")[4]


# -- restart ------------------------------------------------------------------------------------------------


def test_records_outlive_a_restart_and_what_ran_is_no_longer_in_progress(
    config: EmulatorConfig, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    crashed = tmp_path / "crashed"
    model, cfg, ep, job = unique("rm"), unique("rc"), unique("re"), unique("rj")
    docker = JobsDocker()
    with ApiServer(port=0, state_dir=state, config=config, docker=docker) as server:
        api = Api(server, docker)
        model_arn = create_model(api, model, Tags=[{"Key": "k", "Value": "v"}])
        create_config(api, cfg, model)
        api.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
        api.sm.create_training_job(**training_request(job, {"FAKE_RUN_UNTIL_STOPPED": "1"}))
        wait_for(lambda: api.sm.describe_endpoint(EndpointName=ep), "EndpointStatus", {"InService"})
        time.sleep(1.5)  # the running job's record is stored every second
        # a copy of the records while the job runs: what a killed server leaves behind
        crashed.mkdir()
        with (
            sqlite3.connect(state / "state.sqlite") as src,
            sqlite3.connect(crashed / "state.sqlite") as dst,
        ):
            src.backup(dst)
    assert docker.running() == []

    # a clean stop, then a restart
    docker2 = JobsDocker()
    with ApiServer(port=0, state_dir=state, config=config, docker=docker2) as server:
        api = Api(server, docker2)
        assert [m["ModelArn"] for m in api.sm.list_models(NameContains=model)["Models"]] == [model_arn]
        assert api.sm.describe_endpoint_config(EndpointConfigName=cfg)["EndpointConfigName"] == cfg
        assert api.sm.list_tags(ResourceArn=model_arn)["Tags"] == [{"Key": "k", "Value": "v"}]
        status = api.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"]
        assert status in ("Stopped", "Failed")
        assert api.sm.list_training_jobs(NameContains=job)["TrainingJobSummaries"][0]["TrainingJobStatus"] == status
        back = wait_for(lambda: api.sm.describe_endpoint(EndpointName=ep), "EndpointStatus", {"InService", "Failed"})
        assert back["EndpointStatus"] == "InService", back
        assert api.runtime.invoke_endpoint(EndpointName=ep, Body=b"again")["Body"].read() == b"again"
    assert docker2.running() == []

    # a restart from what a killed server left: the job was InProgress in those records
    docker3 = JobsDocker()
    with ApiServer(port=0, state_dir=crashed, config=config, docker=docker3) as server:
        api = Api(server, docker3)
        described = api.sm.describe_training_job(TrainingJobName=job)
        assert described["TrainingJobStatus"] not in ("InProgress", "Stopping"), described
        assert api.sm.describe_model(ModelName=model)["ModelArn"] == model_arn
        wait_for(lambda: api.sm.describe_endpoint(EndpointName=ep), "EndpointStatus", {"InService", "Failed"})
    assert docker3.running() == []


# -- coverage ------------------------------------------------------------------------------------------------


def test_every_served_operation_was_answered_and_checked(request: pytest.FixtureRequest, api: Api) -> None:
    """Runs last: every operation the server serves was called by this module and its answer checked."""
    ran = {
        getattr(i, "originalname", i.name)
        for i in request.session.items
        if getattr(i, "module", None) is request.module
    }
    defined = {n for n in vars(request.module) if n.startswith("test_")}
    if ran != defined:
        pytest.skip("only the whole module exercises every operation")
    served = {op for op in _SM_MODEL.operation_names if api.server.backend.handler(op) is not None}
    assert served - SEEN == set(), "served but never answered here"
