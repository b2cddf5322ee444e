"""6. The seed code through the real SageMaker SDK, against the API server, in SDK local mode, and as Python API calls.

The seed code is ``sample_algorithm/sdk_example.py``, the program a user writes: ``Estimator.fit`` with train and
test channels, ``transformer().transform`` + ``wait``, ``deploy`` + ``predict`` (+ delete), ``Processor.run``
and a two-step pipeline (Preprocess -> Train) ``start`` + ``wait``. Four ways to do the same work, one after the
other in each round (A, B, C, D, A, B, ...):

- **SDK, default polls**: the program, unchanged, in the SDK venv (scripts/ensure_sdk_venv.sh), against an
  :class:`~emulator.api.server.ApiServer` on 127.0.0.1 started by this bench;
- **SDK, fast polls**: the same, run as ``python emulator/sdk_polls.py sdk_example.py``;
- **SDK local mode**: the same steps with ``instance_type="local"`` and ``file://`` data
  (_sdk_localmode_child.py), one child per step with a timeout; a step that fails or hangs is recorded as data,
  and the containers it left (by their compose working-dir label under the bench's own root) are removed;
- **emulator Python API**: ``TrainingJob``, ``TransformJob``, ``Endpoint``, ``ProcessingJob``,
  ``PipelineExecution`` in this process, local paths: the baseline of every ratio.

The per-step figure of the SDK runs is the time the program prints for that step (its own ``perf_counter``
around the SDK calls); the interpreter start and the SDK import are left out, as on the other sides. The child
processes get fake credentials, ``HTTP(S)_PROXY`` on a closed loopback port and ``NO_PROXY=127.0.0.1``: only the
API server on 127.0.0.1 answers. Full runs repeat 2 rounds (the default-poll run alone takes ~2.5 min);
``--quick`` one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench._common import (
    REPO,
    SAMPLE_IMAGE,
    Options,
    Result,
    Row,
    docker,
    ensure_sample_image,
    free_port,
    median,
    now,
    rmtree,
)
from bench.bench_localmode import _child_env, _cleanup, _compose_available

EXAMPLE = REPO / "sample_algorithm" / "sdk_example.py"
SDK_POLLS = REPO / "emulator" / "sdk_polls.py"
LOCAL_CHILD = Path(__file__).resolve().parent / "_sdk_localmode_child.py"
DATA = REPO / "contract_tests" / "data"
SDK_RUN_TIMEOUT_S = 600
LOCAL_STEP_TIMEOUT_S = 150
STEPS = ("fit", "transform", "deploy", "processing", "pipeline")
LABELS = {
    "fit": "`Estimator.fit` (train + test channels)",
    "transform": "`transformer().transform` + `wait`",
    "deploy": "`deploy` + `predict` + delete",
    "processing": "`Processor.run` (split)",
    "pipeline": "pipeline `start` + `wait` (Preprocess -> Train)",
}
PRINTED = {"fit": "fit", "transform": "transform", "deploy": "deploy + predict", "processing": "processing"}
PRINTED["pipeline"] = "pipeline"
VARIANTS = ("SDK, default polls", "SDK, fast polls", "SDK local mode")
_LOCAL_NETWORK = "sagemaker-local"

Samples = dict[str, list[float]]


def _sdk_python(opts: Options) -> tuple[str | None, str]:
    """The SDK venv's python (made by scripts/ensure_sdk_venv.sh when missing), or None and why not."""
    opts.log("sdk: scripts/ensure_sdk_venv.sh (installs sagemaker==2.257.7 once)")
    made = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure_sdk_venv.sh")], capture_output=True, text=True, timeout=1800
    )
    if made.returncode != 0:
        return None, f"scripts/ensure_sdk_venv.sh failed: {made.stderr.strip()[-300:]}"
    venv = Path(made.stdout.strip().splitlines()[-1])
    version = made.stderr.strip().splitlines()[-1] if made.stderr.strip() else "sagemaker ?"
    return str(venv / "bin" / "python"), version


