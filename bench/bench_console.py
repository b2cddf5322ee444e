"""8. The console: every page under 100 ms on the server with 1,000 jobs.

The API server's store is seeded with 1,000 training jobs, 200 processing and 200 transform jobs, 50 models,
50 endpoints, 10 pipelines with 100 executions (Describe-shaped records, as the server writes them), plus log
lines with metrics for one training job; the server restores them as after a restart. Each page is rendered
``repeats x 20`` times through the console itself (routing, the views, the template: the server-side time,
no socket), interleaved with the same page fetched over HTTP on 127.0.0.1 (the baseline column: what a browser
waits, socket and WSGI included). No container runs: endpoints are seeded Failed, so none is brought back.
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import Options, Result, Row, interleave, median, now, spread

#: The promise: every page under this many milliseconds on the server.
GOAL_MS = 100.0
_PER_REPEAT = 20
_REGION, _ACCOUNT = "us-east-1", "123456789012"
PIPELINE_DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}],
    "Steps": [
        {
            "Name": "Check",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    {"Type": "GreaterThanOrEqualTo", "LeftValue": 1, "RightValue": {"Get": "Parameters.Threshold"}}
                ],
                "IfSteps": [{"Name": "TooGood", "Type": "Fail", "Arguments": {"ErrorMessage": "stop here"}}],
                "ElseSteps": [{"Name": "Fine", "Type": "Fail", "Arguments": {"ErrorMessage": "not reached"}}],
            },
        }
    ],
}


def _arn(resource: str, name: str) -> str:
    return f"arn:aws:sagemaker:{_REGION}:{_ACCOUNT}:{resource}/{name.lower()}"


def seed_records(state_dir: Path, jobs: int = 1000) -> dict[str, Any]:
    """Write a server's records into ``state_dir/state.sqlite``; returns names to open pages with."""
    from emulator.api.store import Record, Store

    store = Store(state_dir / "state.sqlite")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = ("Completed", "Failed", "Stopped")

    def put(kind: str, name: str, i: int, data: dict[str, Any], arn: str | None = None) -> None:
        created = start + timedelta(seconds=i)
        arn = arn or _arn(kind.lower(), name)
        store.put(Record(kind, name, arn, created, {"CreationTime": created, **data}))

    for kind, count, extra in (
        ("TrainingJob", jobs, "TrainingEndTime"),
        ("ProcessingJob", jobs // 5, "ProcessingEndTime"),
        ("TransformJob", jobs // 5, "TransformEndTime"),
    ):
        for i in range(count):
            name = f"{kind[:-3].lower()}-{i:05d}"
            data: dict[str, Any] = {
                f"{kind}Name": name,
                f"{kind}Arn": _arn(kind.lower(), name),
                f"{kind}Status": statuses[i % 3],
                extra: start + timedelta(seconds=i + 60),
                "LastModifiedTime": start + timedelta(seconds=i + 60),
            }
            if i % 3 == 1:
                data["FailureReason"] = f"AlgorithmError: exit code 1 (job {i})"
            if kind == "TrainingJob":
                data["AlgorithmSpecification"] = {
                    "TrainingImage": "example:latest",
                    "TrainingInputMode": "File",
                    "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}],
                }
                data["FinalMetricDataList"] = [{"MetricName": "loss", "Value": 0.1, "Timestamp": start}]
            put(kind, name, i, data)
    for i in range(jobs // 20):
        model = f"model-{i:04d}"
        put("Model", model, i, {"ModelName": model, "PrimaryContainer": {"Image": "example:latest"}})
        put(
            "EndpointConfig",
            f"config-{i:04d}",
            i,
            {
                "EndpointConfigName": f"config-{i:04d}",
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1}],
            },
        )
        put(
            "Endpoint",
            f"endpoint-{i:04d}",
            i,
            {
                "EndpointName": f"endpoint-{i:04d}",
                "EndpointConfigName": f"config-{i:04d}",
                "EndpointStatus": "Failed",
                "FailureReason": "seeded",
            },
        )
    executions: list[tuple[str, str]] = []
    for p in range(max(jobs // 100, 1)):
        pipeline = f"pipeline-{p:02d}"
        pipeline_arn = _arn("pipeline", pipeline)
        put(
            "Pipeline",
            pipeline,
            p,
            {
                "PipelineName": pipeline,
                "PipelineArn": pipeline_arn,
                "PipelineStatus": "Active",
                "PipelineDefinition": json.dumps(PIPELINE_DEFINITION),
            },
        )
        for e in range(10):
            execution_id = f"{p:02d}exec{e:05d}"
            arn = f"{pipeline_arn}/execution/{execution_id}"
            steps = [
                {"StepName": "Check", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
                {"StepName": "TooGood", "StepStatus": "Failed", "FailureReason": "stop here"},
                {"StepName": "Fine", "StepStatus": "NotExecuted"},
            ]
            put(
                "PipelineExecution",
                arn,
                e,
                {
                    "PipelineArn": pipeline_arn,
                    "PipelineExecutionArn": arn,
                    "PipelineExecutionDisplayName": f"execution-{execution_id}",
                    "PipelineExecutionStatus": "Failed",
                    "Steps": steps,
                },
                arn=arn,
            )
            executions.append((pipeline, execution_id))
    store.close()
    return {
        "training": "training-00000",
        "execution": executions[0],
        "endpoint": "endpoint-0000",
        "model": "model-0000",
    }


def seed_logs(server: Any, job: str, lines: int = 500) -> None:
    """Log lines of a training job, with a ``loss=`` metric on each (what its page parses and draws)."""
    for i in range(lines):
        server.backend.logs.put("/aws/sagemaker/TrainingJobs", f"{job}/algo-1-1", f"epoch={i} loss={1 / (i + 1):.4f}")


def pages(names: dict[str, Any]) -> dict[str, str]:
    """The console's pages, by label."""
    pipeline, execution_id = names["execution"]
    return {
        "overview": "/",
        "training list (1,000 rows)": "/console/training",
        "training job (500 log lines, chart)": f"/console/training/{names['training']}",
        "training job, live parts": f"/console/training/{names['training']}?fragment=1",
        "job logs (JSON)": f"/console/api/logs/training/{names['training']}",
        "executions list": "/console/executions",
        "pipeline execution (graph)": f"/console/pipelines/{pipeline}/executions/{execution_id}",
        "endpoint": f"/console/endpoints/{names['endpoint']}",
        "model": f"/console/models/{names['model']}",
        "contract report": "/console/report",
    }


def render_once(server: Any, path: str) -> int:
    """One page through the console itself, as the server renders it (no socket): its size in bytes."""
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": f"127.0.0.1:{server.port}",
    }
    status: list[str] = []
    body = b"".join(server.console(environ, lambda s, h: status.append(s)))
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"{path}: {status}")
    return len(body)


def run(opts: Options) -> Result:
    from emulator.api.server import ApiServer
    from emulator.config import EmulatorConfig

    result = Result("console")
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        state = Path(tmp)
        names = seed_records(state, 1000)
        report = state / "junit.xml"
        report.write_text(_junit(38))
        config = EmulatorConfig(work_dir=str(state / "work"), stream_logs=False)
        with ApiServer(port=0, state_dir=state, config=config, contract_report=report) as server:
            seed_logs(server, names["training"])
            for label, path in pages(names).items():
                render_once(server, path)  # warm: imports, caches

                def inside(path: str = path) -> float:
                    t0 = now()
                    render_once(server, path)
                    return (now() - t0) * 1000

                def http(path: str = path) -> float:
                    t0 = now()
                    with urllib.request.urlopen(server.url + path, timeout=30) as answer:
                        answer.read()
                    return (now() - t0) * 1000

                runs = interleave({"http": http, "server": inside}, opts.repeats * _PER_REPEAT)
                value = median(runs["server"])
                result.rows.append(
                    Row(
                        "console",
                        f"{label}: server-side render",
                        "same page over HTTP",
                        median(runs["http"]),
                        value,
                        unit="ms",
                        goal=f"< {GOAL_MS:g} ms",
                        met=value < GOAL_MS,
                        n=len(runs["server"]),
                        note=f"{label}: server ms min/median/max {spread(runs['server'], fmt='{:.1f}')}",
                        has_ratio=False,
                    )
                )
    return result


def _junit(cases: int) -> str:
    """A JUnit XML report shaped like the contract suite's (a failure with its fix every fifth check)."""
    rows = []
    for i in range(cases):
        name = f"test_t{i:02d}_check"
        failure = (
            f'<failure message="[t{i:02d}] MUST: check {i} -- it failed">[t{i:02d}] MUST: check {i} -- it failed\n'
            f"  fix:      do the right thing {i}</failure>"
            if i % 5 == 0
            else ""
        )
        rows.append(f'<testcase classname="contract_tests.t" name="{name}" time="0.1">{failure}</testcase>')
    return f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{"".join(rows)}</testsuite></testsuites>'
