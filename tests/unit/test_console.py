"""The console, over HTTP, on a real API server whose jobs and endpoints run on the fake engine (``_fakes``).

What is checked: 1,000 seeded records render on every page; signed AWS calls still reach S3 and SageMaker; a
foreign Host and a request without the page's token are refused (and change nothing); a job's metric chart has
a point per value its logs printed; logs come in pieces after a cursor; the pipeline graph carries the statuses
ListPipelineExecutionSteps reports; invoke answers (and shows a ModelError); a contract failure's fix is read
back from JUnit XML.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from _fakes import IMAGE, JobsDocker
from botocore.exceptions import ClientError
from test_api_server import wait_for

from emulator.api.console import junit
from emulator.api.server import ApiServer
from emulator.config import EmulatorConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.bench_console import PIPELINE_DEFINITION, seed_records

ROLE = "arn:aws:iam::123456789012:role/Emulator"
BUCKET = "console-unit"


def _client(server: ApiServer, service: str) -> Any:
    keys = {"aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", **keys)  # type: ignore[call-overload]


class Console:
    """The server, a boto3 SageMaker client and the console's HTTP side."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.url = server.url
        self.sm: Any = _client(server, "sagemaker")
        self.s3: Any = _client(server, "s3")

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kw)

    def token(self) -> str:
        page = self.get("/").text
        found = re.search(r'<meta name="console-token" content="([^"]+)">', page)
        assert found, page[:500]
        return found.group(1)

    def post(self, action: str, payload: dict[str, Any], token: str | None, **headers: str) -> requests.Response:
        head = {"Content-Type": "application/json", **headers}
        if token is not None:
            head["X-Console-Token"] = token
        return requests.post(f"{self.url}/console/api/{action}", data=json.dumps(payload), headers=head, timeout=30)


@pytest.fixture
def config(tmp_path: Path) -> EmulatorConfig:
    (tmp_path / "work").mkdir()
    return EmulatorConfig(
        work_dir=str(tmp_path / "work"),
        stream_logs=False,
        training_stop_grace_s=0.5,
        serving_stop_grace_s=0.5,
        startup_timeout_s=5,
    )


@pytest.fixture
def console(config: EmulatorConfig) -> Iterator[Console]:
    with ApiServer(port=0, config=config, docker=JobsDocker()) as server:
        c = Console(server)
        c.s3.create_bucket(Bucket=BUCKET)
        yield c


def training(c: Console, name: str, env: dict[str, str], metrics: list[dict[str, str]] | None = None) -> None:
    c.sm.create_training_job(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={
            "TrainingImage": "fake-algo:latest",
            "TrainingInputMode": "File",
            "MetricDefinitions": metrics or [],
        },
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Environment=env,
    )


def test_a_thousand_seeded_records_render_on_every_page(tmp_path: Path, config: EmulatorConfig) -> None:
    state = tmp_path / "state"
    seed_records(state, 1000)
    db = sqlite3.connect(state / "state.sqlite")
    names = {
        kind: [n for (n,) in db.execute("SELECT name FROM resources WHERE kind = ?", (kind,))]
        for kind in ("TrainingJob", "ProcessingJob", "Endpoint", "PipelineExecution")
    }
    db.close()
    assert len(names["TrainingJob"]) == 1000
    with ApiServer(port=0, state_dir=state, config=config, docker=JobsDocker()) as server:
        c = Console(server)
        listed = c.get("/console/training")
        assert listed.status_code == 200
        linked = set(re.findall(r'<a href="/console/training/([^"]+)">', listed.text))
        assert linked == set(names["TrainingJob"])
        assert set(re.findall(r'<a href="/console/processing/([^"]+)">', c.get("/console/processing").text)) == set(
            names["ProcessingJob"]
        )
        overview = c.get("/")
        assert overview.status_code == 200
        assert "Training jobs</a> (1000)" in overview.text
        executions = c.get("/console/executions")
        targets = re.findall(r'<a href="(/console/pipelines/[^"]+/executions/[^"]+)">', executions.text)
        assert len(targets) == len(names["PipelineExecution"])
        for path in [
            f"/console/training/{names['TrainingJob'][0]}",
            f"/console/endpoints/{names['Endpoint'][0]}",
            targets[0],
            "/console/pipelines",
            "/console/models",
            "/console/report",
        ]:
            answer = c.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
            assert answer.headers["Content-Type"].startswith("text/html")
        fragment = c.get(f"/console/training/{names['TrainingJob'][0]}?fragment=1").json()
        assert {"head", "summary", "metrics", "describe"} <= set(fragment["parts"])


