"""Shared helpers for the benchmarks: timing, medians, interleaving, machine facts, RSS, bare docker runs.

Nothing here imports ``emulator``: the baselines are measured with the docker CLI and plain HTTP, so they
owe nothing to the code under test. Every container a bench starts itself carries ``--rm`` and the label
``sagemaker-emulator.bench=1`` and a unique name, and is removed by that name in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_LABEL = "sagemaker-emulator.bench=1"
SAMPLE_IMAGE = "sagemaker-emulator-sample:latest"
PROBE_IMAGE = "sagemaker-emulator-bench/probe:latest"
now = time.perf_counter


# -- results ------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the results table: a figure against its baseline, both measured in the same run."""

    bench: str
    metric: str
    baseline_what: str
    baseline: float | None
    value: float | None
    unit: str = "s"
    goal: str = ""
    #: None: no goal, or not measured.
    met: bool | None = None
    n: int = 0
    note: str = ""
    #: False for figures where emulator / baseline means nothing (e.g. a lag, a memory peak).
    has_ratio: bool = True

    @property
    def ratio(self) -> float | None:
        """emulator / baseline (times: lower is better; throughputs: higher is better)."""
        if not self.has_ratio or self.baseline is None or self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


@dataclass
class Result:
    """What one benchmark module returns: its rows and a few paragraphs of detail (markdown)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


@dataclass
class Options:
    """The command line, as the benchmark modules see it."""

    quick: bool
    repeats: int
    work: Path
    verbose: bool = True
    #: Batch transform input sizes in MB (empty: the default sizes).
    transform_mb: tuple[int, ...] = ()

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a small sample."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return float(ordered[k])


def spread(values: Sequence[float], scale: float = 1.0, fmt: str = "{:.3f}") -> str:
    """``min / median / max`` of a sample, formatted."""
    return " / ".join(fmt.format(v * scale) for v in (min(values), median(values), max(values)))


def interleave(
    variants: dict[str, Callable[[], float]], repeats: int, *, warmup: int = 1, log: Callable[[str], None] | None = None
) -> dict[str, list[float]]:
    """Run each variant ``repeats`` times as A, B, A, B, ... (after ``warmup`` unrecorded rounds).

    Each callable returns the figure it measured (seconds, or anything else). Interleaving spreads the
    machine's drift (other containers, page cache, CPU frequency) over every variant alike.
    """
    out: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + repeats):
        for name, fn in variants.items():
            value = fn()
            if round_ >= warmup:
                out[name].append(value)
            if log:
                tag = "warm-up" if round_ < warmup else f"run {round_ - warmup + 1}/{repeats}"
                log(f"{name}: {value:.4f} ({tag})")
    return out


# -- the machine --------------------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    """CPU model, cores, memory, kernel, docker versions, python version: the context every figure needs."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    server = _run(["docker", "version", "--format", "{{.Server.Version}}"])
    client = _run(["docker", "version", "--format", "{{.Client.Version}}"])
    info = _run(["docker", "info", "--format", "{{.Driver}}, cgroup v{{.CgroupVersion}}, {{.OperatingSystem}}"])
    os_name = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "OS / kernel": f"{os_name} / {platform.release()}",
        "docker": f"engine {server}, client {client} ({info})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# -- processes ----------------------------------------------------------------------------------------------
@dataclass
class ChildRun:
    """A finished child process: its output, wall time and peak RSS (the kernel's high-water mark)."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    max_rss_mb: float
    #: user + system CPU seconds of the child (its threads included, grandchildren not).
    cpu_s: float

    def json(self) -> dict[str, Any]:
        """The last stdout line, parsed (children report their own figures as one JSON line)."""
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        if self.returncode != 0 or not lines:
            raise RuntimeError(f"child failed ({self.returncode}):\n{self.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


def run_child(
    cmd: list[str], *, timeout_s: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> ChildRun:
    """Run ``cmd``; its peak RSS comes from ``wait4``'s rusage of exactly that child (``ru_maxrss``)."""
    out_path = Path(tempfile.gettempdir()) / f"bench-child-{secrets.token_hex(4)}"
    start = now()
    with open(f"{out_path}.out", "w+") as out, open(f"{out_path}.err", "w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        deadline = start + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if now() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = now() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = ChildRun(
            proc.returncode, out.read(), err.read(), wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        )
    for suffix in (".out", ".err"):
        with contextlib.suppress(OSError):
            os.unlink(f"{out_path}{suffix}")
    if wall > timeout_s:
        raise RuntimeError(f"{' '.join(cmd[:4])}... took more than {timeout_s:.0f}s; killed")
    return result


# -- docker CLI (the bare baselines) ------------------------------------------------------------------------
def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:6])} failed ({result.returncode}): {result.stderr.strip()[-1500:]}")
    return result


def bench_name(prefix: str) -> str:
    return f"sm-bench-{prefix}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def removed(name: str) -> Iterator[str]:
    """Remove the container ``name`` (ours, started with ``--name``) on the way out, whatever happens."""
    try:
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False, timeout=60)


