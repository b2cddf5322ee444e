"""Hyperparameter tuning on the real engine, small budgets: the surface image (tests/images/surface, a known
objective surface), the probe image as one that prints no metric, and the CLI's ``tune``.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from test_training import docker_cli, leftovers, start_cli

from emulator import constants
from emulator.cli.app import main
from emulator.config import EmulatorConfig
from emulator.constants import LABEL_PID
from emulator.tuning import TuningJob

pytestmark = pytest.mark.docker

BONUS = {"a": 0.0, "b": 0.1, "c": 0.05}


def surface(hp: dict[str, str]) -> float:
    """What tests/images/surface/train.py computes (its docstring's formula)."""
    x, depth = float(hp.get("x", "0")), int(hp.get("depth", "4"))
    return 1 - (x - 0.3) ** 2 - 0.01 * (depth - 4) ** 2 + BONUS[hp.get("kind", "a")]


@pytest.fixture(scope="module")
def surface_image(docker_available: str, image_builder: ModuleType) -> str:
    image: str = image_builder.build_test_image("surface")
    return image


def tuning_request(
    image: str, out: Path, name: str, strategy: str, ranges: dict[str, Any], jobs: int
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": ranges,
        "RandomSeed": 3,
    }
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": image,
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "score", "Regex": r"score=(-?[0-9.]+);"}],
            },
            "StaticHyperParameters": {"depth": "4"},
            "OutputDataConfig": {"S3OutputPath": str(out)},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    }


def test_random_search_reads_every_objective_and_picks_the_best(
    surface_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    ranges = {
        "ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "kind", "Values": ["a", "b", "c"]}],
    }
    job = TuningJob(tuning_request(surface_image, tmp_path, "eng-random", "Random", ranges, 4), config=fast_config)
    result = job.run()
    summaries = job.training_job_summaries()

    assert result["HyperParameterTuningJobStatus"] == "Completed"
    assert result["TrainingJobStatusCounters"]["Completed"] == 4
    assert all(re.fullmatch(r"eng-random-00[1-4]-[0-9a-f]{8}", s["TrainingJobName"]) for s in summaries)
    for s in summaries:  # every objective is the surface at the job's hyperparameters (6 decimals printed)
        hp = {**s["TunedHyperParameters"], "depth": "4"}
        assert s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(surface(hp), abs=1e-5)
    best = result["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(
        s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries
    )
    model = tmp_path / best["TrainingJobName"] / "output" / "model.tar.gz"
    assert model.is_file()  # the best job's model, where transform and endpoints take it from
    best_job = job.best_training_job()
    assert best_job is not None
    assert best_job.describe()["ModelArtifacts"]["S3ModelArtifacts"] == str(model)


def test_grid_search_finds_the_known_best_through_the_cli(
    surface_image: str, fast_config: EmulatorConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "x", "Values": ["0.3", "0.9"]},
            {"Name": "kind", "Values": ["a", "b"]},
        ]
    }
    spec = tmp_path / "tuning.yaml"
    request = tuning_request(surface_image, tmp_path / "out", "eng-grid", "Grid", ranges, 4)
    del request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]  # Grid: every point
    spec.write_text(yaml.safe_dump(request))

    code = main(["tune", "--spec", str(spec), "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)

    assert code == 0, captured.err
    assert result["TrainingJobStatusCounters"]["Completed"] == 4
    assert result["BestTrainingJob"]["TunedHyperParameters"] == {"x": "0.3", "kind": "b"}
    assert result["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(1.1)
    assert "this machine:" in captured.err  # the summary says what bounded the parallelism


def test_an_image_that_prints_no_metric_fails_with_the_platforms_reason(
    probe_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    ranges = {"IntegerParameterRanges": [{"Name": "x", "MinValue": "1", "MaxValue": "9"}]}
    job = TuningJob(tuning_request(probe_image, tmp_path, "eng-silent", "Random", ranges, 2), config=fast_config)
    result = job.run()

    assert result["HyperParameterTuningJobStatus"] == "Failed"
    assert result["FailureReason"].startswith("No training job succeeded after 2 attempts")
    assert result["ObjectiveStatusCounters"]["Failed"] == 2
    for training in job.training_jobs():
        described = training.describe()
        assert described["TrainingJobStatus"] == "Failed"
        assert described["FailureReason"] == constants.NO_OBJECTIVE_REASON


def test_ctrl_c_stops_every_training_job_and_exits_130(
    probe_image: str, fast_config: EmulatorConfig, tmp_path: Path, emulator_pids: set[int]
) -> None:
    ranges = {"IntegerParameterRanges": [{"Name": "x", "MinValue": "1", "MaxValue": "9"}]}
    request = tuning_request(probe_image, tmp_path / "out", "eng-ctrlc", "Random", ranges, 4)
    request["TrainingJobDefinition"]["Environment"] = {"PROBE_SLEEP_S": "60", "PROBE_RESOLVE_S": "0"}
    spec = tmp_path / "tuning.yaml"
    spec.write_text(yaml.safe_dump(request))
    work = tmp_path / "work"
    work.mkdir()
    proc = start_cli("tune", "--spec", str(spec), "--stop-grace", "2", cwd=tmp_path, work=work, pids=emulator_pids)
    try:
        deadline = time.monotonic() + 60
        label = f"{LABEL_PID}={proc.pid}"
        while not docker_cli("ps", "-q", "--filter", f"label={label}", "--filter", "status=running"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no training container started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert leftovers(fast_config, label) == []
