"""3. Batch transform: records per second and the emulator process's peak memory, 100 MB and 1 GB of CSV.

Emulator: a child process runs ``TransformJob(request, image=sample, model_data=model.tar.gz).run()``
(MultiRecord, SplitType Line, MaxPayloadInMB 6, MaxConcurrentTransforms = the container's gunicorn workers,
as its /execution-parameters reports) and reports the time of ``run()``: container start to output
published and container removed. Its peak RSS is the kernel's high-water mark of that process
(``ru_maxrss`` from ``wait4``): Python, the emulator's imports and every buffer included.

Baseline: the same container started bare (``docker run -d``, same limits, model dir mounted read-only)
and a plain sequential loop in a child process: read the input in <= 6 MiB batches cut at line ends,
``requests.Session().post`` each, append each response to the output file. Timed from ``docker run`` to
the container stopped (``docker stop``), the child's interpreter start-up left out on both sides.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    LIMIT_CPUS,
    LIMIT_MEMORY,
    REPO,
    SAMPLE_IMAGE,
    Options,
    Result,
    Row,
    bare_run_args,
    bench_name,
    docker,
    ensure_sample_image,
    free_port,
    interleave,
    median,
    now,
    removed,
    rmtree,
    run_child,
    sample_model,
    spread,
    wait_ping_200,
    write_iris_csv,
)

MIB = 1024 * 1024
PAYLOAD_LIMIT = 6 * MIB
MEMORY_GOAL_MB = 200
#: Inputs up to this size are also sent by the plain loop; larger ones measure the emulator's memory alone.
LOOP_MAX_MB = 1000
SINGLE_RECORD_ROWS = 2000
CPU_GOAL = 1.5
_CHILD_TIMEOUT_S = 3600


# -- the two children -------------------------------------------------------------------------------------
def child_emulator(
    input_dir: str, out_dir: str, model_tar: str, workers: int, strategy: str = "MultiRecord"
) -> dict[str, Any]:
    from emulator.config import EmulatorConfig
    from emulator.transform import TransformJob

    request = {
        "MaxConcurrentTransforms": workers,
        "MaxPayloadInMB": 6,
        "BatchStrategy": strategy,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_dir}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": out_dir, "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    start = now()
    job = TransformJob(request, image=SAMPLE_IMAGE, model_data=model_tar, config=EmulatorConfig(stream_logs=False))
    described = job.run()
    elapsed = now() - start
    if described["TransformJobStatus"] != "Completed":
        raise SystemExit(f"transform failed: {described.get('FailureReason')}")
    return {
        "seconds": elapsed,
        "records": sum(f.records for f in job.files),
        "requests": sum(f.requests for f in job.files),
    }


def iter_blocks(src: Any) -> Any:
    """<= 6 MiB request bodies of whole lines, cut at the last newline of each block read."""
    carry = b""
    while True:
        block = src.read(PAYLOAD_LIMIT - len(carry))
        data = carry + block
        if not data:
            return
        cut = len(data) if not block else data.rfind(b"\n") + 1
        yield data[:cut]
        carry = data[cut:]


def iter_lines(src: Any) -> Any:
    """One request body per line (SingleRecord)."""
    for line in src:
        if line.strip():
            yield line if line.endswith(b"\n") else line + b"\n"


def child_loop(port: int, input_file: str, out_file: str, strategy: str = "MultiRecord") -> dict[str, Any]:
    import requests

    session = requests.Session()
    url = f"http://127.0.0.1:{port}/invocations"
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    records = requests_sent = 0
    start = now()
    with open(input_file, "rb") as src, open(out_file, "wb") as out:
        for body in iter_blocks(src) if strategy == "MultiRecord" else iter_lines(src):
            response = session.post(url, data=body, headers=headers, timeout=600)
            response.raise_for_status()
            out.write(response.content if response.content.endswith(b"\n") else response.content + b"\n")
            records += body.count(b"\n")
            requests_sent += 1
    return {"seconds": now() - start, "records": records, "requests": requests_sent}


# -- the parent's side ------------------------------------------------------------------------------------
def _execution_parameters(model_dir: Path) -> dict[str, Any]:
    import requests

    name, port = bench_name("xparams"), free_port()
    with removed(name):
        docker(
            *bare_run_args(name),
            "-d",
            "-p",
            f"127.0.0.1:{port}:8080",
            "-v",
            f"{model_dir}:/opt/ml/model:ro",
            "--cpus",
            str(LIMIT_CPUS),
            "--memory",
            LIMIT_MEMORY,
            SAMPLE_IMAGE,
            "serve",
        )
        wait_ping_200(port, 120, pause_s=0.01)
        params: dict[str, Any] = requests.get(f"http://127.0.0.1:{port}/execution-parameters", timeout=10).json()
    return params


def split_cost(path: Path) -> tuple[float, float, int]:
    """CPU seconds to batch ``path`` as the emulator does (records, then MultiRecord batches) and as the loop
    does (6 MiB blocks cut at the last newline), alone, without any server; and the record count."""
    import time

    from emulator.transform import records as _records

    c0 = time.process_time()
    with open(path, "rb") as f:
        n = sum(b.count for b in _records.iter_line_batches(f, "MultiRecord", PAYLOAD_LIMIT, source=path.name))
    c1 = time.process_time()
    with open(path, "rb") as f:
        for _ in iter_blocks(f):
            pass
    return c1 - c0, time.process_time() - c1, n


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            n += chunk.count(b"\n")
    return n


def run_emulator(
    input_dir: Path,
    model_tar: Path,
    workers: int,
    rows: int,
    work: Path,
    rss: list[tuple[float, float]],
    strategy: str = "MultiRecord",
) -> float:
    out_dir = Path(tempfile.mkdtemp(prefix="transform-emu-", dir=work))
    try:
        child = run_child(
            [
                sys.executable,
                "-m",
                "bench.bench_transform",
                "emulator",
                str(input_dir),
                str(out_dir),
                str(model_tar),
                str(workers),
                strategy,
            ],
            timeout_s=_CHILD_TIMEOUT_S,
            cwd=REPO,
        )
        report = child.json()
        outputs = list(out_dir.rglob("*.out"))
        if report["records"] != rows or len(outputs) != 1 or _count_lines(outputs[0]) != rows:
            raise RuntimeError(f"emulator transform: {report} for {rows} rows, outputs {outputs}")
        rss.append((child.max_rss_mb, child.cpu_s))
        return rows / float(report["seconds"])
    finally:
        rmtree(out_dir)


def run_bare(
    input_file: Path,
    model_dir: Path,
    rows: int,
    work: Path,
    rss: list[tuple[float, float]],
    strategy: str = "MultiRecord",
) -> float:
    out_dir = Path(tempfile.mkdtemp(prefix="transform-bare-", dir=work))
    name, port = bench_name("transform"), free_port()
    try:
        with removed(name):
            start = now()
            docker(
                *bare_run_args(name),
                "-d",
                "-p",
                f"127.0.0.1:{port}:8080",
                "-v",
                f"{model_dir}:/opt/ml/model:ro",
                "--cpus",
                str(LIMIT_CPUS),
                "--memory",
                LIMIT_MEMORY,
                "-e",
                "SAGEMAKER_BATCH=true",
                SAMPLE_IMAGE,
                "serve",
            )
            ready = wait_ping_200(port, 120, pause_s=0.01)
            child = run_child(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_transform",
                    "loop",
                    str(port),
                    str(input_file),
                    str(out_dir / "out.csv"),
                    strategy,
                ],
                timeout_s=_CHILD_TIMEOUT_S,
                cwd=REPO,
            )
            report = child.json()
            t_stop = now()
            docker("stop", "-t", "30", name, check=False)
            elapsed = (ready - start) + float(report["seconds"]) + (now() - t_stop)
        if report["records"] != rows or _count_lines(out_dir / "out.csv") != rows:
            raise RuntimeError(f"bare loop: {report} for {rows} rows")
        rss.append((child.max_rss_mb, child.cpu_s))
        return rows / elapsed
    finally:
        rmtree(out_dir)


def run(opts: Options) -> Result:
    ensure_sample_image()
    model_dir, model_tar = sample_model(opts.work)
    workers = int(_execution_parameters(model_dir).get("MaxConcurrentTransforms") or 1)
    opts.log(f"transform: the sample's /execution-parameters says MaxConcurrentTransforms={workers}")
    sizes = list(opts.transform_mb) or ([100] if opts.quick else [100, 1000])
    result = Result("transform")
    peaks: dict[int, float] = {}
    cpu: dict[int, tuple[float, float | None]] = {}
    split: dict[int, tuple[float, float, int]] = {}
    for size_mb in sizes:
        data_dir = opts.work / f"transform-{size_mb}mb"
        rows, size = write_iris_csv(data_dir / "input.csv", size_mb * 1000 * 1000, seed=size_mb)
        # 1 GB takes ~6 min per run on 2 cores: one interleaved pair keeps the whole command under an hour.
        repeats = opts.repeats if size_mb <= 100 else 1
        opts.log(f"transform: {size / 1e6:.0f} MB, {rows:,} rows, {repeats} repeats")
        emu_rss: list[tuple[float, float]] = []
        bare_rss: list[tuple[float, float]] = []
        split_emu, split_loop, split_n = split_cost(data_dir / "input.csv")
        split[size_mb] = (split_emu, split_loop, split_n)
        variants: dict[str, Callable[[], float]] = {
            "emulator": partial(run_emulator, data_dir, model_tar, workers, rows, opts.work, emu_rss)
        }
        if size_mb <= LOOP_MAX_MB:  # beyond, the emulator's memory is the figure: the loop would take too long
            variants["bare"] = partial(run_bare, data_dir / "input.csv", model_dir, rows, opts.work, bare_rss)
        try:
            samples = interleave(
                variants,
                repeats,
                warmup=1 if size_mb <= 100 else 0,
                log=opts.log,
            )
        finally:
            rmtree(data_dir)
        emu, bare = median(samples["emulator"]), median(samples["bare"]) if "bare" in samples else None
        emu_rss, bare_rss = emu_rss[-repeats:], bare_rss[-repeats:]  # the warm-up's left out
        peak = max(r for r, _ in emu_rss)
        peaks[size_mb] = peak
        cpu[size_mb] = (median([c for _, c in emu_rss]), median([c for _, c in bare_rss]) if bare_rss else None)
        label = f"{size / 1e6:,.0f} MB ({rows / 1e6:.1f}M rows)"
        result.rows.append(
            Row(
                f"3. batch transform {size_mb} MB",
                f"throughput, MultiRecord, {label}",
                "sequential `requests` loop, same container",
                bare,
                emu,
                "rows/s",
                "ratio ≥ 1.00",
                None if bare is None else emu >= bare,
                repeats,
                f"emulator {spread(samples['emulator'], 1e-3, '{:.0f}')}k; "
                + (f"loop {spread(samples['bare'], 1e-3, '{:.0f}')}k " if bare is not None else "loop not run ")
                + f"rows/s (min/median/max); MaxConcurrentTransforms={workers}",
            )
        )
        result.rows.append(
            Row(
                f"3. batch transform {size_mb} MB",
                "peak RSS of the emulator process (ru_maxrss)",
                "the loop's own process",
                max((r for r, _ in bare_rss), default=None),
                peak,
                "MB",
                f"< {MEMORY_GOAL_MB} MB, flat with size",
                peak < MEMORY_GOAL_MB,
                len(emu_rss),
                f"emulator peaks (MB): {', '.join(f'{r:.0f}' for r, _ in emu_rss)}",
                has_ratio=False,
            )
        )
        emu_cpu, loop_cpu = cpu[size_mb]
        result.rows.append(
            Row(
                f"3. batch transform {size_mb} MB",
                "CPU seconds of the client process (user + system)",
                "the loop's own process",
                loop_cpu,
                emu_cpu,
                "s",
                f"ratio ≤ {CPU_GOAL:.2f}",
                None if loop_cpu is None else emu_cpu / loop_cpu <= CPU_GOAL,
                len(emu_rss),
                f"emulator CPU (s): {', '.join(f'{c:.2f}' for _, c in emu_rss)}; "
                f"loop: {', '.join(f'{c:.2f}' for _, c in bare_rss) or 'not run'}",
            )
        )
    result.rows.append(_single_record(opts, model_dir, model_tar, workers, result))
    if len(peaks) > 1:
        small, big = peaks[min(peaks)], peaks[max(peaks)]
        result.details.append(
            f"**Batch transform memory.** Peak RSS of the emulator process: {small:.0f} MB for {min(peaks)} MB of "
            f"input, {big:.0f} MB for {max(peaks)} MB ({big - small:+.0f} MB for {max(peaks) // min(peaks)}x the "
            "input): the input is streamed, a bounded window of batches is in flight, and large responses spool to "
            "disk."
        )
    result.details.append(
        "**Batch transform throughput.** Both sides include the container's start, readiness and stop; the "
        "emulator's figure also includes /execution-parameters, output publication and removal. The sample serves "
        f"with {workers} gunicorn sync workers on {os.cpu_count()} cores, so concurrency can at best use both "
        "cores, which the client's own work shares with the server. CPU seconds of the client process (median): "
        + "; ".join(
            f"{mb} MB: emulator {e:.1f} s" + (f", loop {b:.1f} s ({e / b:.2f}x)" if b else "")
            for mb, (e, b) in cpu.items()
        )
        + ". Splitting and batching alone (no server, measured on the same file): "
        + "; ".join(
            f"{mb} MB: emulator {e:.2f} s CPU ({e / n * 1e9:.0f} ns per record, `records.iter_line_batches`: "
            f"blocks cut at record ends, no Python step per line), loop {b:.2f} s (6 MiB blocks cut at the last "
            "newline)"
            for mb, (e, b, n) in split.items()
        )
        + "; on 2 cores that CPU is taken from the server's workers."
    )
    return result


def _single_record(opts: Options, model_dir: Path, model_tar: Path, workers: int, result: Result) -> Row:
    """SingleRecord: one request per line, the emulator's window of MaxConcurrentTransforms against the loop's one."""
    rows_wanted = min(1000, SINGLE_RECORD_ROWS) if opts.quick else SINGLE_RECORD_ROWS
    data_dir = opts.work / "transform-single"
    rows, _ = write_iris_csv(data_dir / "input.csv", rows_wanted * 16, seed=7)
    emu_rss: list[tuple[float, float]] = []
    bare_rss: list[tuple[float, float]] = []
    try:
        samples = interleave(
            {
                "emulator": partial(
                    run_emulator, data_dir, model_tar, workers, rows, opts.work, emu_rss, "SingleRecord"
                ),
                "bare": partial(run_bare, data_dir / "input.csv", model_dir, rows, opts.work, bare_rss, "SingleRecord"),
            },
            opts.repeats,
            warmup=1,
            log=opts.log,
        )
    finally:
        rmtree(data_dir)
    emu, bare = median(samples["emulator"]), median(samples["bare"])
    emu_cpu = median([c for _, c in emu_rss[-opts.repeats :]])
    loop_cpu = median([c for _, c in bare_rss[-opts.repeats :]])
    result.details.append(
        f"**Batch transform, SingleRecord** ({rows:,} rows, one request per row): the emulator keeps "
        f"MaxConcurrentTransforms={workers} requests in flight, the loop one. Client CPU (median): emulator "
        f"{emu_cpu:.2f} s, loop {loop_cpu:.2f} s ({emu_cpu / loop_cpu:.2f}x): each row is a request on both sides, "
        "so the client's work per row is the HTTP request; the emulator cuts the rows from blocks (no per-line read)."
    )
    return Row(
        "3. batch transform SingleRecord",
        f"throughput, SingleRecord, {rows:,} rows (one request each)",
        "sequential `requests` loop, one row per request",
        bare,
        emu,
        "rows/s",
        "ratio ≥ 1.00",
        emu >= bare,
        opts.repeats,
        f"emulator {spread(samples['emulator'], 1, '{:.0f}')}; loop {spread(samples['bare'], 1, '{:.0f}')} rows/s "
        f"(min/median/max); MaxConcurrentTransforms={workers}",
    )


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "emulator":
        report = child_emulator(args[0], args[1], args[2], int(args[3]), args[4])
    elif kind == "loop":
        report = child_loop(int(args[0]), args[1], args[2], args[3])
    else:
        raise SystemExit(f"unknown child {kind!r}")
    print(json.dumps(report))
