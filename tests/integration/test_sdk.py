"""The real SageMaker Python SDK v2 running users' code unchanged against the API server, on the real engine.

Each test writes a user program (SDK v2 names, as users write them) into tmp_path and runs it with
``$SM_EMULATOR_SDK_PYTHON`` (a venv of its own, made by scripts/ensure_sdk_venv.sh: the SDK's pins conflict
with the project's) in a subprocess whose environment is ``server.environment()`` plus PATH and a fresh HOME:
no real credentials, no ~/.aws. The programs print ``RESULT <json>`` lines; the tests assert on those and on
the server's own records.

A tripwire: HTTP_PROXY/HTTPS_PROXY point at a recorder on 127.0.0.1 (NO_PROXY keeps the server direct), so a
call the SDK would send to a real AWS host (STS, telemetry) is refused there and fails the test instead of
leaving the machine.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.api.protocol import ApiError
from emulator.api.server import DEFAULT_BUCKET, ApiServer

pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("SM_EMULATOR_SDK_PYTHON"),
        reason="SM_EMULATOR_SDK_PYTHON is unset: run scripts/test.sh, or export "
        "SM_EMULATOR_SDK_PYTHON=$(bash scripts/ensure_sdk_venv.sh)/bin/python",
    ),
]

DATA = Path(__file__).resolve().parents[2] / "contract_tests" / "data"
PROGRAM_TIMEOUT_S = 300

# What every program starts with: the user's imports and session, the data uploaded with session.upload_data.
PRELUDE = """\
import json
import sys
import time

import sagemaker
from sagemaker.estimator import Estimator
from sagemaker.serializers import CSVSerializer

data = sys.argv[1]
image = "sagemaker-emulator-sample:latest"
role = "arn:aws:iam::123456789012:role/SageMakerRole"
session = sagemaker.Session()
bucket = session.default_bucket()


def result(**values):
    print("\\nRESULT " + json.dumps(values, default=str), flush=True)  # own line: the SDK prints progress dots
"""

FIT_TRANSFORM_DEPLOY = """\
s3_train = session.upload_data(f"{data}/train.csv", key_prefix="iris/train")
s3_test = session.upload_data(f"{data}/test.csv", key_prefix="iris/test")
out = f"s3://{bucket}/transform"
rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]

t0 = time.time()
est = Estimator(image_uri=image, role=role, instance_count=1, instance_type="ml.c4.2xlarge",
                output_path=f"s3://{bucket}/output", sagemaker_session=session)
est.fit(inputs={"train": s3_train, "test": s3_test})
result(step="fit", seconds=time.time() - t0, job=est.latest_training_job.name, model_data=est.model_data)

t0 = time.time()
tr = est.transformer(instance_count=1, instance_type="ml.m4.xlarge", output_path=out, assemble_with="Line",
                     accept="text/csv")
tr.transform(s3_test, content_type="text/csv"); tr.wait()
result(step="transform", seconds=time.time() - t0, job=tr.latest_transform_job.name, output_path=tr.output_path)

t0 = time.time()
predictor = est.deploy(1, "ml.m5.large")
predictor.serializer = CSVSerializer()
prediction = predictor.predict(rows)
result(step="deploy", seconds=time.time() - t0, endpoint=predictor.endpoint_name, prediction=prediction.decode())

try:
    predictor.predict([[5.1, "not-a-number", 1.4, 0.2]])
except Exception as exc:
    response = {k: v for k, v in getattr(exc, "response", {}).items() if k != "ResponseMetadata"}
    result(step="bad_row", error=f"{type(exc).__module__}.{type(exc).__name__}", response=response)
else:
    result(step="bad_row", error=None)

predictor.delete_endpoint()
result(step="deleted", endpoint=predictor.endpoint_name)
"""

PROCESSOR_RUN = """\
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor

s3_raw = session.upload_data(f"{data}/raw.csv", key_prefix="iris/raw")
t0 = time.time()
processor = Processor(image_uri=image, entrypoint=["processing"], role=role, instance_count=1,
                      instance_type="ml.m5.large")
