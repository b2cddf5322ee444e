"""Pipelines without an engine: expressions, conditions, the DAG, scheduling, failures and parameters.

Step executors are injected fakes (``executors={"Processing": fake, ...}``), so nothing starts a container.
"""

from __future__ import annotations

import _thread
import io
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fakes import CONFIG, IMAGE, FakeDocker

from emulator.cli import app as cli
from emulator.cli import process as cli_process
from emulator.cli.status_table import StatusTable
from emulator.errors import InputNotFound, Interrupted, InvalidSpec
from emulator.pipelines import PipelineDefinition, PipelineExecution, StepContext, StepOutcome
from emulator.pipelines.expressions import (
    ExpressionError,
    Scope,
    conform,
    evaluate_condition,
    get_path,
    json_path,
    referenced_steps,
    resolve,
    static_errors,
)
from emulator.runtime.lifecycle import BackgroundJob
from emulator.runtime.session import Session

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PIPELINE = REPO / "sample_algorithm" / "pipeline.yaml"
NO_DOCKER: Any = object()  # any docker seam: the fakes never use it, and run() skips the engine check

DESCRIBE_PROCESSING = {
    "ProcessingJobName": "prep",
    "ProcessingOutputConfig": {
        "Outputs": [
            {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train", "LocalPath": "/opt/ml/processing/train"}},
            {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/test", "LocalPath": "/opt/ml/processing/test"}},
        ]
    },
    "Environment": {"MODE": "fast"},
}
DESCRIBE_TRAINING = {
    "ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"},
    "FinalMetricDataList": [{"MetricName": "acc", "Value": 0.93}, {"MetricName": "loss", "Value": 0.2}],
    "HyperParameters": {"max_depth": "3"},
}


# -- definitions built in tests ----------------------------------------------------------------------------


def processing(name: str, *, image: Any = "img", outputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A Processing step; outputs maps OutputName -> S3Uri (or expression)."""
    args: dict[str, Any] = {"AppSpecification": {"ImageUri": image}}
    if outputs:
        args["ProcessingOutputConfig"] = {
            "Outputs": [
                {
                    "OutputName": n,
                    "S3Output": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/{n}", "S3UploadMode": "EndOfJob"},
                }
                for n, uri in outputs.items()
            ]
        }
    return {"Name": name, "Type": "Processing", "Arguments": args, **extra}


def document(*steps: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": parameters or [], "Steps": list(steps)}


class Recorder:
    """Fake executors that record what they were given and when they ran."""

    def __init__(self, behaviour: dict[str, Callable[[StepContext], StepOutcome]] | None = None) -> None:
        self.calls: dict[str, StepContext] = {}
        self.intervals: dict[str, tuple[float, float]] = {}
        self.behaviour = behaviour or {}
        self._lock = threading.Lock()

    def __call__(self, ctx: StepContext) -> StepOutcome:
        start = time.monotonic()
        with self._lock:
            self.calls[ctx.step.name] = ctx
        fn = self.behaviour.get(ctx.step.name)
        outcome = fn(ctx) if fn else StepOutcome({**ctx.arguments, "JobName": ctx.job_name})
        with self._lock:
            self.intervals[ctx.step.name] = (start, time.monotonic())
        return outcome

    def executors(self) -> dict[str, Callable[[StepContext], StepOutcome]]:
        return {"Processing": self, "Training": self, "Transform": self}


def run(doc: dict[str, Any], recorder: Recorder | None = None, **kwargs: Any) -> PipelineExecution:
    recorder = recorder or Recorder()
    execution = PipelineExecution(doc, executors=recorder.executors(), docker=NO_DOCKER, **kwargs)
    execution.run()
    return execution


def statuses(execution: PipelineExecution) -> dict[str, str]:
    return {name: state.status for name, state in execution.states.items()}


# -- expressions ------------------------------------------------------------------------------------------


@pytest.fixture
def scope() -> Scope:
    documents = {("Eval", "Report"): {"metrics": {"accuracy": {"value": 0.96}}, "per_class": [{"f1": 0.5}]}}
    return Scope(
        parameters={"Bucket": "my-bucket", "Depth": 3, "Threshold": 0.8, "Flag": True},
        execution={"PipelineExecutionId": "abc123", "PipelineName": "p"},
        steps={"Prep": DESCRIBE_PROCESSING, "Train": DESCRIBE_TRAINING},
        property_file=lambda step, name: documents[(step, name)],
        read_json=lambda uri: {"uri": uri, "n": [1, 2]},
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Parameters.Bucket", "my-bucket"),
        ("Parameters.Depth", 3),
        ("Execution.PipelineExecutionId", "abc123"),
        ("Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri", "s3://b/train"),
        ('Steps.Prep.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri', "s3://b/test"),
        ("Steps.Prep.ProcessingOutputConfig.Outputs[1].S3Output.S3Uri", "s3://b/test"),
        ("Steps.Prep.ProcessingOutputConfig.Outputs[-1].OutputName", "test"),
        ("Steps.Prep.Environment['MODE']", "fast"),
        ("Steps.Train.ModelArtifacts.S3ModelArtifacts", "s3://b/model.tar.gz"),
        ("Steps.Train.FinalMetricDataList['acc'].Value", 0.93),
        ("Steps.Train.FinalMetricDataList[1].MetricName", "loss"),
    ],
)
def test_get_paths(scope: Scope, path: str, expected: Any) -> None:
    assert resolve({"Get": path}, scope) == expected


def test_join_nests_expressions_and_writes_json_spelling(scope: Scope) -> None:
    expr = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                {"Get": "Parameters.Bucket"},
                {"Get": "Parameters.Depth"},
                {"Get": "Parameters.Flag"},
                0.5,
                None,
            ],
        }
    }
    assert resolve(expr, scope) == "s3://my-bucket/3/true/0.5/null"
    assert resolve({"Std:Join": {"Values": ["a", "b"]}}, scope) == "ab"  # On defaults to ""
    # PyYAML reads an unquoted `On:` key as the boolean true; that is still the separator.
    assert resolve({"Std:Join": {True: "-", "Values": ["a", "b"]}}, scope) == "a-b"


def test_expressions_anywhere_in_arguments(scope: Scope) -> None:
    arguments = {"A": [{"B": {"Get": "Parameters.Bucket"}}, "x"], "C": {"Get": "Parameters.Threshold"}}
    assert resolve(arguments, scope) == {"A": [{"B": "my-bucket"}, "x"], "C": 0.8}
    assert arguments == {"A": [{"B": {"Get": "Parameters.Bucket"}}, "x"], "C": {"Get": "Parameters.Threshold"}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metrics.accuracy.value", 0.96),
        ("$.metrics.accuracy.value", 0.96),
        ("per_class[0].f1", 0.5),
        ("metrics['accuracy'].value", 0.96),
        ("$", {"metrics": {"accuracy": {"value": 0.96}}, "per_class": [{"f1": 0.5}]}),
    ],
)
def test_json_get_property_file(scope: Scope, path: str, expected: Any) -> None:
    expr = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": path}}
    assert resolve(expr, scope) == expected


def test_json_get_s3_uri_form(scope: Scope) -> None:
    expr = {"Std:JsonGet": {"S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://b", "r.json"]}}, "Path": "n[1]"}}
    assert resolve(expr, scope) == 2


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ({"Get": "Parameters.Nope"}, "no parameter 'Nope'"),
        ({"Get": "Execution.Nope"}, "unknown execution variable 'Nope'"),
        ({"Get": "Steps.Later.X"}, "step 'Later' has not run"),
        ({"Get": "Steps.Train.ModelArtifacts.Nope"}, "no 'Nope' at ModelArtifacts (there: S3ModelArtifacts)"),
        ({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['val'].S3Output"}, "no item named 'val'"),
        ({"Get": "Steps.Train.FinalMetricDataList[5]"}, "index [5] is out of range"),
        ({"Get": "Whatever.X"}, "expected Parameters.<name>"),
    ],
)
def test_expression_errors_name_the_problem(scope: Scope, expr: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError) as err:
        resolve(expr, scope)
    assert message in str(err.value)


def test_get_path_on_plain_data() -> None:
    assert get_path({"a": [{"Name": "x", "v": 1}]}, "a['x'].v") == 1
    assert json_path([1, 2, 3], "[2]") == 3
    with pytest.raises(ExpressionError, match="cannot parse"):
        get_path({}, "a..b")


def test_referenced_steps() -> None:
    value = {
        "x": [{"Get": "Steps.A.B"}, {"Std:Join": {"On": "", "Values": [{"Get": "Steps.B-2['k']"}]}}],
        "y": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.C.PropertyFiles.P"}, "Path": "a"}},
        "z": {"Get": "Parameters.P"},
    }
    assert referenced_steps(value) == {"A", "B-2", "C"}


# -- conditions -------------------------------------------------------------------------------------------


def compare(kind: str, left: Any, right: Any) -> dict[str, Any]:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (compare("Equals", 1, 1.0), True),
        (compare("Equals", "3", 3), True),
        (compare("Equals", "a", "b"), False),
        (compare("Equals", True, "true"), True),
        (compare("GreaterThan", 0.96, {"Get": "Parameters.Threshold"}), True),
        (compare("GreaterThan", 0.8, 0.8), False),
        (compare("GreaterThanOrEqualTo", 0.8, {"Get": "Parameters.Threshold"}), True),
        (compare("GreaterThanOrEqualTo", 0.79, 0.8), False),
        (compare("LessThan", 1, 2), True),
        (compare("LessThan", 2, 2), False),
        (compare("LessThanOrEqualTo", 2, "2"), True),
        (compare("LessThanOrEqualTo", 3, 2), False),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.Bucket"}, "Values": ["a", "my-bucket"]}, True),
        ({"Type": "In", "QueryValue": 3, "Values": [1, 2]}, False),
        ({"Type": "Not", "Expression": compare("Equals", 1, 2)}, True),
        ({"Type": "Not", "Expression": compare("Equals", 1, 1)}, False),
        ({"Type": "Or", "Conditions": [compare("Equals", 1, 2), compare("LessThan", 1, 2)]}, True),
        ({"Type": "Or", "Conditions": [compare("Equals", 1, 2), compare("LessThan", 3, 2)]}, False),
        (
            compare(
                "GreaterThanOrEqualTo",
                {
                    "Std:JsonGet": {
                        "PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"},
                        "Path": "metrics.accuracy.value",
                    }
                },
                0.95,
            ),
            True,
        ),
    ],
)
def test_conditions(scope: Scope, condition: dict[str, Any], expected: bool) -> None:
    assert evaluate_condition(condition, scope) is expected


def test_condition_errors(scope: Scope) -> None:
    with pytest.raises(ExpressionError, match="'abc' is not a number"):
        evaluate_condition(compare("GreaterThan", "abc", 1), scope)
    with pytest.raises(ExpressionError, match="condition type 'Like' is not one of"):
        evaluate_condition({"Type": "Like"}, scope)
    with pytest.raises(ExpressionError, match="use Equals"):
        evaluate_condition(compare("LessThan", True, 1), scope)


# -- arguments against the API's shapes ---------------------------------------------------------------------


def test_conform_types_values_like_the_service() -> None:
    args = {
        "HyperParameters": {"max_depth": 3, "lr": 0.1, "flag": True},
        "ResourceConfig": {"InstanceCount": "2", "VolumeSizeInGB": 30.0},
        "AlgorithmSpecification": {"TrainingImage": "img", "EnableSageMakerMetricsTimeSeries": "true"},
    }
    fitted = conform("CreateTrainingJob", args)
    assert fitted["HyperParameters"] == {"max_depth": "3", "lr": "0.1", "flag": "true"}
    assert fitted["ResourceConfig"] == {"InstanceCount": 2, "VolumeSizeInGB": 30}
    assert fitted["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] is True


def test_static_errors_skip_expressions_only() -> None:
    args = {
        "ProcessingJobName": "x",
        "RoleArn": {"Get": "Parameters.Role"},
        "AppSpecification": {"ImageUri": {"Get": "Parameters.Image"}, "ContainerArguments": [{"Get": "P.x"}, 3]},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": {"Get": "Parameters.N"},
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 30,
            }
        },
    }
    assert static_errors("CreateProcessingJob", args) == [
        'AppSpecification.ContainerArguments[1]: expected a string, got int 3 (quote it: "3")'
    ]


# -- the definition ---------------------------------------------------------------------------------------


def test_dag_from_data_references_depends_on_and_branches() -> None:
    doc = document(
        processing("Prep", outputs={"train": "s3://b/t"}),
        {
            "Name": "Train",
            "Type": "Training",
            "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
                "InputDataConfig": [
                    {
                        "ChannelName": "train",
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                            }
                        },
                    }
                ],
            },
        },
        processing("Audit", DependsOn=["Prep"]),
        processing("Lonely"),
        {
            "Name": "Check",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [compare("Equals", {"Get": "Steps.Train.HyperParameters['max_depth']"}, "3")],
                "IfSteps": [processing("Deploy")],
                "ElseSteps": ["Lonely"],
            },
        },
    )
    definition = PipelineDefinition.load(doc)
    upstream = {name: step.upstream for name, step in definition.steps.items()}
    assert upstream == {
        "Prep": set(),
        "Train": {"Prep"},
        "Audit": {"Prep"},
        "Lonely": {"Check"},
        "Check": {"Train"},
        "Deploy": {"Check"},
    }
    assert definition.steps["Deploy"].branch == ("Check", True)
    assert definition.steps["Lonely"].branch == ("Check", False)
    order = definition.order
    assert order.index("Prep") < order.index("Train") < order.index("Check") < order.index("Deploy")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            document({"Name": "Reg", "Type": "RegisterModel", "Arguments": {}}),
            "step 'Reg' has Type 'RegisterModel', which the emulator cannot run (the Model Registry",
        ),
        (document({"Name": "L", "Type": "Lambda", "Arguments": {}}), "step 'L' has Type 'Lambda'"),
        (document({"Name": "E", "Type": "EMR", "Arguments": {}}), "supported types: Processing, Training"),
        (document(processing("A"), processing("A")), "a second step named 'A'"),
        (document(processing("A", DependsOn=["Nope"])), "DependsOn names 'Nope'"),
        (document(processing("A", image={"Get": "Parameters.Image"})), "Get Parameters.Image: no such parameter"),
        (document(processing("A", image={"Get": "Execution.Today"})), "Get Execution.Today: unknown"),
        (document(processing("A", image={"Get": "Steps.B.X"})), "'B' is not another step"),
        (
            document(
                processing("A", image={"Get": "Steps.B.AppSpecification.ImageUri"}),
                processing("B", image={"Get": "Steps.A.AppSpecification.ImageUri"}),
                processing("After", DependsOn=["B"]),
            ),
            "the steps A, B depend on each other in a cycle;",
        ),
        (
            document(
                processing("A", outputs={"o": "/tmp/o"}),
                {
                    "Name": "C",
                    "Type": "Condition",
                    "Arguments": {
                        "Conditions": [
                            compare(
                                "Equals",
                                {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.A.PropertyFiles.Nope"}, "Path": "a"}},
                                1,
                            )
                        ]
                    },
                },
            ),
            "step A declares no PropertyFile named 'Nope'",
        ),
        (
            document(
                processing(
                    "A",
                    outputs={"o": "/tmp/o"},
                    PropertyFiles=[{"PropertyFileName": "R", "OutputName": "x", "FilePath": "r.json"}],
                ),
                {
                    "Name": "C",
                    "Type": "Condition",
                    "Arguments": {
                        "Conditions": [
                            compare(
                                "Equals",
                                {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.A.PropertyFiles.R"}, "Path": "a"}},
                                1,
                            )
                        ]
                    },
                },
            ),
            "PropertyFile 'R' names the output 'x', which is not one of its outputs ['o']",
        ),
        (
            document(
                {
                    "Name": "A",
                    "Type": "Processing",
                    "Arguments": {
                        "AppSpecification": {"ImageUri": "i"},
                        "ProcessingResources": {"ClusterConfig": {"InstanceCount": "two"}},
                    },
                }
            ),
            "step A (Processing): invalid Arguments: ProcessingResources.ClusterConfig.InstanceCount: expected an "
            "integer",
        ),
        (
            document({"Name": "C", "Type": "Condition", "Arguments": {"IfSteps": []}}),
            "a Condition step needs Arguments.Conditions",
        ),
        ({"Version": "2020-12-01", "Steps": []}, "'Steps' must be a non-empty list"),
        (
            document(processing("A"), parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": "x"}]),
            "parameter N: 'x' is not a valid Integer",
        ),
        (document(processing("A"), parameters=[{"Name": "N", "Type": "Date"}]), "Parameters[0]: expected"),
    ],
)
def test_definition_errors_at_load_time(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        PipelineDefinition.load(doc)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_branch_reference_to_unknown_step() -> None:
    doc = document(
        {"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [], "IfSteps": ["Ghost"], "ElseSteps": []}}
    )
    with pytest.raises(InvalidSpec, match="no step named 'Ghost'"):
        PipelineDefinition.load(doc)


PARAMETERS: list[dict[str, Any]] = [
    {"Name": "Image", "Type": "String", "DefaultValue": "img"},
    {"Name": "Count", "Type": "Integer", "DefaultValue": 1},
    {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
    {"Name": "Deploy", "Type": "Boolean", "DefaultValue": False},
    {"Name": "Mode", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]},
]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"Image": "img", "Count": 1, "Threshold": 0.5, "Deploy": False, "Mode": "a"}),
        (
            {"Count": "3", "Threshold": "1", "Deploy": "TRUE", "Mode": "b", "Image": "x:1"},
            {"Image": "x:1", "Count": 3, "Threshold": 1.0, "Deploy": True, "Mode": "b"},
        ),
        ({"Count": 4, "Threshold": 2, "Deploy": True}, {"Count": 4, "Threshold": 2.0, "Deploy": True}),
    ],
)
def test_parameter_overrides_are_typed(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    values = PipelineDefinition.load(document(processing("A"), parameters=PARAMETERS)).parameter_values(overrides)
    assert {k: values[k] for k in expected} == expected
    assert all(type(values[k]) is type(v) for k, v in expected.items())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Count": "3.5"}, "parameter Count: '3.5' is not a valid Integer; pass e.g. Count=3"),
        ({"Count": "True"}, "is not a valid Integer"),
        ({"Threshold": "high"}, "parameter Threshold: 'high' is not a valid Float"),
        ({"Deploy": "yes"}, "parameter Deploy: 'yes' is not a valid Boolean; pass e.g. Deploy=true"),
        ({"Mode": "c"}, "parameter Mode: 'c' is not one of a, b"),
        ({"Colour": "red"}, "unknown parameter 'Colour'; this pipeline's parameters are: Image, Count, Threshold"),
    ],
)
def test_bad_parameter_values(overrides: dict[str, Any], message: str) -> None:
    definition = PipelineDefinition.load(document(processing("A"), parameters=PARAMETERS))
    with pytest.raises(InvalidSpec) as err:
        definition.parameter_values(overrides)
    assert message in str(err.value)


def test_parameter_without_default_must_be_given() -> None:
    definition = PipelineDefinition.load(document(processing("A"), parameters=[{"Name": "In", "Type": "String"}]))
    with pytest.raises(InvalidSpec, match="parameter In has no DefaultValue; pass --param In=VALUE"):
        definition.parameter_values({})
    assert definition.parameter_values({"In": "s3://b/k"}) == {"In": "s3://b/k"}


def test_sample_pipeline_definition_loads() -> None:
    definition = PipelineDefinition.load(SAMPLE_PIPELINE)
    assert [s.type for s in definition.steps.values()] == [
        "Processing",
        "Training",
        "Processing",
        "Condition",
        "Model",
        "Transform",
        "Fail",
    ]
    assert definition.steps["BatchTransform"].upstream == {"CheckAccuracy", "IrisModel-CreateModel", "Preprocess"}
    assert definition.steps["AccuracyTooLow"].branch == ("CheckAccuracy", False)


def test_definition_from_sdk_json_text() -> None:
    text = json.dumps(document(processing("A")))
    assert list(PipelineDefinition.load(text).steps) == ["A"]


# -- running ----------------------------------------------------------------------------------------------


def test_independent_steps_start_together() -> None:
    barrier = threading.Barrier(3, timeout=10)  # passes only if all three run at the same time

    def meet(ctx: StepContext) -> StepOutcome:
        barrier.wait()
        return StepOutcome({})

    recorder = Recorder({"A": meet, "B": meet, "C": meet})
    execution = run(
        document(processing("A"), processing("B"), processing("C"), processing("D", DependsOn=["A"])), recorder
    )
    assert statuses(execution) == dict.fromkeys("ABCD", "Succeeded")
    assert recorder.intervals["D"][0] >= recorder.intervals["A"][1]


def test_max_parallel_caps_concurrency() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def count(ctx: StepContext) -> StepOutcome:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.1)
        with lock:
            running -= 1
        return StepOutcome({})

    recorder = Recorder(dict.fromkeys("ABCDE", count))
    doc = document(*(processing(n) for n in "ABCDE"))
    run(doc, recorder, max_parallel=2)
    assert peak == 2
    doc["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": 1}
    peak = 0
    execution = run(doc, recorder)
    assert peak == 1
    assert execution.describe()["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 1}


def test_failure_stops_dependants_only() -> None:
    recorder = Recorder({"A": lambda ctx: StepOutcome({}, "Failed", "AlgorithmError: exit code: 1")})
    doc = document(
        processing("A", outputs={"o": "/tmp/x"}),
        processing("B", image={"Get": "Steps.A.ProcessingOutputConfig.Outputs['o'].S3Output.S3Uri"}),
        processing("C", DependsOn=["B"]),
        processing("Other"),
    )
    execution = run(doc, recorder)
    assert statuses(execution) == {"A": "Failed", "B": "NotExecuted", "C": "NotExecuted", "Other": "Succeeded"}
    assert execution.states["B"].note == "upstream step A failed"
    assert execution.states["C"].note == "upstream step B was not executed"
    assert set(recorder.calls) == {"A", "Other"}
    described = execution.describe()
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "step A (Processing) failed: AlgorithmError: exit code: 1"
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert steps["B"]["StepStatus"] == "NotExecuted"
    assert steps["B"]["FailureReason"] == "upstream step A failed"
    assert steps["A"]["FailureReason"] == "AlgorithmError: exit code: 1"


def test_executor_errors_fail_the_step_with_their_message() -> None:
    def boom(ctx: StepContext) -> StepOutcome:
        raise InvalidSpec("ProcessingInputs[0]: bad input; fix it")

    def bug(ctx: StepContext) -> StepOutcome:
        raise ZeroDivisionError("division by zero")

    execution = run(document(processing("A"), processing("B")), Recorder({"A": boom, "B": bug}))
    assert execution.states["A"].failure_reason == "ProcessingInputs[0]: bad input; fix it"
    assert execution.states["B"].failure_reason == "internal error: ZeroDivisionError: division by zero"


def test_job_stopped_on_its_own_is_a_failure() -> None:
    recorder = Recorder({"A": lambda ctx: StepOutcome({}, "Stopped", "Processing job exceeded MaxRuntimeInSeconds")})
    execution = run(document(processing("A"), processing("B", DependsOn=["A"])), recorder)
    assert statuses(execution) == {"A": "Failed", "B": "NotExecuted"}


def test_condition_branches_and_fail_step(tmp_path: Path) -> None:
    out = tmp_path / "eval"

    def evaluate(ctx: StepContext) -> StepOutcome:
        out.mkdir()
        (out / "evaluation.json").write_text(json.dumps({"metrics": {"accuracy": {"value": 0.7}}}))
        return StepOutcome({"ProcessingOutputConfig": ctx.arguments["ProcessingOutputConfig"]})

    accuracy = {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "metrics.accuracy.value"}
    }
    doc = document(
        processing(
            "Eval",
            outputs={"evaluation": str(out)},
            PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "evaluation", "FilePath": "evaluation.json"}],
        ),
        {
            "Name": "Check",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [compare("GreaterThanOrEqualTo", accuracy, {"Get": "Parameters.Threshold"})],
                "IfSteps": [
                    {"Name": "Model", "Type": "Model", "Arguments": {"PrimaryContainer": {"Image": "img"}}},
                    processing("Use", image={"Get": "Steps.Model.ModelName"}),
                ],
                "ElseSteps": [
                    {
                        "Name": "TooLow",
                        "Type": "Fail",
                        "Arguments": {
                            "ErrorMessage": {
                                "Std:Join": {
                                    "On": " ",
                                    "Values": ["accuracy", accuracy, "<", {"Get": "Parameters.Threshold"}],
                                }
                            }
                        },
                    }
                ],
            },
        },
        processing("AfterUse", DependsOn=["Use"]),
        parameters=[{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.8}],
    )
    recorder = Recorder({"Eval": evaluate})
    execution = run(doc, recorder)
    assert statuses(execution) == {
        "Eval": "Succeeded",
        "Check": "Succeeded",
        "Model": "NotExecuted",
        "Use": "NotExecuted",
        "TooLow": "Failed",
        "AfterUse": "NotExecuted",
    }
    assert execution.states["Check"].properties == {"Outcome": False}
    assert execution.states["Model"].note == "condition Check is False; this step is in its IfSteps"
    assert execution.states["AfterUse"].note == "upstream step Use was not executed"
    assert execution.describe()["FailureReason"] == "step TooLow (Fail) failed: accuracy 0.7 < 0.8"
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": "False"}}
    assert steps["TooLow"]["Metadata"] == {"Fail": {"ErrorMessage": "accuracy 0.7 < 0.8"}}

    # The other branch: a lower threshold; the Model step registers the model, its name flows on.
    out.joinpath("evaluation.json").unlink()
    out.rmdir()
    recorder = Recorder({"Eval": evaluate})
    execution = run(doc, recorder, parameters={"Threshold": "0.5"})
    assert statuses(execution) == {
        "Eval": "Succeeded",
        "Check": "Succeeded",
        "Model": "Succeeded",
        "Use": "Succeeded",
        "TooLow": "NotExecuted",
        "AfterUse": "Succeeded",
    }
    model = execution.states["Model"].properties or {}
    assert recorder.calls["Use"].arguments["AppSpecification"]["ImageUri"] == model["ModelName"]
    assert model["ModelArn"].endswith(f":model/{model['ModelName'].lower()}")
    assert recorder.calls["Use"].models[model["ModelName"]]["PrimaryContainer"] == {"Image": "img"}
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"


def test_missing_property_file_fails_the_reading_step(tmp_path: Path) -> None:
    doc = document(
        processing(
            "Eval",
            outputs={"evaluation": str(tmp_path / "nothing")},
            PropertyFiles=[{"PropertyFileName": "R", "OutputName": "evaluation", "FilePath": "e.json"}],
        ),
        {
            "Name": "Check",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    compare(
                        "Equals",
                        {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.R"}, "Path": "a"}},
                        1,
                    )
                ]
            },
        },
    )
    execution = run(doc)
    reason = execution.states["Check"].failure_reason or ""
    assert "property file R of step Eval: cannot read" in reason
    assert "e.json" in reason


def test_job_names_and_execution_variables() -> None:
    doc = document(
        processing(
            "Prep_Data",
            image={
                "Std:Join": {
                    "On": ":",
                    "Values": [{"Get": "Execution.ProcessingJobName"}, {"Get": "Execution.PipelineExecutionId"}],
                }
            },
        )
    )
    recorder = Recorder()
    execution = run(doc, recorder)
    ctx = recorder.calls["Prep_Data"]
    assert re.fullmatch(rf"pipelines-{execution.execution_id}-Prep-Data-[A-Za-z0-9]{{10}}", ctx.job_name)
    assert re.fullmatch(r"[a-z0-9]{12}", execution.execution_id)
    assert ctx.arguments["AppSpecification"]["ImageUri"] == f"{ctx.job_name}:{execution.execution_id}"
    assert execution.states["Prep_Data"].job_name == ctx.job_name
    long = _step_name = "S" * 64
    assert len(run(document(processing(long)), recorder).states[_step_name].job_name or "") <= 63


def test_arguments_are_typed_for_the_api() -> None:
    doc = document(
        {
            "Name": "Train",
            "Type": "Training",
            "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
                "HyperParameters": {"max_depth": {"Get": "Parameters.Depth"}},
                "ResourceConfig": {
                    "InstanceCount": {"Get": "Parameters.Hosts"},
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 30,
                },
            },
        },
        parameters=[
            {"Name": "Depth", "Type": "Integer", "DefaultValue": 3},
            {"Name": "Hosts", "Type": "String", "DefaultValue": "2"},
        ],
    )
    recorder = Recorder()
    run(doc, recorder)
    arguments = recorder.calls["Train"].arguments
    assert arguments["HyperParameters"] == {"max_depth": "3"}
    assert arguments["ResourceConfig"]["InstanceCount"] == 2


def test_one_session_for_every_step() -> None:
    recorder = Recorder()
    execution = run(document(processing("A"), processing("B")), recorder)
    assert recorder.calls["A"].session is recorder.calls["B"].session is execution._session
    assert recorder.calls["A"].session.docker is NO_DOCKER


def test_a_given_session_is_shared_and_not_closed() -> None:
    closed: list[str] = []

    class Tracked(Session):
        def close(self) -> None:
            closed.append("closed")

    recorder = Recorder()
    session = Tracked(docker=NO_DOCKER)
    execution = PipelineExecution(document(processing("A")), executors=recorder.executors(), session=session)
    execution.run()
    assert recorder.calls["A"].session is session
    assert closed == []


def test_status_changes_are_reported_in_order() -> None:
    seen: list[tuple[str, str]] = []

    def listener(execution: PipelineExecution, state: Any) -> None:
        if state is not None:
            seen.append((state.name, state.status))

    run(document(processing("A"), processing("B", DependsOn=["A"])), on_change=listener)
    assert [s for s in seen if s[0] == "A"] == [("A", "Starting"), ("A", "Executing"), ("A", "Succeeded")]
    assert seen.index(("A", "Succeeded")) < seen.index(("B", "Starting"))


def test_results_are_json_serialisable() -> None:
    execution = run(document(processing("A"), parameters=[{"Name": "P", "Type": "Boolean", "DefaultValue": True}]))
    result = json.loads(json.dumps(execution.to_dict(), default=str))
    assert result["PipelineExecution"]["PipelineParameters"] == [{"Name": "P", "Value": "true"}]
    assert result["PipelineExecutionSteps"][0]["StepName"] == "A"
    assert result["StepResults"]["A"]["JobName"].startswith("pipelines-")


class WaitingJob(BackgroundJob):
    """A job in the contract that runs until it is stopped, and records the stops it got."""

    kind = "fake"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.started = threading.Event()
        self.stops: list[float | None] = []
        self._update(ProcessingJobName=name, ProcessingJobStatus="InProgress")

    def _execute(self) -> None:
        self.started.set()
        self._stop_requested.wait(30)
        self._update(ProcessingJobStatus="Stopped" if self.stop_requested else "Completed")

    def _on_stop(self, grace_s: float | None) -> None:
        self.stops.append(grace_s)


def _long_step() -> tuple[list[WaitingJob], Callable[[StepContext], StepOutcome]]:
    jobs: list[WaitingJob] = []

    def long_job(ctx: StepContext) -> StepOutcome:
        job = WaitingJob(ctx.job_name)
        jobs.append(job)
        d = ctx.run_job(job)
        status = {"Completed": "Succeeded", "Stopped": "Stopped"}[d["ProcessingJobStatus"]]
        return StepOutcome(d, status, "job stopped" if status == "Stopped" else None)

    return jobs, long_job


def _until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_stop_from_another_thread_stops_the_running_steps_job() -> None:
    jobs, long_job = _long_step()
    recorder = Recorder({"Long": long_job})
    doc = document(processing("Long"), processing("Next", DependsOn=["Long"]))
    execution = PipelineExecution(doc, executors=recorder.executors(), docker=NO_DOCKER).start()
    _until(lambda: bool(jobs) and jobs[0].started.is_set())
    assert execution.describe()["PipelineExecutionStatus"] == "Executing"
    threading.Thread(target=execution.stop).start()
    result = execution.wait(timeout_s=10)
    assert execution.done
    assert jobs[0].stops == [None]  # the step's job was stopped through its own stop()
    assert jobs[0].done
    assert statuses(execution) == {"Long": "Stopped", "Next": "NotExecuted"}, execution.to_dict()
    assert set(recorder.calls) == {"Long"}
    assert result["PipelineExecutionStatus"] == "Stopped"
    assert result["FailureReason"] == "stopped by the user"
    assert execution.states["Long"].properties == {"ProcessingJobName": jobs[0].name, "ProcessingJobStatus": "Stopped"}


def test_ctrl_c_stops_running_steps_and_raises_interrupted() -> None:
    jobs, long_job = _long_step()

    def press_ctrl_c() -> None:
        _until(lambda: bool(jobs) and jobs[0].started.is_set())
        _thread.interrupt_main()

    execution = PipelineExecution(
        document(processing("Long"), processing("Next", DependsOn=["Long"])),
        executors={"Processing": Recorder({"Long": long_job})},
        docker=NO_DOCKER,
    )
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(Interrupted, match="was interrupted"):
        execution.run()
    assert jobs[0].stops == [None]
    assert jobs[0].done  # its clean-up finished before run() raised
    assert statuses(execution) == {"Long": "Stopped", "Next": "NotExecuted"}, execution.to_dict()
    assert execution.describe()["PipelineExecutionStatus"] == "Stopped"


def test_stop_before_start_runs_no_step() -> None:
    recorder = Recorder()
    execution = PipelineExecution(
        document(processing("A"), processing("B")), executors=recorder.executors(), docker=NO_DOCKER
    )
    execution.stop()
    assert execution.run()["PipelineExecutionStatus"] == "Stopped"
    assert statuses(execution) == {"A": "NotExecuted", "B": "NotExecuted"}
    assert recorder.calls == {}


def test_a_job_is_not_started_once_the_execution_is_stopped() -> None:
    made: list[WaitingJob] = []

    def late(ctx: StepContext) -> StepOutcome:
        ctx_execution.stop()  # the stop lands after the step began, before its job is handed over
        job = WaitingJob(ctx.job_name)
        made.append(job)
        ctx.run_job(job)
        return StepOutcome({}, "Succeeded")

    ctx_execution = PipelineExecution(
        document(processing("A")), executors={"Processing": Recorder({"A": late})}, docker=NO_DOCKER
    )
    ctx_execution.run()
    assert statuses(ctx_execution) == {"A": "Stopped"}
    assert not made[0].started.is_set()


# -- steps that run real jobs (transform, with the fake engine) ---------------------------------------------


def _transform_pipeline(inputs: Path, outputs: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return document(
        {
            "Name": "Model",
            "Type": "Model",
            "Arguments": {"PrimaryContainer": {"Image": IMAGE, "Environment": env or {}}},
        },
        {
            "Name": "Transform",
            "Type": "Transform",
            "Arguments": {
                "ModelName": {"Get": "Steps.Model.ModelName"},
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(inputs)}},
                    "ContentType": "text/csv",
                    "SplitType": "Line",
                },
                "TransformOutput": {"S3OutputPath": str(outputs), "AssembleWith": "Line"},
                "TransformResources": {"InstanceCount": 1},  # InstanceType: the job's own default
            },
        },
        processing("After", DependsOn=["Transform"]),
    )


@pytest.fixture
def csv_input(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text("".join(f"{i},{i}\n" for i in range(50)))
    return tmp_path / "in"


def test_a_transform_step_runs_its_job_with_the_executions_session(tmp_path: Path, csv_input: Path) -> None:
    docker = FakeDocker()
    recorder = Recorder()
    execution = PipelineExecution(
        _transform_pipeline(csv_input, tmp_path / "out"),
        executors={"Processing": recorder},
        config=CONFIG,
        docker=docker,
    )
    execution.run()
    assert statuses(execution) == {"Model": "Succeeded", "Transform": "Succeeded", "After": "Succeeded"}
    d = execution.states["Transform"].properties or {}
    assert d["TransformJobName"] == execution.states["Transform"].job_name
    assert d["TransformResources"] == {"InstanceCount": 1, "InstanceType": "ml.m5.large"}
    assert (tmp_path / "out" / "rows.csv.out").read_text() == "".join(f"{i},{i}\n" for i in range(50))
    assert docker.removed == list(docker.containers) != []  # the one Docker client of the session was used


def test_stop_stops_a_running_transform_step(tmp_path: Path, csv_input: Path) -> None:
    docker = FakeDocker()
    recorder = Recorder()
    execution = PipelineExecution(
        _transform_pipeline(csv_input, tmp_path / "out", {"RECORDER_SLEEP_S": "30"}),
        executors={"Processing": recorder},
        config=CONFIG,
        docker=docker,
    ).start()
    _until(lambda: bool(docker.containers) and docker.only().recorder.STATE.get("invocations", 0) >= 1)
    began = time.monotonic()
    execution.stop()
    result = execution.wait(timeout_s=20)
    assert time.monotonic() - began < 10  # the 30 s request was abandoned
    assert statuses(execution) == {"Model": "Succeeded", "Transform": "Stopped", "After": "NotExecuted"}
    assert (execution.states["Transform"].properties or {})["TransformJobStatus"] == "Stopped"
    assert result["PipelineExecutionStatus"] == "Stopped"
    assert docker.removed == list(docker.containers)  # the serving container is gone
    assert not (tmp_path / "out").exists()
    assert recorder.calls == {}


def test_unreadable_json_location() -> None:
    execution = PipelineExecution(document(processing("A")), docker=NO_DOCKER)
    with pytest.raises(InputNotFound, match=r"cannot read /nonexistent/x\.json"):
        execution._read_json("/nonexistent/x.json")


# -- the CLI (no engine) ------------------------------------------------------------------------------------


@pytest.fixture
def main() -> Callable[[list[str]], int]:
    """The CLI's main (it lists the process and pipeline subcommands)."""
    return cli.main


def test_cli_pipeline_show(main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "show", str(SAMPLE_PIPELINE), "--param", "MaxDepth=5"]) == 0
    out = capsys.readouterr().out
    assert "param MaxDepth (Integer) = 5" in out
    assert (
        "BatchTransform  (Transform)  after: Preprocess, CheckAccuracy, IrisModel-CreateModel  "
        "[if CheckAccuracy is True]" in out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--param", "MaxDepth=deep"], "error: parameter MaxDepth: 'deep' is not a valid Integer"),
        (["--param", "Nope=1"], "error: unknown parameter 'Nope'"),
    ],
)
def test_cli_pipeline_bad_parameters(
    main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["pipeline", "run", str(SAMPLE_PIPELINE), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_pipeline_unsupported_step(
    main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(document({"Name": "Call", "Type": "Lambda", "Arguments": {}})))
    assert main(["pipeline", "show", str(path)]) == 2
    assert "error: step 'Call' has Type 'Lambda'" in capsys.readouterr().err


def test_status_table_plain_and_live() -> None:
    doc = document(processing("A"), processing("B", DependsOn=["A"]))
    plain, live = io.StringIO(), io.StringIO()
    plain_table = StatusTable(plain, live=False)
    live_table = StatusTable(live, live=True, min_redraw_s=0)

    def both(execution: PipelineExecution, state: Any) -> None:
        plain_table(execution, state)
        live_table(execution, state)

    execution = run(doc, on_change=both)
    plain_table.close(execution)
    lines = plain.getvalue().splitlines()
    assert re.match(r"A\s+Processing\s+Executing\s", lines[0])
    assert any(re.match(r"B\s+Processing\s+Succeeded\s+\d+\.\ds\s+pipelines-", line) for line in lines)
    assert "Starting" not in plain.getvalue()
    assert lines[-3].split() == ["Step", "Type", "Status", "Duration", "Job", "name", "Note"]
    drawn = live.getvalue()
    assert "\x1b[3F" in drawn  # cursor back up over the 3 lines (header + 2 steps) to redraw in place
    assert "\x1b[2K" in drawn


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--entrypoint", "python3 -u /code/run.py"], {"ContainerEntrypoint": ["python3", "-u", "/code/run.py"]}),
        (
            ["--entrypoint", "python3", "--entrypoint", "/code/my script.py"],
            {"ContainerEntrypoint": ["python3", "/code/my script.py"]},
        ),
        (["--arg=--seed", "--arg", "3"], {"ContainerArguments": ["--seed", "3"]}),
    ],
)
def test_process_request_entrypoint_and_arguments(argv: list[str], expected: dict[str, Any]) -> None:
    args = _process_args(["--image", "img", *argv])
    app = cli_process.processing_request(args)["AppSpecification"]
    assert {k: v for k, v in app.items() if k != "ImageUri"} == expected


