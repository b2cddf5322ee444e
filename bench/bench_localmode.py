"""5. The SageMaker Python SDK's local mode on the same training and transform, when it can run here.

Local mode runs in a separate venv (``$SM_BENCH_LOCALMODE_VENV``, default ``bench-localmode-venv`` in the
system temp dir, made with ``pip install sagemaker==2.257.7`` when missing: never the project's
environment) and needs docker compose (v1 from Debian's ``docker-compose`` package is what
local-mode-measured.md used). It gets fake credentials, ``file://`` inputs and outputs, telemetry off and
``AWS_ENDPOINT_URL`` and HTTP(S)_PROXY on 127.0.0.1:9 so that no AWS or web call can leave the machine
(see _localmode_child.py for how telemetry is switched off and which calls are timed).

Three variants, interleaved: bare docker (as in benchmarks 1 and 3), the emulator, local mode. The time is
the call itself (``fit()`` / ``transform()`` against ``TrainingJob.run()`` / ``TransformJob.run()``); the
interpreter and imports are left out on both sides. Local mode leaves a stopped container per job and a
"sagemaker-local" network: the bench removes exactly those (by their compose working-dir label, which is
under the bench's own temp root), and the network only if it did not exist before.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import bench_training, bench_transform
from bench._common import (
    SAMPLE_IMAGE,
    Options,
    Result,
    Row,
    docker,
    ensure_sample_image,
    free_port,
    interleave,
    iris_channel,
    median,
    now,
    rmtree,
    run_child,
    sample_model,
    spread,
    write_iris_csv,
)

SDK_VERSION = "2.257.7"  # the version local-mode-measured.md measured
VENV = Path(os.environ.get("SM_BENCH_LOCALMODE_VENV", Path(tempfile.gettempdir()) / "bench-localmode-venv"))
CHILD = Path(__file__).resolve().parent / "_localmode_child.py"
TRANSFORM_ROWS = 100_000
_NETWORK = "sagemaker-local"
_QUOTED = "shared/reference/local-mode-measured.md (the project's research notes)"

QUOTED_ROWS = [
    # (figure, bare, local mode, ratio) from local-mode-measured.md: quoted, not measured here.
    ("training, 120 rows (`fit`)", "1.14 s", "1.67-2.00 s", "1.35-1.75x"),
    ("endpoint usable, default `deploy()`", "1.20 s (first /ping 200)", "35-36 s", "~30x"),
    ("endpoint usable, `deploy(wait=False)`", "1.20 s", "5.0-6.1 s", "4-5x"),
    ("request latency, median / p95", "2.2 / 3.4 ms", "31 / 35 ms", "~14x"),
    ("batch transform MultiRecord, 100k rows (1.6 MB)", "1.84 s (54k rows/s)", "7.2-7.6 s (13-14k rows/s)", "~4x"),
    ("batch transform SingleRecord, 2k rows", "6.85 s (292 rows/s)", "71-74 s (27-28 rows/s)", "~10x"),
]


def _compose_available() -> str | None:
    """Why local mode cannot run here (None when it can)."""
    if shutil.which("docker-compose"):
        return None
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        return None
    return (
        "docker compose is not installed (neither `docker-compose` nor the `docker compose` plugin); "
        "`apt-get install docker-compose` gives v1, which local mode supports"
    )


def _ensure_venv(opts: Options) -> str | None:
    """Make the local-mode venv if missing; why it cannot be made (None when it is ready)."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import sagemaker, sys; sys.stdout.write(sagemaker.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return None
    opts.log(f"localmode: creating {VENV} and installing sagemaker=={SDK_VERSION} (a few minutes, once)")
    made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"cannot create a venv at {VENV}: {made.stderr.strip()[-300:]}"
    pip = subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "-q", f"sagemaker=={SDK_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if pip.returncode != 0:
        return f"`pip install sagemaker=={SDK_VERSION}` failed: {pip.stderr.strip()[-300:]}"
    return None