processor.run(
    inputs=[ProcessingInput(source=s3_raw, destination="/opt/ml/processing/input/raw")],
    outputs=[
        ProcessingOutput(output_name="train", source="/opt/ml/processing/output/train",
                         destination=f"s3://{bucket}/processed/train"),
        ProcessingOutput(output_name="test", source="/opt/ml/processing/output/test"),
    ],
)
description = processor.jobs[-1].describe()
result(step="run", seconds=time.time() - t0, job=description["ProcessingJobName"],
       status=description["ProcessingJobStatus"],
       outputs={o["OutputName"]: o["S3Output"]["S3Uri"] for o in description["ProcessingOutputConfig"]["Outputs"]})
"""

PIPELINE = """\
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.transformer import Transformer
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TransformStep

pipeline_session = PipelineSession()
s3_raw = session.upload_data(f"{data}/raw.csv", key_prefix="iris/raw")

processor = Processor(image_uri=image, entrypoint=["processing"], role=role, instance_count=1,
                      instance_type="ml.m5.large", sagemaker_session=pipeline_session)
step_process = ProcessingStep(name="Split", step_args=processor.run(
    inputs=[ProcessingInput(source=s3_raw, destination="/opt/ml/processing/input/raw")],
    outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/output/train"),
             ProcessingOutput(output_name="test", source="/opt/ml/processing/output/test")],
))
outputs = step_process.properties.ProcessingOutputConfig.Outputs

est = Estimator(image_uri=image, role=role, instance_count=1, instance_type="ml.c4.2xlarge",
                output_path=f"s3://{bucket}/pipeline/model", sagemaker_session=pipeline_session)
est.set_hyperparameters(max_depth=3, criterion="entropy")
step_train = TrainingStep(name="Train", step_args=est.fit(inputs={
    "train": TrainingInput(s3_data=outputs["train"].S3Output.S3Uri, content_type="text/csv"),
    "test": TrainingInput(s3_data=outputs["test"].S3Output.S3Uri, content_type="text/csv"),
}))

model = Model(image_uri=image, model_data=step_train.properties.ModelArtifacts.S3ModelArtifacts, role=role,
              sagemaker_session=pipeline_session)
step_model = ModelStep(name="Model", step_args=model.create(instance_type="ml.m5.large"))

transformer = Transformer(model_name=step_model.properties.ModelName, instance_count=1,
                          instance_type="ml.m4.xlarge", output_path=f"s3://{bucket}/pipeline/transform",
                          assemble_with="Line", accept="text/csv", sagemaker_session=pipeline_session)
step_transform = TransformStep(name="Transform", step_args=transformer.transform(
    data=outputs["test"].S3Output.S3Uri, content_type="text/csv"))

pipeline = Pipeline(name="iris-pipeline", steps=[step_process, step_train, step_model, step_transform],
                    sagemaker_session=pipeline_session)
t0 = time.time()
created = pipeline.upsert(role_arn=role)
updated = pipeline.upsert(role_arn=role)  # exists: the SDK falls back to UpdatePipeline
execution = pipeline.start()
execution.wait(delay=2, max_attempts=150)
steps = execution.list_steps()
result(step="pipeline", seconds=time.time() - t0, created=created["PipelineArn"], updated=updated["PipelineArn"],
       execution=execution.arn, status=execution.describe()["PipelineExecutionStatus"],
       steps={s["StepName"]: s["StepStatus"] for s in steps})
"""

# Before the restart: a training job as users start it when they do not watch its logs.
RESTART_TRAIN = """\
s3_train = session.upload_data(f"{data}/train.csv", key_prefix="iris/train")
est = Estimator(image_uri=image, role=role, instance_count=1, instance_type="ml.c4.2xlarge",
                output_path=f"s3://{bucket}/output", sagemaker_session=session)
est.fit(inputs={"train": s3_train}, logs=False)
result(step="fit", job=est.latest_training_job.name, model_data=est.model_data)
"""

# After the restart: the same user finds the job again and deploys its model.
RESTART_DEPLOY = """\
from sagemaker.predictor import Predictor