def _split(work: Path) -> Path:
    """The data the local-mode and Python API sides read: train/test split as sdk_example.py makes it, batch, raw."""
    rows = (DATA / "iris_train.csv").read_text().splitlines()
    parts = {"train": [r for i, r in enumerate(rows) if i % 5], "test": rows[::5]}
    data = work / "sdk-data"
    for name, lines in parts.items():
        (data / name).mkdir(parents=True, exist_ok=True)
        (data / name / f"{name}.csv").write_text("\n".join(lines) + "\n")
    for name, src in (("batch", "iris_batch.csv"), ("raw", "iris_raw.csv")):
        (data / name).mkdir(parents=True, exist_ok=True)
        (data / name / src).write_bytes((DATA / src).read_bytes())
    return data


# -- SDK against the API server ---------------------------------------------------------------------------
def _sdk_run(python: str, fast: bool, work: Path) -> tuple[dict[str, float], float]:
    """One run of sdk_example.py against a fresh API server: seconds per step, and the whole process."""
    from emulator.api.server import ApiServer

    state = Path(tempfile.mkdtemp(prefix="api-", dir=work))
    try:
        with ApiServer(port=0, state_dir=state) as server:
            env = {**_child_env(), **server.environment(), "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
            env["AWS_ENDPOINT_URL"] = server.url
            cmd = [python, str(SDK_POLLS), str(EXAMPLE)] if fast else [python, str(EXAMPLE)]
            start = now()
            proc = subprocess.run(
                cmd, env=env, cwd=work, capture_output=True, text=True, timeout=SDK_RUN_TIMEOUT_S, check=False
            )
            total = now() - start
    finally:
        rmtree(state)
    if proc.returncode != 0:
        raise RuntimeError(f"sdk_example.py failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-600:]}")
    times = {m[0]: float(m[1]) for m in re.findall(r"^\s+\(([a-z +]+): ([0-9.]+) s\)$", proc.stdout, re.M)}
    return {step: times[PRINTED[step]] for step in STEPS}, total


# -- SDK local mode --------------------------------------------------------------------------------------
def _local_step(python: str, step: str, data: Path, work: Path) -> tuple[float | None, str]:
    """One local-mode step in a child, bounded; (seconds, "") or (None, what went wrong)."""
    root = Path(tempfile.mkdtemp(prefix="lm-root-", dir=work))
    out = Path(tempfile.mkdtemp(prefix="lm-out-", dir=work))
    args = {"image": SAMPLE_IMAGE, "data": str(data), "root": str(root), "out": str(out), "port": free_port()}
    env = {**_child_env(), "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    start = now()
    try:
        proc = subprocess.Popen(
            [python, str(LOCAL_CHILD), step, json.dumps(args)],
            env=env,
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=LOCAL_STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the child and whatever docker-compose it started
            proc.communicate()
            return None, f"hung: killed after {LOCAL_STEP_TIMEOUT_S} s"
        last = (stdout.strip().splitlines() or ["{}"])[-1]
        try:
            report: dict[str, Any] = json.loads(last)
        except ValueError:
            report = {"error": (stderr or stdout).strip()[-300:]}
        if proc.returncode == 0 and "seconds" in report:
            return float(report["seconds"]), ""
        return None, f"failed after {now() - start:.0f} s: {report.get('error') or stderr.strip()[-300:]}"
    finally:
        _cleanup(root)  # also the serving container a failed transform leaves running on 0.0.0.0
        rmtree(root)
        rmtree(out)


# -- the emulator's Python API ---------------------------------------------------------------------------
def _python_api(data: Path, work: Path) -> dict[str, float]:
    from emulator import Endpoint, PipelineExecution, ProcessingJob, TrainingJob, TransformJob
    from emulator.config import EmulatorConfig

    config = EmulatorConfig(stream_logs=False)
    out = Path(tempfile.mkdtemp(prefix="py-", dir=work))
    times: dict[str, float] = {}

    def channel(name: str) -> dict[str, Any]:
        uri = str(data / name)
        return {"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix"}}}

    def training(output: str) -> dict[str, Any]:
        return {
            "AlgorithmSpecification": {"TrainingImage": SAMPLE_IMAGE, "TrainingInputMode": "File"},
            "HyperParameters": {"max_depth": "3", "criterion": "entropy"},
            "InputDataConfig": [channel("train"), channel("test")],
            "OutputDataConfig": {"S3OutputPath": output},
        }

    def processing(raw: str, outputs: dict[str, str]) -> dict[str, Any]:
        return {
            "AppSpecification": {
                "ImageUri": SAMPLE_IMAGE,
                "ContainerEntrypoint": ["processing"],
                "ContainerArguments": ["--test-fraction", "0.2", "--seed", "0"],
            },
            "ProcessingInputs": [
                {
                    "InputName": "raw",
                    "S3Input": {
                        "S3Uri": raw,
                        "LocalPath": "/opt/ml/processing/input/raw",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": name,
                        "S3Output": {
                            "S3Uri": uri,
                            "LocalPath": f"/opt/ml/processing/output/{name}",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for name, uri in outputs.items()
                ]
            },
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        }

    try:
        t = now()
        trained = TrainingJob(training(str(out / "model")), config=config).run()
        times["fit"] = now() - t
        _check(trained, "TrainingJobStatus")
        model = trained["ModelArtifacts"]["S3ModelArtifacts"]

        t = now()
        transform = {
            "BatchStrategy": "MultiRecord",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(data / "batch")}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": str(out / "transform"), "Accept": "text/csv", "AssembleWith": "Line"},
        }
        _check(TransformJob(transform, image=SAMPLE_IMAGE, model_data=model, config=config).run(), "TransformJobStatus")
        times["transform"] = now() - t

        t = now()
        with Endpoint(SAMPLE_IMAGE, model_data=model, config=config) as ep:
            ep.invoke(b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", content_type="text/csv")
        times["deploy"] = now() - t

        t = now()
        split = {name: str(out / "split" / name) for name in ("train", "test")}
        _check(ProcessingJob(processing(str(data / "raw"), split), config=config).run(), "ProcessingJobStatus")
        times["processing"] = now() - t

        t = now()
        get = "Steps.Preprocess.ProcessingOutputConfig.Outputs['{}'].S3Output.S3Uri"
        train_args = training(str(out / "pipeline-model"))
        for ch in train_args["InputDataConfig"]:
            ch["DataSource"]["S3DataSource"]["S3Uri"] = {"Get": get.format(ch["ChannelName"])}
        train_args["ResourceConfig"] = {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        train_args["StoppingCondition"] = {"MaxRuntimeInSeconds": 600}
        train_args["RoleArn"] = "arn:aws:iam::123456789012:role/SageMakerRole"
        pipeline_split = {name: str(out / "pipeline-split" / name) for name in ("train", "test")}
        definition = {
            "Version": "2020-12-01",
            "Parameters": [],
            "Steps": [
                {
                    "Name": "Preprocess",
                    "Type": "Processing",
                    "Arguments": processing(str(data / "raw"), pipeline_split),
                },
                {"Name": "Train", "Type": "Training", "Arguments": train_args},
            ],
        }
        _check(PipelineExecution(definition, config=config).run(), "PipelineExecutionStatus", "Succeeded")
        times["pipeline"] = now() - t
    finally:
        rmtree(out)
    return times


def _check(described: dict[str, Any], key: str, ok: str = "Completed") -> None:
    if described.get(key) != ok:
        raise RuntimeError(f"{key} {described.get(key)}: {described.get('FailureReason')}")


# -- the benchmark ---------------------------------------------------------------------------------------
def run(opts: Options) -> Result:
    result = Result("sdk")
    python, version = _sdk_python(opts)
    if python is None:
        result.rows.append(Row("6. SDK", "the seed code", "—", None, None, note=f"not measured: {version}"))
        return result
    ensure_sample_image()
    rounds = 1 if opts.quick else min(opts.repeats, 2)
    data = _split(opts.work)
    local_why = _compose_available()
    network_existed = docker("network", "inspect", _LOCAL_NETWORK, check=False).returncode == 0
    samples: dict[str, Samples] = {v: {s: [] for s in STEPS} for v in (*VARIANTS, "python")}
    totals: dict[str, list[float]] = {"SDK, default polls": [], "SDK, fast polls": []}
    local_failures: dict[str, str] = {}
    try:
        for round_ in range(rounds):
            for variant, fast in (("SDK, default polls", False), ("SDK, fast polls", True)):
                times, total = _sdk_run(python, fast, opts.work)
                totals[variant].append(total)
                for step in STEPS:
                    samples[variant][step].append(times[step])
                opts.log(f"{variant} ({round_ + 1}/{rounds}): {_fmt(times)}; process {total:.1f} s")
            if local_why is None:
                for step in STEPS:
                    seconds, why = _local_step(python, step, data, opts.work)
                    if seconds is None:
                        local_failures[step] = why
                    else:
                        samples["SDK local mode"][step].append(seconds)
                    opts.log(f"SDK local mode {step} ({round_ + 1}/{rounds}): {seconds if seconds else why}")
            times = _python_api(data, opts.work)
            for step in STEPS:
                samples["python"][step].append(times[step])
            opts.log(f"emulator Python API ({round_ + 1}/{rounds}): {_fmt(times)}")
    finally:
        rmtree(data)
        if not network_existed:
            docker("network", "rm", _LOCAL_NETWORK, check=False)
    _rows(result, samples, totals, local_failures, local_why, rounds)
    result.details.append(_paragraph(version, samples, totals, local_why))
    return result


def _rows(
    result: Result,
    samples: dict[str, Samples],
    totals: dict[str, list[float]],
    local_failures: dict[str, str],
    local_why: str | None,
    rounds: int,
) -> None:
    for step in STEPS:
        base = median(samples["python"][step])
        for variant in VARIANTS:
            values = samples[variant][step]
            note = ""
            if variant == "SDK local mode":
                if local_why:
                    note = f"{LABELS[step]}: local mode not measured: {local_why}"
                elif step in local_failures:
                    note = f"{LABELS[step]}, local mode: {local_failures[step]}"
            result.rows.append(
                Row(
                    "6. SDK seed code",
                    f"{LABELS[step]}: {variant}",
                    "emulator Python API",
                    base,
                    median(values) if values else None,
                    "s",
                    n=len(values) or rounds,
                    note=note,
                )
            )
    base_total = sum(median(samples["python"][s]) for s in STEPS)
    for variant, values in totals.items():
        result.rows.append(
            Row(
                "6. SDK seed code",
                f"all five steps: {variant} (sum of steps; whole process {median(values):.1f} s)",
                "emulator Python API",
                base_total,
                sum(median(samples[variant][s]) for s in STEPS),
                "s",
                n=len(values),
            )
        )


def _fmt(times: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in times.items())


def _paragraph(version: str, samples: dict[str, Samples], totals: dict[str, list[float]], why: str | None) -> str:
    saved = sum(median(samples["SDK, default polls"][s]) - median(samples["SDK, fast polls"][s]) for s in STEPS)
    lines = [
        f"**The seed code through the SDK.** {version} in its own venv (scripts/ensure_sdk_venv.sh) runs "
        "sample_algorithm/sdk_example.py unchanged against an API server on 127.0.0.1; the fast-poll run is the "
        "same program under `python emulator/sdk_polls.py` (poll sleeps capped at 0.5 s), which saves "
        f'{saved:.0f} s of the five steps. Local mode runs the same steps with `instance_type="local"` and '
        "`file://` data, each step bounded "
        f"({LOCAL_STEP_TIMEOUT_S} s) and its containers removed after it"
        + (f"; here it was not measured: {why}" if why else "")
        + ". The emulator Python API side runs the same five pieces of work in-process with local paths "
        "(`TrainingJob`, `TransformJob`, `Endpoint`, `ProcessingJob`, `PipelineExecution`). "
        "Per step, seconds (median):",
        "",
        "| step | emulator Python API | SDK, fast polls | SDK, default polls | SDK local mode |",
        "| --- | --- | --- | --- | --- |",
    ]
    for step in STEPS:
        cells = [samples[v][step] for v in ("python", "SDK, fast polls", "SDK, default polls", "SDK local mode")]
        lines.append(f"| {LABELS[step]} | " + " | ".join(f"{median(c):.1f}" if c else "failed" for c in cells) + " |")
    return "\n".join(lines)