def _process_args(argv: list[str]) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_process.add_command(sub)
    return parser.parse_args(["process", *argv])


def test_process_request_inputs_and_outputs(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "AppSpecification: {ImageUri: img}\nProcessingInputs:\n  - InputName: raw\n"
        "    S3Input: {S3Uri: old, LocalPath: /opt/ml/processing/old}\n"
    )
    args = _process_args(
        [
            "--spec",
            str(spec),
            "--input",
            "raw=s3://bucket/raw/iris.csv:/opt/ml/processing/input/raw",
            "--input",
            "code=src",
            "--output",
            "train=/opt/ml/processing/out/train:s3://bucket/train",
            "--output",
            "test=out/test",
            "--env",
            "A=1",
            "--instance-count",
            "2",
            "--max-runtime",
            "60",
        ]
    )
    req = cli_process.processing_request(args)
    inputs = {i["InputName"]: i["S3Input"] for i in req["ProcessingInputs"]}
    assert inputs["raw"]["S3Uri"] == "s3://bucket/raw/iris.csv"
    assert inputs["raw"]["LocalPath"] == "/opt/ml/processing/input/raw"
    assert inputs["code"] == {
        "S3Uri": "src",
        "LocalPath": "/opt/ml/processing/input/code",
        "S3DataType": "S3Prefix",
        "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated",
    }
    outputs = {o["OutputName"]: o["S3Output"] for o in req["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["train"] == {
        "S3Uri": "s3://bucket/train",
        "LocalPath": "/opt/ml/processing/out/train",
        "S3UploadMode": "EndOfJob",
    }
    assert outputs["test"]["LocalPath"] == "/opt/ml/processing/output/test"
    assert req["Environment"] == {"A": "1"}
    assert req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    assert req["StoppingCondition"] == {"MaxRuntimeInSeconds": 60}


def test_process_request_errors() -> None:
    with pytest.raises(InvalidSpec, match="no image: pass --image"):
        cli_process.processing_request(_process_args([]))
    with pytest.raises(InvalidSpec, match="--output o=/opt/ml/processing/o: no destination"):
        cli_process.processing_request(_process_args(["--image", "i", "--output", "o=/opt/ml/processing/o"]))


def test_make_pipeline_without_the_sdk(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_pipeline", REPO / "sample_algorithm" / "make_pipeline.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "sagemaker", None)  # as if the SDK were not installed
    assert module.main([]) == 2
    assert "the SageMaker SDK is not installed" in capsys.readouterr().err


def test_make_pipeline_matches_the_yaml() -> None:
    """With the SDK installed, the generated definition has the YAML's steps, parameters and references."""
    pytest.importorskip("sagemaker", reason="the SageMaker SDK is not installed")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pipeline", REPO / "sample_algorithm" / "make_pipeline.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = PipelineDefinition.load(module.definition())
    written = PipelineDefinition.load(SAMPLE_PIPELINE)
    assert generated.order == written.order
    assert {n: s.upstream for n, s in generated.steps.items()} == {n: s.upstream for n, s in written.steps.items()}
    assert generated.parameters == written.parameters


def test_live_table_prints_log_lines_above_itself() -> None:
    import logging

    stream = io.StringIO()
    table = StatusTable(stream, live=True, min_redraw_s=0)
    execution = run(document(processing("A")), on_change=table)
    with table.logs_above():
        logging.getLogger("emulator.test").warning("a log line")
    drawn = stream.getvalue()
    before, after = drawn.rsplit("a log line\n", 1)
    assert before.endswith("\x1b[2F\x1b[J")  # up over the 2-line table, cleared, the message printed there
    assert "\x1b[2KA " in after  # and the table drawn again below it
    assert execution.status == "Succeeded"