job = sys.argv[2]
description = session.describe_training_job(job)
listed = [j["TrainingJobName"] for j in session.sagemaker_client.list_training_jobs()["TrainingJobSummaries"]]
result(step="describe", status=description["TrainingJobStatus"], listed=listed,
       model_data=description["ModelArtifacts"]["S3ModelArtifacts"])

t0 = time.time()
est = Estimator.attach(job, sagemaker_session=session)
est.deploy(1, "ml.m5.large", endpoint_name="iris-after-restart", wait=False)
session.wait_for_endpoint("iris-after-restart", poll=1)
predictor = Predictor("iris-after-restart", sagemaker_session=session, serializer=CSVSerializer())
prediction = predictor.predict([[5.1, 3.5, 1.4, 0.2]]).decode()
predictor.delete_endpoint()
result(step="deploy", seconds=time.time() - t0, prediction=prediction)
"""


# -- the tripwire: a proxy on 127.0.0.1 that refuses and records every request sent to it --------------------
class _Refuse(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        server: _Tripwire = self.server  # type: ignore[assignment]
        with server.lock:
            server.attempts.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _Tripwire(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Refuse)
        self.lock = threading.Lock()
        self.attempts: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def tripwire() -> Iterator[_Tripwire]:
    server = _Tripwire()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
    assert server.attempts == [], f"the SDK tried to reach hosts outside this machine: {server.attempts}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The iris CSVs the programs upload: train.csv and test.csv (label first, no header), raw.csv (a header)."""
    directory = tmp_path / "data"
    directory.mkdir()
    rows = [line for line in (DATA / "iris_train.csv").read_text().splitlines() if line.strip()]
    (directory / "train.csv").write_text("\n".join(rows[:35]) + "\n")
    (directory / "test.csv").write_text("\n".join(rows[35:]) + "\n")
    (directory / "raw.csv").write_text((DATA / "iris_raw.csv").read_text())
    return directory


@pytest.fixture
def api(tmp_path: Path, docker_available: str, sample_image: str) -> Iterator[ApiServer]:
    with ApiServer(port=0, state_dir=tmp_path / "state") as server:
        yield server


def run_program(
    server: ApiServer, tripwire: _Tripwire, tmp_path: Path, name: str, body: str, *args: str
) -> dict[str, dict[str, Any]]:
    """Write PRELUDE + body to tmp_path/<name>.py, run it with the SDK's Python; return its RESULTs by step."""
    program = tmp_path / f"{name}.py"
    program.write_text(PRELUDE + "\n" + body)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        **server.environment(),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HTTP_PROXY": tripwire.url,
        "HTTPS_PROXY": tripwire.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    python = os.environ["SM_EMULATOR_SDK_PYTHON"]
    started = time.monotonic()
    proc = subprocess.run(
        [python, str(program), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT_S,
        check=False,
    )
    elapsed = time.monotonic() - started
    (tmp_path / f"{name}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    assert proc.returncode == 0, (
        f"{name}.py exited {proc.returncode} after {elapsed:.0f} s\n--- stdout ---\n{proc.stdout[-6000:]}"
        f"\n--- stderr ---\n{proc.stderr[-6000:]}"
    )
    results: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            value = json.loads(line[len("RESULT ") :])
            results[value["step"]] = value
    steps = ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in results.items() if "seconds" in v)
    print(f"{name}.py: {elapsed:.1f} s; {steps}")
    return results