def test_signed_calls_still_reach_s3_and_sagemaker_and_unknown_pages_are_404(console: Console) -> None:
    assert BUCKET in [b["Name"] for b in console.s3.list_buckets()["Buckets"]]  # GET / signed: moto's S3
    assert console.sm.list_training_jobs()["TrainingJobSummaries"] == []
    page = console.get("/")
    assert page.status_code == 200
    assert "<title>Overview" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert console.get("/console/nothing-here").status_code == 404
    assert console.get("/console/training/no-such-job").status_code == 404


def test_a_foreign_host_is_refused(console: Console) -> None:
    answer = console.get("/", headers={"Host": f"attacker.example:{console.server.port}"})
    assert answer.status_code == 403
    assert "console-token" not in answer.text


def test_a_state_change_needs_the_page_token(console: Console) -> None:
    name = f"run-{uuid.uuid4().hex[:8]}"
    training(console, name, {"FAKE_RUN_UNTIL_STOPPED": "1"})
    wait_for(lambda: console.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"InProgress"})
    payload = {"kind": "training", "name": name}
    assert console.post("stop", payload, None).status_code == 403
    assert console.post("stop", payload, "not-the-token").status_code == 403
    token = console.token()
    assert console.post("stop", payload, token, Origin="http://attacker.example").status_code == 403
    assert console.post("delete-endpoint", {"name": "x"}, None).status_code == 403
    time.sleep(0.3)
    assert console.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    page = console.get(f"/console/training/{name}").text
    assert 'data-action="stop"' in page
    ok = console.post("stop", payload, token, Origin=console.url)
    assert ok.status_code == 200, ok.text
    wait_for(lambda: console.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"Stopped"})


def test_a_job_page_charts_the_metrics_its_logs_printed_and_logs_come_after_a_cursor(console: Console) -> None:
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    values = [0.93, 0.5, 0.25, 0.125]
    lines = [f"epoch={i} loss={v} acc={1 - v}" for i, v in enumerate(values)]
    metrics = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}, {"Name": "acc", "Regex": r"acc=([0-9.]+)"}]
    training(console, name, {"FAKE_LOG": "|".join(lines), "FAKE_RUN_S": "0.2"}, metrics)
    wait_for(lambda: console.sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"Completed"})
    page = console.get(f"/console/training/{name}").text
    charts = dict(re.findall(r'<svg class="chart" data-metric="([^"]+)"(.*?)</svg>', page, re.S))
    assert set(charts) == {"loss", "acc"}
    assert [float(v) for v in re.findall(r'data-v="([^"]+)"', charts["loss"])] == values
    assert [float(v) for v in re.findall(r'data-v="([^"]+)"', charts["acc"])] == pytest.approx([1 - v for v in values])
    first = console.get(f"/console/api/logs/training/{name}").json()
    assert [text for _, text in first["lines"]] == lines
    again = console.get(f"/console/api/logs/training/{name}", params={"cursor": first["cursor"]}).json()
    assert again["lines"] == []
    assert again["done"] is True


def test_the_execution_graph_carries_each_step_status_and_the_steps_link(console: Console) -> None:
    pipeline = f"graph-{uuid.uuid4().hex[:8]}"
    console.sm.create_pipeline(PipelineName=pipeline, PipelineDefinition=json.dumps(PIPELINE_DEFINITION), RoleArn=ROLE)
    arn = console.sm.start_pipeline_execution(PipelineName=pipeline)["PipelineExecutionArn"]
    wait_for(
        lambda: console.sm.describe_pipeline_execution(PipelineExecutionArn=arn),
        "PipelineExecutionStatus",
        {"Failed", "Succeeded"},
    )
    steps = console.sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    listed = console.get("/console/executions").text
    path = f"/console/pipelines/{pipeline}/executions/{arn.rsplit('/', 1)[-1]}"
    assert f'href="{path}"' in listed
    page = console.get(path).text
    drawn = dict(re.findall(r'<g class="step" data-step="([^"]+)" data-status="([^"]*)"', page))
    assert drawn == {s["StepName"]: s["StepStatus"] for s in steps}
    assert len(set(drawn.values())) > 1  # the definition makes steps end differently
    edges = set(re.findall(r'<path class="edge" data-from="([^"]+)" data-to="([^"]+)"', page))
    assert edges == {("Check", "TooGood"), ("Check", "Fine")}
    assert console.get(f"/console/pipelines/{pipeline}").status_code == 200


