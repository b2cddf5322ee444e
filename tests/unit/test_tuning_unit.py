"""Hyperparameter tuning without an engine: parsing, the strategy, early stopping, and the tuning job on the fake
engine (``_fakes.JobsDocker``) whose training "containers" print an objective computed from their hyperparameters.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from _fakes import CONFIG, JobsDocker

from emulator import constants
from emulator.errors import InvalidSpec
from emulator.tuning import TuningJob, list_training_jobs
from emulator.tuning.spec import Range, parse
from emulator.tuning.strategy import Strategy

HP_FILE = "/opt/ml/input/config/hyperparameters.json"
BONUS = {"a": 0.0, "b": 2.0, "c": 1.0}


def score(hp: dict[str, str]) -> float:
    """The known surface: best at x=3, kind=b."""
    return -((float(hp["x"]) - 3.0) ** 2) + BONUS[hp.get("kind", "a")]


class SurfaceDocker(JobsDocker):  # type: ignore[misc]
    """Training hosts print ``score=`` lines from their hyperparameters (two epochs), or none with ``silent``."""

    def __init__(self, *, silent: bool = False, hold: threading.Event | None = None) -> None:
        super().__init__()
        self.silent = silent
        self.hold = hold
        self.seen: list[dict[str, str]] = []

    @staticmethod
    def hyperparameters(c: Any) -> dict[str, str]:
        """hyperparameters.json as the container sees it: a file written into it, or one under a bound dir."""
        if HP_FILE in c.spec.files:
            return dict(json.loads(c.spec.files[HP_FILE]))
        for m in c.spec.mounts:
            target = m.target.rstrip("/") + "/"
            if m.source and HP_FILE.startswith(target):
                return dict(json.loads((Path(m.source) / HP_FILE[len(target) :]).read_text()))
        raise AssertionError(f"no {HP_FILE} in the container's spec")

    def start(self, container_id: str) -> None:
        c = self.containers[container_id]
        if c.spec.publish_port is None:
            hp = self.hyperparameters(c)
            self.seen.append(hp)
            final = score(hp)
            c.env["FAKE_LOG"] = "no metric here" if self.silent else f"epoch 1 score={final - 10}|score={final}"
            if self.hold is not None:
                c.env["FAKE_RUN_UNTIL_STOPPED"] = "1"
        super().start(container_id)


def request(tmp_path: Path, **config: Any) -> dict[str, Any]:
    ranges = config.pop(
        "ranges",
        {
            "IntegerParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "6"}],
            "CategoricalParameterRanges": [{"Name": "kind", "Values": ["a", "b", "c"]}],
        },
    )
    return {
        "HyperParameterTuningJobName": config.pop("name", "unit-tune"),
        "HyperParameterTuningJobConfig": {
            "Strategy": config.pop("strategy", "Random"),
            "HyperParameterTuningJobObjective": {"Type": config.pop("type", "Maximize"), "MetricName": "score"},
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": config.pop("jobs", 6),
                "MaxParallelTrainingJobs": config.pop("parallel", 2),
            },
            "ParameterRanges": ranges,
            **config,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": "surface:latest",
                "MetricDefinitions": [{"Name": "score", "Regex": r"score=(-?[0-9.]+)"}],
            },
            "StaticHyperParameters": {"fixed": "1"},
            "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        },
    }


# -- parsing -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Smart"), "is not one of"),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"][0].update(
                MinValue="ten"
            ),
            "'ten' is not an integer",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"][0].update(
                MinValue="9"
            ),
            "is above MaxValue",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"][0].update(
                ScalingType="Logarithmic"
            ),
            "Logarithmic scaling needs MinValue above 0",
        ),
        (
            lambda r: r["TrainingJobDefinition"]["AlgorithmSpecification"].update(MetricDefinitions=[]),
            "A metric is required for this hyperparameter tuning job objective",
        ),
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Grid"), "Grid takes CategoricalParameterRanges"),
        (lambda r: r["TrainingJobDefinition"].update(StaticHyperParameters={"x": "1"}), "both a static"),
        (lambda r: r.update(HyperParameterTuningJobName="bad_name"), "does not match the pattern"),
        (lambda r: r["HyperParameterTuningJobConfig"]["ResourceLimits"].pop("MaxParallelTrainingJobs"), "missing"),
    ],
)
def test_bad_requests_are_one_line_errors(tmp_path: Path, change: Any, message: str) -> None:
    req = request(tmp_path)
    change(req)
    with pytest.raises(InvalidSpec, match=re.escape(message)) as info:
        parse(req)
    assert "\n" not in str(info.value)


def test_grid_runs_every_combination_once(tmp_path: Path) -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "x", "Values": ["1", "3", "5"]},
            {"Name": "kind", "Values": ["a", "b"]},
        ]
    }
    spec = parse(request(tmp_path, strategy="Grid", ranges=ranges, jobs=None))
    assert spec.max_jobs == 6
    strategy = Strategy("Grid", spec.definitions[0].ranges, maximize=True, seed=1)
    asked = {tuple(sorted(strategy.ask().hyperparameters.items())) for _ in range(6)}
    assert len(asked) == 6


# -- the strategy ------------------------------------------------------------------------------------------------
RANGES = (
    Range("n", "Integer", 1, 100, "Logarithmic"),
    Range("lr", "Continuous", 0.001, 0.1, "Logarithmic"),
    Range("momentum", "Continuous", 0.5, 0.999, "ReverseLogarithmic"),
    Range("opt", "Categorical", values=("sgd", "adam")),
)


@pytest.mark.parametrize("name", ["Random", "Bayesian", "Hyperband"])
def test_values_are_strings_within_their_ranges_and_a_seed_repeats_them(name: str) -> None:
    def run(seed: int) -> list[dict[str, str]]:
        strategy = Strategy(name, RANGES, maximize=False, seed=seed)
        out = []
        for _ in range(8):
            trial = strategy.ask()
            out.append(trial.hyperparameters)
            strategy.tell(trial, float(trial.hyperparameters["lr"]))
        return out

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    for hp in first:
        assert 1 <= int(hp["n"]) <= 100
        assert 0.001 <= float(hp["lr"]) <= 0.1
        assert 0.5 <= float(hp["momentum"]) <= 0.999
        assert hp["opt"] in ("sgd", "adam")


def test_early_stopping_stops_a_job_that_trails_the_median() -> None:
    strategy = Strategy("Random", [Range("x", "Integer", 0, 9)], maximize=True, early_stopping=True, seed=0)
    for final in range(constants.EARLY_STOPPING_MIN_JOBS):
        trial = strategy.ask()
        assert not any(strategy.report(trial, step, 0.5 + 0.1 * step) for step in (1, 2, 3))
        strategy.tell(trial, 0.8 + final * 0.01)
    good, bad = strategy.ask(), strategy.ask()
    assert not strategy.report(good, 1, 0.9)
    assert strategy.report(bad, 1, 0.1)


def test_without_early_stopping_nothing_is_stopped() -> None:
    strategy = Strategy("Random", [Range("x", "Integer", 0, 9)], maximize=True, seed=0)
    for _ in range(4):
        trial = strategy.ask()
        strategy.report(trial, 1, 1.0)
        strategy.tell(trial, 1.0)
    assert not strategy.report(strategy.ask(), 1, -100.0)


def test_list_sorts_and_filters_as_the_api() -> None:
    rows = [
        {"TrainingJobName": "t-002", "TrainingJobStatus": "Completed", "CreationTime": 2,
         "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "m", "Value": 0.5}},
        {"TrainingJobName": "t-001", "TrainingJobStatus": "Failed", "CreationTime": 1},
        {"TrainingJobName": "t-003", "TrainingJobStatus": "Completed", "CreationTime": 3,
         "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "m", "Value": 0.9}},
    ]  # fmt: skip

    def names(out: list[dict[str, Any]]) -> list[str]:
        return [r["TrainingJobName"] for r in out]

    assert names(list_training_jobs(rows)) == ["t-001", "t-002", "t-003"]
    by_value = list_training_jobs(rows, sort_by="FinalObjectiveMetricValue", sort_order="Descending")
    assert names(by_value) == ["t-003", "t-002", "t-001"]
    assert names(list_training_jobs(rows, status_equals="Failed")) == ["t-001"]
    assert names(list_training_jobs(rows, sort_by="CreationTime", sort_order="Descending")) == [
        "t-003",
        "t-002",
        "t-001",
    ]


# -- the tuning job on the fake engine ---------------------------------------------------------------------------
def test_the_best_job_is_the_best_of_the_surface(tmp_path: Path) -> None:
    docker = SurfaceDocker()
    job = TuningJob(request(tmp_path, strategy="Bayesian", jobs=12, RandomSeed=5), docker=docker, config=CONFIG)
    result = job.run()
    summaries = job.training_job_summaries()
    assert result["HyperParameterTuningJobStatus"] == "Completed"
    assert len(summaries) == len(docker.seen) == 12
    assert all(re.fullmatch(r"unit-tune-\d{3}-[0-9a-f]{8}", s["TrainingJobName"]) for s in summaries)
    assert [s["TrainingJobName"][10:13] for s in summaries] == [f"{i:03d}" for i in range(1, 13)]
    assert all(hp["fixed"] == "1" for hp in docker.seen)
    truth = max(score(hp) for hp in docker.seen)
    best = result["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == truth
    assert score(best["TunedHyperParameters"]) == truth
    assert result["TrainingJobStatusCounters"]["Completed"] == 12
    assert result["ObjectiveStatusCounters"]["Succeeded"] == 12
    assert docker.running() == []


def test_a_job_that_emits_no_objective_fails_with_the_platforms_reason(tmp_path: Path) -> None:
    job = TuningJob(request(tmp_path, jobs=3), docker=SurfaceDocker(silent=True), config=CONFIG)
    result = job.run()
    assert result["HyperParameterTuningJobStatus"] == "Failed"
    assert result["FailureReason"].startswith("No training job succeeded after 3 attempts")
    assert result["TrainingJobStatusCounters"]["NonRetryableError"] == 3
    assert result["ObjectiveStatusCounters"]["Failed"] == 3
    assert "BestTrainingJob" not in result
    for training in job.training_jobs():
        described = training.describe()
        assert described["TrainingJobStatus"] == "Failed"
        assert described["FailureReason"] == constants.NO_OBJECTIVE_REASON


def test_warm_start_feeds_the_parents_jobs(tmp_path: Path) -> None:
    first = TuningJob(request(tmp_path, name="parent", jobs=3), docker=SurfaceDocker(), config=CONFIG).run()
    assert first["HyperParameterTuningJobStatus"] == "Completed"
    child_req = request(tmp_path, name="child", jobs=2)
    child_req["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}],
        "WarmStartType": "IdenticalDataAndAlgorithm",
    }
    child = TuningJob(child_req, docker=SurfaceDocker(), config=CONFIG)
    assert child.warm_started == 3
    assert (tmp_path / "out" / "parent" / "tuning-job.json").is_file()
    child_req["WarmStartConfig"]["ParentHyperParameterTuningJobs"] = [{"HyperParameterTuningJobName": "nobody"}]
    with pytest.raises(InvalidSpec, match="parent tuning job 'nobody' is unknown"):
        TuningJob(child_req, docker=SurfaceDocker(), config=CONFIG)


def test_stop_ends_every_training_job_and_the_tuning_job_stopped(tmp_path: Path) -> None:
    docker = SurfaceDocker(hold=threading.Event())
    job = TuningJob(request(tmp_path, jobs=4, parallel=2), docker=docker, config=CONFIG).start()
    while len(docker.seen) < min(2, job.parallel):
        threading.Event().wait(0.05)
    job.stop(grace_s=0)
    result = job.wait(timeout_s=30)
    assert result["HyperParameterTuningJobStatus"] == "Stopped"
    assert result["TrainingJobStatusCounters"]["Stopped"] == len(docker.seen)
    assert [status for status, _ in job.transitions] == ["InProgress", "Stopping", "Stopped"]
    assert docker.running() == []


# -- the API server's operations (boto3 against the server, fake engine) ---------------------------------------
def test_api_server_tuning_operations(tmp_path: Path) -> None:
    import boto3

    from emulator.api.server import ApiServer
    from emulator.config import EmulatorConfig

    work = tmp_path / "work"
    work.mkdir()
    config = EmulatorConfig(work_dir=str(work), stream_logs=False, training_stop_grace_s=0.5)
    docker = SurfaceDocker()
    with ApiServer(port=0, config=config, docker=docker, state_dir=tmp_path / "state") as server:
        sm = boto3.session.Session().client(
            "sagemaker", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="x",
        )  # fmt: skip
        req = request(tmp_path, name="api-tune", jobs=4)
        req["TrainingJobDefinition"].update(
            RoleArn="arn:aws:iam::123456789012:role/Emulator",
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )
        req["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingInputMode"] = "File"
        arn = sm.create_hyper_parameter_tuning_job(**req)["HyperParameterTuningJobArn"]
        assert arn.endswith(":hyper-parameter-tuning-job/api-tune")
        with pytest.raises(sm.exceptions.ClientError, match="already exists"):
            sm.create_hyper_parameter_tuning_job(**req)
        for _ in range(600):
            described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="api-tune")
            if described["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
                break
            threading.Event().wait(0.05)
        assert described["HyperParameterTuningJobStatus"] == "Completed"
        best = described["BestTrainingJob"]
        assert score(best["TunedHyperParameters"]) == max(score(hp) for hp in docker.seen)
        listed = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="api-tune", SortBy="FinalObjectiveMetricValue", SortOrder="Descending"
        )["TrainingJobSummaries"]
        assert len(listed) == 4
        assert listed[0]["TrainingJobName"] == best["TrainingJobName"]
        training = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
        assert training["TuningJobArn"] == arn
        assert training["TrainingJobStatus"] == "Completed"
        assert training["HyperParameters"]["fixed"] == "1"
        tuning_jobs = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
        assert [t["HyperParameterTuningJobName"] for t in tuning_jobs] == ["api-tune"]
    with ApiServer(port=0, config=config, docker=SurfaceDocker(), state_dir=tmp_path / "state") as again:
        after = again.backend.list_training_jobs_for_hyper_parameter_tuning_job(
            {
                "HyperParameterTuningJobName": "api-tune",
                "SortBy": "FinalObjectiveMetricValue",
                "SortOrder": "Descending",
            }
        )["TrainingJobSummaries"]  # from the stored training jobs, after a restart
        assert [s["TrainingJobName"] for s in after] == [s["TrainingJobName"] for s in listed]
        assert [s["TunedHyperParameters"] for s in after] == [s["TunedHyperParameters"] for s in listed]
        restored = again.backend.describe_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "api-tune"})
        assert restored["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]


def test_a_tuning_step_in_a_pipeline(tmp_path: Path) -> None:
    from emulator.pipelines import PipelineExecution

    arguments = {k: v for k, v in request(tmp_path, jobs=3).items() if k != "HyperParameterTuningJobName"}
    best_model = {
        "Std:Join": {
            "On": "/",
            "Values": [str(tmp_path / "out"), {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}],
        }
    }
    doc = {
        "Version": "2020-12-01",
        "Parameters": [],
        "Steps": [
            {"Name": "Tune", "Type": "Tuning", "Arguments": arguments},
            {
                "Name": "Check",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "GreaterThanOrEqualTo",
                            "LeftValue": {
                                "Get": "Steps.Tune.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value"
                            },
                            "RightValue": -100.0,
                        },
                        {"Type": "Equals", "LeftValue": best_model, "RightValue": best_model},
                    ]
                },
            },
        ],
    }
    docker = SurfaceDocker()
    execution = PipelineExecution(doc, docker=docker, config=CONFIG)
    result = execution.run()
    assert result["PipelineExecutionStatus"] == "Succeeded", execution.list_steps()
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert steps["Check"]["Metadata"]["Condition"]["Outcome"] == "True"
    arn = steps["Tune"]["Metadata"]["TuningJob"]["Arn"]
    assert re.search(r":hyper-parameter-tuning-job/pipelines-[a-z0-9]+$", arn)
    properties = execution.states["Tune"].properties
    assert properties is not None
    summaries = properties["TrainingJobSummaries"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert values == sorted(values, reverse=True) == sorted((score(hp) for hp in docker.seen), reverse=True)


def test_early_stopping_stops_the_jobs_that_trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import emulator.tuning.job as tuning_job

    monkeypatch.setattr(tuning_job, "local_parallelism", lambda requested, *a: (requested, "all at once"))

    # Every job reports its two values, then runs until stopped ...
    class EarlyExit(SurfaceDocker):
        def start(self, container_id: str) -> None:  # ... except the good ones (score >= -1), which end at once
            super().start(container_id)
            c = self.containers[container_id]
            if c.spec.publish_port is None and score(self.hyperparameters(c)) >= -1:
                c.exit(0)

    docker = EarlyExit(hold=threading.Event())
    ranges = {"CategoricalParameterRanges": [{"Name": "x", "Values": ["2", "3", "4", "0", "6"]}]}
    req = request(tmp_path, strategy="Grid", ranges=ranges, jobs=None, parallel=5, TrainingJobEarlyStoppingType="Auto")
    job = TuningJob(req, docker=docker, config=CONFIG)
    result = job.start().wait(timeout_s=60)
    by_x = {s["TunedHyperParameters"]["x"]: s for s in job.training_job_summaries()}
    assert {x: s["TrainingJobStatus"] for x, s in by_x.items()} == {
        "2": "Completed", "3": "Completed", "4": "Completed", "0": "Stopped", "6": "Stopped"
    }  # fmt: skip
    assert by_x["0"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == score({"x": "0"})
    assert result["TrainingJobStatusCounters"]["Stopped"] == 2
    assert result["HyperParameterTuningJobStatus"] == "Completed"
    assert score(result["BestTrainingJob"]["TunedHyperParameters"]) == 0.0
    assert docker.running() == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, "does not exist"),
        ({"HyperParameterTuningJobConfig": {"Strategy": "Bayesain"}}, "(did you mean 'Bayesian'?)"),
        ("flags", "--max-jobs 0: give 1 or more"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: Any, message: str
) -> None:
    from emulator.cli.app import main

    path = tmp_path / "tuning.json"
    argv = ["tune", "--spec", str(path)]
    if spec == "flags":
        path.write_text(json.dumps(request(tmp_path)))
        argv += ["--max-jobs", "0"]
    elif spec is not None:
        req = request(tmp_path)
        req["HyperParameterTuningJobConfig"].update(spec["HyperParameterTuningJobConfig"])
        path.write_text(json.dumps(req))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_the_cli_table_prints_each_change_once_and_a_final_table() -> None:
    import io

    from emulator.cli.tune import LiveTable

    class Job:
        summaries: list[dict[str, Any]] = []

        def training_job_summaries(self) -> list[dict[str, Any]]:
            return self.summaries

    job, out = Job(), io.StringIO()
    table = LiveTable(out, live=False)
    job.summaries = [
        {"TrainingJobName": "t-001-aa", "TrainingJobStatus": "InProgress", "TunedHyperParameters": {"x": "1"}}
    ]
    table(job)  # type: ignore[arg-type]
    table(job)  # type: ignore[arg-type]
    job.summaries = [
        {**job.summaries[0], "TrainingJobStatus": "Completed",
         "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "m", "Value": 0.25}},
    ]  # fmt: skip
    table(job)  # type: ignore[arg-type]
    table.close(job)  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines[:2]] == [
        ["t-001-aa", "InProgress", "-"],
        ["t-001-aa", "Completed", "0.25"],
    ]
    assert lines[3].split()[:2] == ["Training", "job"]
    assert lines[4].split() == ["t-001-aa", "Completed", "0.25", "x=1"]


def test_a_training_definition_that_cannot_run_is_refused_before_any_container(tmp_path: Path) -> None:
    req = request(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    req["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"] = str(blocker)
    docker = SurfaceDocker()
    with pytest.raises(InvalidSpec) as info:
        TuningJob(req, docker=docker, config=CONFIG)
    assert "\n" not in str(info.value)
    assert docker.containers == {}


def test_a_bare_yaml_off_is_the_early_stopping_type_off(tmp_path: Path) -> None:
    import yaml

    req = request(tmp_path)
    text = yaml.safe_dump(req).replace("Strategy: Random", "Strategy: Random\n  TrainingJobEarlyStoppingType: Off")
    path = tmp_path / "tuning.yaml"
    path.write_text(text)
    spec = parse(path)
    assert spec.request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Off"
    assert not spec.early_stopping