def _child_env() -> dict[str, str]:
    """Fake credentials; every AWS endpoint and web proxy on a closed loopback port: nothing leaves the machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SAGEMAKER_")) and k.lower() not in {"http_proxy", "https_proxy", "no_proxy"}
    }
    closed = "http://127.0.0.1:9"
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": closed,
            "AWS_EC2_METADATA_DISABLED": "true",
            "HTTP_PROXY": closed,
            "HTTPS_PROXY": closed,
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def _cleanup(root: Path) -> None:
    """Remove the containers local mode left behind for jobs under ``root`` (and only those)."""
    listed = docker(
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.project.working_dir",
        "--format",
        '{{.ID}} {{.Label "com.docker.compose.project.working_dir"}}',
        check=False,
    ).stdout
    ids = [cid for cid, _, wd in (ln.partition(" ") for ln in listed.splitlines()) if wd.startswith(str(root))]
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)


class _LocalMode:
    def __init__(self, opts: Options) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="localmode-", dir=opts.work))
        self.env = _child_env()

    def run(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        root = Path(tempfile.mkdtemp(prefix="root-", dir=self.work))
        out = Path(tempfile.mkdtemp(prefix="out-", dir=self.work))
        try:
            child = run_child(
                [
                    str(VENV / "bin" / "python"),
                    str(CHILD),
                    kind,
                    json.dumps({**args, "root": str(root), "out": str(out)}),
                ],
                timeout_s=900,
                env=self.env,
                cwd=self.work,
            )
            return child.json()
        finally:
            _cleanup(root)
            rmtree(root)
            rmtree(out)


def run(opts: Options) -> Result:
    result = Result("localmode")
    why = _compose_available() or _ensure_venv(opts)
    if why:
        result.rows.append(
            Row("5. vs SDK local mode", "training and transform", "local mode", None, None, note=f"not measured: {why}")
        )
        result.details.append(_quoted_paragraph(f"Local mode was not measured here: {why}."))
        return result
    ensure_sample_image()
    network_existed = docker("network", "inspect", _NETWORK, check=False).returncode == 0
    lm = _LocalMode(opts)
    try:
        _training(opts, lm, result)
        _transform(opts, lm, result)
    finally:
        if not network_existed:
            docker("network", "rm", _NETWORK, check=False)
    compose = subprocess.run(["docker-compose", "version", "--short"], capture_output=True, text=True, check=False)
    result.details.append(
        _quoted_paragraph(
            f"Local mode here: sagemaker {SDK_VERSION} in its own venv (bench-localmode-venv in the temp dir), "
            f"docker-compose {compose.stdout.strip() or '?'}, fake credentials, file:// data, telemetry off; "
            "timed: `fit()` with its default logs, `transform(wait=False)` "
            "(local mode runs the job inside the call; `wait=True` would add its 5 s poll sleep)."
        )
    )
    return result


def _training(opts: Options, lm: _LocalMode, result: Result) -> None:
    channel = iris_channel(opts.work)
    samples = interleave(
        {
            "bare": lambda: bench_training.run_bare(SAMPLE_IMAGE, channel, opts.work, {}),
            "emulator": lambda: bench_training.run_emulator(SAMPLE_IMAGE, channel, opts.work, {}),
            "local mode": lambda: float(lm.run("train", {"image": SAMPLE_IMAGE, "channel": str(channel)})["seconds"]),
        },
        opts.repeats,
        log=opts.log,
    )
    bare, emu, local = (median(samples[k]) for k in ("bare", "emulator", "local mode"))
    result.rows.append(
        Row(
            "5. vs SDK local mode",
            "training, 120 rows: `fit()` vs `TrainingJob.run()`",
            "SDK local mode `fit()`",
            local,
            emu,
            "s",
            "ratio < 1",
            emu < local,
            opts.repeats,
            f"local mode / bare {local / bare:.2f}x, emulator / bare {emu / bare:.2f}x (bare {bare:.3f} s); "
            f"local mode {spread(samples['local mode'])} s",
        )
    )


def _transform(opts: Options, lm: _LocalMode, result: Result) -> None:
    model_dir, model_tar = sample_model(opts.work)
    data = opts.work / "localmode-transform"
    rows, size = write_iris_csv(data / "input.csv", TRANSFORM_ROWS * 16, seed=7)
    rows_file = data / "input.csv"
    workers = int(bench_transform._execution_parameters(model_dir).get("MaxConcurrentTransforms") or 1)

    def local() -> float:
        tar_copy = lm.work / "model.tar.gz"  # local mode extracts next to the archive: give it a copy
        shutil.copy(model_tar, tar_copy)
        report = lm.run(
            "transform",
            {
                "image": SAMPLE_IMAGE,
                "model_tar": str(tar_copy),
                "input": str(data),
                "port": free_port(),
                "workers": workers,
            },
        )
        if report.get("output_lines", 0) < rows:
            raise RuntimeError(f"local mode transform wrote {report.get('output_lines')} lines for {rows} rows")
        return float(report["seconds"])

    def emulator() -> float:
        from emulator.config import EmulatorConfig
        from emulator.transform import TransformJob

        out = Path(tempfile.mkdtemp(prefix="lm-emu-", dir=opts.work))
        try:
            request = {
                "MaxConcurrentTransforms": workers,
                "MaxPayloadInMB": 6,
                "BatchStrategy": "MultiRecord",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(data)}},
                    "ContentType": "text/csv",
                    "SplitType": "Line",
                },
                "TransformOutput": {"S3OutputPath": str(out), "Accept": "text/csv", "AssembleWith": "Line"},
            }
            start = now()
            described = TransformJob(
                request, image=SAMPLE_IMAGE, model_data=str(model_tar), config=EmulatorConfig(stream_logs=False)
            ).run()
            if described["TransformJobStatus"] != "Completed":
                raise RuntimeError(f"emulator transform failed: {described.get('FailureReason')}")
            return now() - start
        finally:
            rmtree(out)

    try:
        samples = interleave(
            {
                "bare": lambda: rows / bench_transform.run_bare(rows_file, model_dir, rows, opts.work, []),
                "emulator": emulator,
                "local mode": local,
            },
            opts.repeats,
            log=opts.log,
        )
    finally:
        rmtree(data)
    bare, emu, loc = (median(samples[k]) for k in ("bare", "emulator", "local mode"))
    result.rows.append(
        Row(
            "5. vs SDK local mode",
            f"batch transform MultiRecord, {rows // 1000}k rows ({size / 1e6:.1f} MB): "
            "`transform()` vs `TransformJob.run()`",
            "SDK local mode `transform()`",
            loc,
            emu,
            "s",
            "ratio < 1",
            emu < loc,
            opts.repeats,
            f"rows/s: local mode {rows / loc / 1000:.0f}k, emulator {rows / emu / 1000:.0f}k, "
            f"bare {rows / bare / 1000:.0f}k; "
            f"local mode / bare {loc / bare:.2f}x, emulator / bare {emu / bare:.2f}x",
        )
    )


def _quoted_paragraph(lead: str) -> str:
    lines = [
        f"**SDK local mode.** {lead} For reference, the figures local-mode-measured.md reports for the same "
        "machine kind (sagemaker 2.257.7, docker-compose 1.29.2) — **quoted, not measured by this command**:",
        "",
        "| figure (quoted) | bare docker | local mode | ratio |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in QUOTED_ROWS]
    lines += [
        "",
        f"Source: {_QUOTED}. Its diagnosis: a fixed 30 s wait before the first endpoint check, /ping "
        "polled every 5 s, `docker info` + `docker context inspect` on every request, one request at a time.",
    ]
    return "\n".join(lines)