def test_a_tuning_job_page_lists_its_training_jobs_and_links_the_best(console: Console) -> None:
    name = f"tune-{uuid.uuid4().hex[:8]}"
    definition = {
        "RoleArn": ROLE,
        "AlgorithmSpecification": {
            "TrainingImage": "fake-algo:latest",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"}],
        },
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": {"FAKE_LOG": "score=0.75"},
    }
    console.sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "x", "MinValue": "1", "MaxValue": "5"}]},
        },
        TrainingJobDefinition=definition,
    )
    done = wait_for(
        lambda: console.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        "HyperParameterTuningJobStatus",
        {"Completed", "Failed"},
    )
    trainings = console.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    page = console.get(f"/console/tuning/{name}").text
    linked = set(re.findall(r'<a href="/console/training/([^"]+)">', page))
    assert linked == {t["TrainingJobName"] for t in trainings["TrainingJobSummaries"]}
    assert f'best: <a href="/console/training/{done["BestTrainingJob"]["TrainingJobName"]}">' in page
    assert "score = 0.75" in page
    assert f'href="/console/tuning/{name}"' in console.get("/console/tuning").text


def test_invoke_answers_and_shows_a_model_error(console: Console) -> None:
    model, cfg, endpoint = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("model", "config", "endpoint"))
    console.sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "Environment": {"RECORDER_FAIL_ON": "boom"}},
    )
    console.sm.create_endpoint_config(
        EndpointConfigName=cfg,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    console.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=cfg)
    wait_for(lambda: console.sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus", {"InService"})
    page = console.get(f"/console/endpoints/{endpoint}").text
    assert f'data-endpoint="{endpoint}"' in page
    token = console.token()
    sent = {"name": endpoint, "body": "1,2,3\n4,5,6", "contentType": "text/csv", "accept": "text/csv"}
    answer = console.post("invoke", sent, token).json()
    assert answer["ok"] is True
    assert answer["body"] == sent["body"]  # the recorder echoes
    failed = console.post("invoke", {**sent, "body": "boom"}, token).json()
    assert failed["ok"] is False
    assert failed["error"] == "ModelError"
    assert failed["originalStatusCode"] == 400
    assert console.post("invoke", sent, None).status_code == 403
    assert console.post("delete-endpoint", {"name": endpoint}, token).status_code == 200
    with pytest.raises(ClientError):
        console.sm.describe_endpoint(EndpointName=endpoint)


def test_a_contract_failure_reads_back_with_its_fix() -> None:
    from contract_tests._report import CHECKS, violation

    with pytest.raises(pytest.fail.Exception) as failed:
        violation("s21", "the answer was 500", sent="POST /invocations", got="500", logs="line 1\nline 2")
    message = str(failed.value)
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        '<testcase classname="contract_tests.test_serving_contract" name="test_s21_invocations_answer" time="0.5">'
        f'<failure message="{_attr(message)}">{_text(message)}</failure></testcase>'
        '<testcase classname="contract_tests.test_serving_contract" name="test_s20_ping_healthy" time="0.1"/>'
        '<testcase classname="contract_tests.test_batch_contract" name="test_b31_execution_parameters_schema" '
        'time="0"><skipped message="[b31] the image does not claim batch_transform">skip</skipped></testcase>'
        "</testsuite></testsuites>"
    )
    results = junit.parse(xml)
    assert [(r.check_id, r.outcome) for r in results] == [("s21", "failed"), ("s20", "passed"), ("b31", "skipped")]
    assert results[0].fix == CHECKS["s21"].fix
    assert results[0].level == CHECKS["s21"].level
    html = junit.render(results, "report.xml")
    assert _text(CHECKS["s21"].fix) in html
    with pytest.raises(junit.ReportError):
        junit.parse("<html>not a report</html>")


def test_the_report_page_shows_the_configured_file_and_an_uploaded_one(tmp_path: Path, config: EmulatorConfig) -> None:
    report = tmp_path / "junit.xml"
    with ApiServer(port=0, config=config, docker=JobsDocker(), contract_report=report) as server:
        c = Console(server)
        assert "does not exist yet" in c.get("/console/report").text
        report.write_text(
            '<testsuites><testsuite><testcase classname="c" name="test_t01_train_succeeds" time="1"/></testsuite>'
            "</testsuites>"
        )
        assert 'data-check="t01" data-outcome="passed"' in c.get("/console/report").text
        token = c.token()
        uploaded = c.post("report", {"name": "x.xml", "xml": report.read_text()}, token)
        assert uploaded.status_code == 200
        assert 'data-check="t01"' in uploaded.json()["html"]
        assert c.post("report", {"name": "x.xml", "xml": "nope"}, token).status_code == 400


def _attr(text: str) -> str:
    return _text(text).replace('"', "&quot;").replace("\n", "&#10;")


def _text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