def bare_run_args(name: str) -> list[str]:
    """The start of every bare ``docker run``: removed at exit, labelled as the bench's, named."""
    return ["run", "--rm", "--label", BENCH_LABEL, "--name", name]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for ``-p 127.0.0.1:PORT:8080``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def raw_ping(port: int, timeout_s: float = 0.5) -> int | None:
    """``GET /ping`` over a raw socket: the status code, or None when nothing answers yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            head = s.recv(64)
    except OSError:
        return None
    if not head.startswith(b"HTTP/"):
        return None
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def wait_ping_200(port: int, timeout_s: float, pause_s: float = 0.001) -> float:
    """Tight /ping loop: the perf_counter time of the first 200 (raises after ``timeout_s``)."""
    deadline = now() + timeout_s
    while now() < deadline:
        if raw_ping(port) == 200:
            return now()
        time.sleep(pause_s)
    raise RuntimeError(f"nothing answered /ping 200 on 127.0.0.1:{port} within {timeout_s}s")


# -- images and data ----------------------------------------------------------------------------------------
def base_image() -> str:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure_base_image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/ensure_base_image.sh failed: {result.stderr.strip()[-1000:]}")
    return result.stdout.strip().splitlines()[-1]


def ensure_sample_image() -> str:
    """The sample image; built (as the README says) only when it is missing."""
    if docker("image", "inspect", SAMPLE_IMAGE, check=False).returncode != 0:
        docker(
            "build",
            "-q",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base_image()}",
            "-t",
            SAMPLE_IMAGE,
            str(REPO / "sample_algorithm"),
            timeout=1800,
        )
    return SAMPLE_IMAGE


def ensure_probe_image() -> str:
    """tests/images/probe built under the bench's own tag (docker's cache makes a rebuild instant)."""
    docker(
        "build",
        "-q",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={base_image()}",
        "--label",
        BENCH_LABEL,
        "-t",
        PROBE_IMAGE,
        str(REPO / "tests" / "images" / "probe"),
        timeout=900,
    )
    return PROBE_IMAGE


IRIS_CLASSES = ("setosa", "versicolor", "virginica")


def iris_rows(n: int, seed: int = 0, *, labelled: bool = False) -> list[str]:
    """Iris-like CSV rows (4 features, one decimal each, like the real data set), newline-terminated."""
    rnd = random.Random(seed)
    # Per class: (mean, sd) of sepal length, sepal width, petal length, petal width (the real data's figures).
    stats = (
        ((5.0, 0.35), (3.4, 0.38), (1.5, 0.17), (0.25, 0.1)),
        ((5.9, 0.52), (2.8, 0.31), (4.3, 0.47), (1.3, 0.2)),
        ((6.6, 0.64), (3.0, 0.32), (5.6, 0.55), (2.0, 0.27)),
    )
    rows = []
    for _ in range(n):
        k = rnd.randrange(3)
        feats = ",".join(f"{max(0.1, rnd.gauss(m, s)):.1f}" for m, s in stats[k])
        rows.append(f"{IRIS_CLASSES[k]},{feats}\n" if labelled else f"{feats}\n")
    return rows


def write_iris_csv(path: Path, size_bytes: int, seed: int = 0) -> tuple[int, int]:
    """Write about ``size_bytes`` of unlabelled iris-like rows; (rows, bytes). A 200k-row pool is repeated."""
    pool = "".join(iris_rows(200_000, seed)).encode()
    pool_rows = pool.count(b"\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = written = 0
    with open(path, "wb") as f:
        while written + len(pool) <= size_bytes:
            f.write(pool)
            written += len(pool)
            rows += pool_rows
        rest = pool[: max(0, size_bytes - written)]
        rest = rest[: rest.rfind(b"\n") + 1]
        f.write(rest)
        written += len(rest)
        rows += rest.count(b"\n")
    return rows, written


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "rows/s":
        return f"{value / 1000:,.0f}k rows/s" if value >= 10_000 else f"{value:,.0f} rows/s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:g} {unit}"


# -- shared fixtures (made once per bench run, under Options.work) ------------------------------------------
LIMIT_CPUS = min(2, os.cpu_count() or 1)
LIMIT_MEMORY = "8g"
"""ml.m5.large (the emulator's default instance type: 2 vCPU, 8 GiB) clamped to this machine, for bare runs."""


def iris_channel(work: Path, rows: int = 120) -> Path:
    """A training channel dir with one labelled iris-like CSV (label first, no header), like a train split."""
    channel = work / "iris-train"
    if not (channel / "train.csv").exists():
        channel.mkdir(parents=True, exist_ok=True)
        (channel / "train.csv").write_text("".join(iris_rows(rows, seed=1, labelled=True)))
    return channel


def write_training_config(config_dir: Path, channels: Sequence[str], host: str = "algo-1") -> None:
    """The three files SageMaker writes to /opt/ml/input/config for a one-host File-mode job."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text("{}")
    (config_dir / "inputdataconfig.json").write_text(
        json.dumps(
            {
                c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
                for c in channels
            }
        )
    )
    (config_dir / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": host,
                "current_instance_type": "ml.m5.large",
                "current_group_name": "homogeneousCluster",
                "hosts": [host],
                "network_interface_name": "eth0",
                "instance_groups": [
                    {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large", "hosts": [host]}
                ],
            }
        )
    )


def sample_model(work: Path) -> tuple[Path, Path]:
    """(model dir, model.tar.gz) of the sample image trained on :func:`iris_channel`, by a bare docker run."""
    root = work / "sample-model"
    tar = root / "model.tar.gz"
    if tar.exists():
        return root / "model", tar
    rmtree(root)
    write_training_config(root / "config", ["train"])
    (root / "model").mkdir(parents=True)
    name = bench_name("model")
    with removed(name):
        docker(
            *bare_run_args(name),
            "-v",
            f"{root / 'config'}:/opt/ml/input/config",
            "-v",
            f"{iris_channel(work)}:/opt/ml/input/data/train:ro",
            "-v",
            f"{root / 'model'}:/opt/ml/model",
            SAMPLE_IMAGE,
            "train",
            timeout=300,
        )
    import tarfile

    with tarfile.open(tar, "w:gz") as tf:
        for p in sorted((root / "model").iterdir()):
            tf.add(p, arcname=p.name)
    return root / "model", tar