def s3_text(server: ApiServer, uri: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = server.session.s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    text: str = body.decode()
    return text


def s3_keys(server: ApiServer, uri: str) -> list[str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    listed = server.session.s3.client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for obj in listed.get("Contents", [])]


def _classes(csv_text: str) -> list[int]:
    """The argmax column of each line of class probabilities (setosa, versicolor, virginica)."""
    rows = [[float(v) for v in line.split(",")] for line in csv_text.splitlines() if line.strip()]
    return [row.index(max(row)) for row in rows]


def _forget_in_memory_state() -> None:
    """Empty moto's S3 and Logs backends, module globals of this process, as a restarted server process has them."""
    from moto.logs.models import logs_backends
    from moto.s3.models import s3_backends

    s3_backends.reset()
    logs_backends.reset()


# -- the tests --------------------------------------------------------------------------------------------------
def test_fit_transform_deploy_predict_as_users_write_it(
    api: ApiServer, tripwire: _Tripwire, tmp_path: Path, data_dir: Path
) -> None:
    results = run_program(api, tripwire, tmp_path, "fit_transform_deploy", FIT_TRANSFORM_DEPLOY, str(data_dir))

    fit = results["fit"]
    training = api.backend.describe_training_job({"TrainingJobName": fit["job"]})
    assert training["TrainingJobStatus"] == "Completed"
    assert set(training["InputDataConfig"][i]["ChannelName"] for i in range(2)) == {"train", "test"}
    assert fit["model_data"] == training["ModelArtifacts"]["S3ModelArtifacts"]
    assert fit["model_data"].startswith(f"s3://{DEFAULT_BUCKET}/output/{fit['job']}/")

    transform = results["transform"]
    described = api.backend.describe_transform_job({"TransformJobName": transform["job"]})
    assert described["TransformJobStatus"] == "Completed"
    output = s3_text(api, f"{transform['output_path']}/test.csv.out")
    expected = [line.split(",")[0] for line in (data_dir / "test.csv").read_text().splitlines()]
    names = ["setosa", "versicolor", "virginica"]
    assert [names[i] for i in _classes(output)] == expected  # the tree fits these 10 rows of the iris data

    deploy = results["deploy"]
    assert _classes(deploy["prediction"]) == [0, 2]  # setosa, virginica

    bad = results["bad_row"]
    assert bad["error"] == "botocore.errorfactory.ModelError"
    assert bad["response"]["Error"]["Code"] == "ModelError"
    assert bad["response"]["OriginalStatusCode"] == 400
    assert "not-a-number" in bad["response"]["OriginalMessage"]

    with pytest.raises(ApiError, match="Could not find"):
        api.backend.describe_endpoint({"EndpointName": results["deleted"]["endpoint"]})


def test_processor_run(api: ApiServer, tripwire: _Tripwire, tmp_path: Path, data_dir: Path) -> None:
    results = run_program(api, tripwire, tmp_path, "processor_run", PROCESSOR_RUN, str(data_dir))

    run = results["run"]
    assert run["status"] == "Completed"
    described = api.backend.describe_processing_job({"ProcessingJobName": run["job"]})
    assert described["ProcessingJobStatus"] == "Completed"
    assert described["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.large"
    assert run["outputs"]["train"] == f"s3://{DEFAULT_BUCKET}/processed/train"
    train = s3_text(api, f"{run['outputs']['train']}/train.csv").splitlines()
    test = s3_text(api, f"{run['outputs']['test']}/test.csv").splitlines()
    assert (len(train), len(test)) == (36, 9)  # the 45 raw rows, 20 % held out


def test_pipeline_upsert_start_wait(api: ApiServer, tripwire: _Tripwire, tmp_path: Path, data_dir: Path) -> None:
    results = run_program(api, tripwire, tmp_path, "pipeline", PIPELINE, str(data_dir))

    pipeline = results["pipeline"]
    assert pipeline["created"] == pipeline["updated"]
    assert pipeline["status"] == "Succeeded"
    assert pipeline["steps"] == {
        "Split": "Succeeded",
        "Train": "Succeeded",
        "Model-CreateModel": "Succeeded",
        "Transform": "Succeeded",
    }
    described = api.backend.describe_pipeline_execution({"PipelineExecutionArn": pipeline["execution"]})
    assert described["PipelineExecutionStatus"] == "Succeeded"
    outputs = [key for key in s3_keys(api, f"s3://{DEFAULT_BUCKET}/pipeline/transform") if key.endswith(".out")]
    assert outputs == ["pipeline/transform/test/test.csv.out"]  # relative to the input prefix's "directory"
    assert len(_classes(s3_text(api, f"s3://{DEFAULT_BUCKET}/{outputs[0]}"))) == 9


def test_restart_keeps_jobs_and_the_model_deploys(
    tmp_path: Path, docker_available: str, sample_image: str, tripwire: _Tripwire, data_dir: Path
) -> None:
    state = tmp_path / "state"
    with ApiServer(port=0, state_dir=state) as first:
        before = run_program(first, tripwire, tmp_path, "restart_train", RESTART_TRAIN, str(data_dir))
    job = before["fit"]["job"]
    _forget_in_memory_state()  # what a new server process starts with

    with ApiServer(port=0, state_dir=state) as second:
        described = second.backend.describe_training_job({"TrainingJobName": job})
        assert described["TrainingJobStatus"] == "Completed"
        after = run_program(second, tripwire, tmp_path, "restart_deploy", RESTART_DEPLOY, str(data_dir), job)

    assert after["describe"]["status"] == "Completed"
    assert job in after["describe"]["listed"]
    assert after["describe"]["model_data"] == before["fit"]["model_data"]
    assert _classes(after["deploy"]["prediction"]) == [0]


TUNER = """\
from sagemaker.tuner import CategoricalParameter, HyperparameterTuner, IntegerParameter

s3_train = session.upload_data(f"{data}/train.csv", key_prefix="iris/train")
s3_test = session.upload_data(f"{data}/test.csv", key_prefix="iris/test")
est = Estimator(image_uri=image, role=role, instance_count=1, instance_type="ml.m5.large",
                output_path=f"s3://{bucket}/tuning", sagemaker_session=session)
tuner = HyperparameterTuner(
    est,
    objective_metric_name="test_accuracy",
    hyperparameter_ranges={"max_depth": IntegerParameter(1, 4), "criterion": CategoricalParameter(["gini", "entropy"])},
    metric_definitions=[{"Name": "test_accuracy", "Regex": "test_accuracy=([0-9.]+);"}],
    objective_type="Maximize",
    strategy="Random",
    max_jobs=4,
    max_parallel_jobs=2,
    random_seed=7,
)
t0 = time.time()
tuner.fit(inputs={"train": s3_train, "test": s3_test})
tuner.wait()
best = tuner.best_training_job()
description = tuner.describe()
jobs = session.sagemaker_client.list_training_jobs_for_hyper_parameter_tuning_job(
    HyperParameterTuningJobName=tuner.latest_tuning_job.name, SortBy="FinalObjectiveMetricValue")
attached = Estimator.attach(best, sagemaker_session=session)
result(step="tune", seconds=time.time() - t0, name=tuner.latest_tuning_job.name, best=best,
       status=description["HyperParameterTuningJobStatus"], counters=description["TrainingJobStatusCounters"],
       listed=[j["TrainingJobName"] for j in jobs["TrainingJobSummaries"]], model_data=attached.model_data)
"""


def test_hyperparameter_tuner_fit_wait_best(
    api: ApiServer, tripwire: _Tripwire, tmp_path: Path, data_dir: Path
) -> None:
    results = run_program(api, tripwire, tmp_path, "tuner", TUNER, str(data_dir))

    tune = results["tune"]
    assert tune["status"] == "Completed"
    assert tune["counters"]["Completed"] == 4
    assert len(tune["listed"]) == 4
    described = api.backend.describe_hyper_parameter_tuning_job({"HyperParameterTuningJobName": tune["name"]})
    summaries = api.backend.list_training_jobs_for_hyper_parameter_tuning_job(
        {"HyperParameterTuningJobName": tune["name"]}
    )["TrainingJobSummaries"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    best = described["BestTrainingJob"]
    assert tune["best"] == best["TrainingJobName"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values)
    training = api.backend.describe_training_job({"TrainingJobName": tune["best"]})
    assert tune["model_data"] == training["ModelArtifacts"]["S3ModelArtifacts"]


VARIANTS = """\
from sagemaker.predictor import Predictor
from sagemaker.session import production_variant

recorder = sys.argv[2]
for name, size in (("model-a", "1"), ("model-b", "2")):  # the recorder answers size bytes of "x"
    env = {"RECORDER_RESPONSE_BYTES": size}
    session.create_model(name, role, container_defs={"Image": recorder, "Environment": env})
endpoint = session.endpoint_from_production_variants(
    name="two-variants",
    production_variants=[
        production_variant("model-a", "ml.m5.large", 1, variant_name="A", initial_weight=1),
        production_variant("model-b", "ml.m5.large", 1, variant_name="B", initial_weight=0),
    ],
    wait=False,  # the SDK's waiter sleeps 30 s between polls; this program polls itself
)
while session.sagemaker_client.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Creating":
    time.sleep(0.2)
predictor = Predictor(endpoint, sagemaker_session=session)
untargeted = sorted({predictor.predict(b"1").decode() for _ in range(4)})
targeted = predictor.predict(b"1", target_variant="B").decode()
session.sagemaker_client.update_endpoint_weights_and_capacities(
    EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 0},
                                                        {"VariantName": "B", "DesiredWeight": 1}])
invoked = session.sagemaker_runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"1")["InvokedProductionVariant"]
described = session.sagemaker_client.describe_endpoint(EndpointName=endpoint)["ProductionVariants"]
result(step="variants", untargeted=untargeted, targeted=targeted, invoked=invoked,
       weights={v["VariantName"]: v["CurrentWeight"] for v in described})
predictor.delete_endpoint()
"""


def test_production_variants_target_variant_and_weights(
    api: ApiServer, tripwire: _Tripwire, tmp_path: Path, data_dir: Path, recorder_image: str
) -> None:
    results = run_program(api, tripwire, tmp_path, "variants", VARIANTS, str(data_dir), recorder_image)

    variants = results["variants"]
    assert variants["untargeted"] == ["x"]  # B's weight 0: only A answers untargeted requests
    assert variants["targeted"] == "xx"
    assert variants["invoked"] == "B"
    assert variants["weights"] == {"A": 0.0, "B": 1.0}


HETERO_FIT = """\
import importlib.util

from sagemaker.inputs import TrainingInput
from sagemaker.instance_group import InstanceGroup

# emulator/sdk_polls.py (stdlib only), loaded by path: the SDK's 30 s poll sleeps capped, as docs/sdk.md shows.
polls = importlib.util.spec_from_file_location("sdk_polls", sys.argv[2])
module = importlib.util.module_from_spec(polls)
polls.loader.exec_module(module)
module.fast_polls()

s3_train = session.upload_data(f"{data}/train.csv", key_prefix="hetero/train")
s3_test = session.upload_data(f"{data}/test.csv", key_prefix="hetero/test")
t0 = time.time()
groups = [InstanceGroup("data", "ml.c5.xlarge", 1), InstanceGroup("dnn", "ml.m5.large", 1)]
est = Estimator(image_uri=image, role=role, instance_groups=groups, output_path=f"s3://{bucket}/hetero",
                sagemaker_session=session)
both = ["data", "dnn"]
est.fit(inputs={"train": TrainingInput(s3_train, instance_groups=both),
                "test": TrainingInput(s3_test, instance_groups=both)})
result(step="fit", seconds=time.time() - t0, job=est.latest_training_job.name, model_data=est.model_data)
"""


def test_estimator_with_instance_groups_fits_on_a_heterogeneous_cluster(
    api: ApiServer, tripwire: _Tripwire, tmp_path: Path, data_dir: Path
) -> None:
    polls = Path(__file__).resolve().parents[2] / "emulator" / "sdk_polls.py"
    results = run_program(api, tripwire, tmp_path, "hetero_fit", HETERO_FIT, str(data_dir), str(polls))

    fit = results["fit"]
    described = api.backend.describe_training_job({"TrainingJobName": fit["job"]})
    assert described["TrainingJobStatus"] == "Completed"
    assert described["ResourceConfig"]["InstanceGroups"] == [
        {"InstanceGroupName": "data", "InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
        {"InstanceGroupName": "dnn", "InstanceType": "ml.m5.large", "InstanceCount": 1},
    ]
    assert "InstanceType" not in described["ResourceConfig"]
    sources = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in described["InputDataConfig"]}
    assert {name: source["InstanceGroupNames"] for name, source in sources.items()} == {
        "train": ["data", "dnn"],
        "test": ["data", "dnn"],
    }
    assert fit["model_data"] == described["ModelArtifacts"]["S3ModelArtifacts"]
