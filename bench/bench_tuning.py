"""8. A tuning job's wall time against the sum of its training jobs run one by one.

Tuning: ``TuningJob(request).run()`` of the sample image (a real sklearn tree on 120 rows), Random search over
max_depth, min_samples_leaf and criterion, 20 training jobs (4 with --quick), MaxParallelTrainingJobs 4 (the
machine's cores and memory may bound it lower; the note says what ran). One by one: the same 20 hyperparameter
sets, each a ``TrainingJob(request).run()`` in turn, the times summed. Both sides do the same training work; the
tuning job runs jobs side by side and adds the search (optuna) and its bookkeeping, so the ratio is below 1 when
parallel jobs pay off on this machine. Run once each (a 20-job run is long): the figure is one sample.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench._common import Options, Result, Row, ensure_sample_image, iris_channel, now, rmtree

JOBS, QUICK_JOBS = 20, 4
PARALLEL = 4


def _definition(image: str, channel: Path, out: Path) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train_accuracy", "Regex": "train_accuracy=([0-9.]+);"}],
        },
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": str(channel), "S3DataType": "S3Prefix"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": str(out)},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def run_tuning(image: str, channel: Path, work: Path, jobs: int) -> tuple[float, list[dict[str, str]], str]:
    from emulator.config import EmulatorConfig
    from emulator.tuning import TuningJob

    out = Path(tempfile.mkdtemp(prefix="tune-", dir=work))
    try:
        request = {
            "HyperParameterTuningJobConfig": {
                "Strategy": "Random",
                "RandomSeed": 1,
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "train_accuracy"},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": PARALLEL},
                "ParameterRanges": {
                    "IntegerParameterRanges": [
                        {"Name": "max_depth", "MinValue": "1", "MaxValue": "8"},
                        {"Name": "min_samples_leaf", "MinValue": "1", "MaxValue": "10"},
                    ],
                    "CategoricalParameterRanges": [{"Name": "criterion", "Values": ["gini", "entropy"]}],
                },
            },
            "TrainingJobDefinition": _definition(image, channel, out),
        }
        start = now()
        job = TuningJob(request, config=EmulatorConfig(stream_logs=False), log_sink=lambda host, line: None)
        described = job.run()
        elapsed = now() - start
        if described["TrainingJobStatusCounters"]["Completed"] != jobs:
            raise RuntimeError(f"tuning: not every training job completed: {described['TrainingJobStatusCounters']}")
        hps = [s["TunedHyperParameters"] for s in job.training_job_summaries()]
        return elapsed, hps, f"{job.parallel} at once"
    finally:
        rmtree(out)


def run_one_by_one(image: str, channel: Path, work: Path, hps: list[dict[str, str]]) -> float:
    from emulator.config import EmulatorConfig
    from emulator.training import TrainingJob

    out = Path(tempfile.mkdtemp(prefix="one-by-one-", dir=work))
    try:
        total = 0.0
        for values in hps:
            start = now()
            request = {**_definition(image, channel, out), "HyperParameters": values}
            described = TrainingJob(
                request, config=EmulatorConfig(stream_logs=False), log_sink=lambda host, line: None
            ).run()
            total += now() - start
            if described["TrainingJobStatus"] != "Completed":
                raise RuntimeError(f"training failed: {described.get('FailureReason')}")
        return total
    finally:
        rmtree(out)


def run(opts: Options) -> Result:
    result = Result("tuning")
    image = ensure_sample_image()
    channel = iris_channel(opts.work)
    jobs = QUICK_JOBS if opts.quick else JOBS
    opts.log(f"tuning: {jobs} jobs, {PARALLEL} parallel asked")
    tuned, hps, parallel = run_tuning(image, channel, opts.work, jobs)
    opts.log(f"tuning: {tuned:.1f} s; the same {jobs} jobs one by one ...")
    serial = run_one_by_one(image, channel, opts.work, hps)
    result.rows.append(
        Row(
            "8. tuning",
            f"{jobs}-job tuning run, wall (sample image, {parallel})",
            f"its {jobs} training jobs one by one, summed",
            serial,
            tuned,
            "s",
            "ratio < 1",
            tuned < serial,
            1,
            f"tuning {tuned:.1f} s vs one by one {serial:.1f} s ({serial / jobs:.2f} s a job)",
        )
    )
    return result


if __name__ == "__main__":  # python -m bench.bench_tuning [--quick]: the two figures side by side
    import sys

    work = Path(tempfile.mkdtemp(prefix="sm-emulator-bench-"))
    try:
        row = run(Options(quick="--quick" in sys.argv, repeats=1, work=work)).rows[0]
        print(f"{row.metric}: {row.value:.1f} s | {row.baseline_what}: {row.baseline:.1f} s | ratio {row.ratio:.2f}")
    finally:
        rmtree(work)
