"""4. The contract suite's wall time on the sample image against the container runs it cannot avoid.

Suite: ``python -m pytest --image sagemaker-emulator-sample:latest -q`` in a child process, from its start
to its exit (interpreter, pytest, imports and reporting included). While it runs, ``docker events`` filtered
on the emulator's ``sagemaker-emulator.pid`` label (the child's pid: no other process's containers) records
every container the suite starts and how long each lived.

Baseline, the sum of the container runs any suite must make to observe each behaviour once, each measured
bare with the docker CLI and plain HTTP on the suite's own data files (contract_tests/data):

1. a successful training run (``train`` with the train channel and hyperparameters, then a tar of the model);
2. a failing training run (no channel: ``train`` must exit non-zero);
3. a training run stopped by SIGTERM once it printed ``train_accuracy=`` (validation channel x4000), to exit;
4. a serving container from ``docker run`` to /ping 200, the config's request, a 6 MiB request and a malformed
   one, then ``docker stop`` (SIGTERM) to exit (the SIGTERM check can reuse this container's stop);
5. a batch-mode serving container (``SAGEMAKER_BATCH=true``) to /ping 200, ``/execution-parameters``, one
   MultiRecord request, ``docker stop``;
6. a processing run (``processing`` splitting the raw CSV) and 7. a failing one (no input);
8. a 2-host training run (two containers on a private network, named algo-1 and algo-2: the multi-host check);
   then the FastFile check's training run and the checkpoint check's two (the second resumes from the first);
9. a serving container on the model plus the extra files real model.tar.gz files hold, to /ping 200, one
   request, ``docker stop`` (the extra-model-files check). The batch container of 5 also gets one MultiRecord
   request of 6 MiB (the MaxPayloadInMB check).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from bench._common import (
    BENCH_LABEL,
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
    spread,
    wait_ping_200,
    write_training_config,
)

DATA = REPO / "contract_tests" / "data"
#: The performance issue's goal: the suite within 1.2x of the container time it cannot avoid.
SUITE_GOAL = 1.2
HYPERPARAMETERS = {"max_depth": "3", "criterion": "entropy", "min_samples_leaf": "1", "random_state": "0"}
SIX_MIB = 6 * 1024 * 1024


class _Events:
    """``docker events`` for the containers of one process (by the emulator's pid label), in a thread."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.events: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None

    def watch(self, pid: int) -> None:
        self.proc = subprocess.Popen(
            [
                "docker",
                "events",
                "--filter",
                "type=container",
                "--filter",
                f"label=sagemaker-emulator.pid={pid}",
                "--filter",
                "event=start",
                "--filter",
                "event=die",
                "--format",
                "{{json .}}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def summary(self) -> tuple[Counter[str], float]:
        """(containers started per kind, total seconds they were running)."""
        starts: dict[str, int] = {}
        kinds: Counter[str] = Counter()
        lived = 0
        for e in self.events:
            cid, status, t = e.get("id", ""), e.get("status"), int(e.get("timeNano", 0))
            if status == "start":
                starts[cid] = t
                kinds[(e.get("Actor", {}).get("Attributes") or {}).get("sagemaker-emulator.kind", "?")] += 1
            elif status == "die" and cid in starts:
                lived += t - starts.pop(cid)
        return kinds, lived / 1e9


def run_suite(events_log: list[tuple[Counter[str], float]]) -> float:
    """The suite in a child process; returns its wall time (the child's pid labels its containers)."""
    events = _Events()
    cmd = [sys.executable, "-m", "pytest", "--image", SAMPLE_IMAGE, "-q", "-p", "no:cacheprovider"]
    start = now()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    events.watch(proc.pid)
    try:
        out, _ = proc.communicate(timeout=1800)
    finally:
        if proc.poll() is None:
            proc.kill()
        elapsed = now() - start
        events.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"the contract suite failed ({proc.returncode}):\n{out[-2000:]}")
    events_log.append(events.summary())
    return elapsed


# -- the bare baseline ------------------------------------------------------------------------------------
def _bare_train(
    root: Path,
    channels: dict[str, Path],
    *,
    expect_ok: bool,
    sigterm_after: str | None = None,
    checkpoints: Path | None = None,
) -> float:
    write_training_config(root / "config", list(channels))
    (root / "config" / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    for d in ("model", "output"):
        (root / d).mkdir(parents=True, exist_ok=True)
    mounts = [
        "-v",
        f"{root / 'config'}:/opt/ml/input/config",
        "-v",
        f"{root / 'model'}:/opt/ml/model",
        "-v",
        f"{root / 'output'}:/opt/ml/output",
    ]
    if checkpoints is not None:
        checkpoints.mkdir(parents=True, exist_ok=True)
        (root / "config" / "checkpointconfig.json").write_text(
            json.dumps({"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://bench/checkpoints"})
        )
        mounts += ["-v", f"{checkpoints}:/opt/ml/checkpoints"]
    for name, path in channels.items():
        mounts += ["-v", f"{path}:/opt/ml/input/data/{name}:ro"]
    name = bench_name("contract-train")
    start = now()
    with removed(name):
        if sigterm_after is None:
            code = docker(
                *bare_run_args(name), "--hostname", "algo-1", *mounts, SAMPLE_IMAGE, "train", check=False, timeout=600
            ).returncode
        else:
            docker(*bare_run_args(name), "-d", "--hostname", "algo-1", *mounts, SAMPLE_IMAGE, "train")
            logs = subprocess.Popen(
                ["docker", "logs", "-f", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            try:
                assert logs.stdout is not None
                for line in logs.stdout:
                    if sigterm_after in line:
                        break
            finally:
                logs.terminate()
                logs.wait(timeout=10)
            docker("stop", "-t", "120", name, check=False, timeout=200)
            code = 0
        if expect_ok:
            with tarfile.open(root / "model.tar.gz", "w:gz") as tf:
                for p in sorted((root / "model").iterdir()):
                    tf.add(p, arcname=p.name)
    if (code == 0) != expect_ok:
        raise RuntimeError(f"bare training exited {code}, expected {'0' if expect_ok else 'non-zero'}")
    return now() - start


def _bare_two_hosts(root: Path, train_dir: Path) -> float:
    """Two `train` containers on a private network, algo-1 and algo-2, each with its own config, until both exit."""
    hosts = ["algo-1", "algo-2"]
    network = bench_name("contract-net")
    names = [bench_name(f"contract-{h}") for h in hosts]
    start = now()
    docker("network", "create", "--label", BENCH_LABEL, network)
    try:
        for host, name in zip(hosts, names, strict=True):
            config = root / host / "config"
            write_training_config(config, ["train"], host)
            resource = json.loads((config / "resourceconfig.json").read_text())
            resource["hosts"] = resource["instance_groups"][0]["hosts"] = hosts
            (config / "resourceconfig.json").write_text(json.dumps(resource))
            (config / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
            for d in ("model", "output"):
                (root / host / d).mkdir(parents=True, exist_ok=True)
            docker(
                *bare_run_args(name), "-d", "--network", network, "--network-alias", host, "--hostname", host,
                "-v", f"{config}:/opt/ml/input/config", "-v", f"{root / host / 'model'}:/opt/ml/model",
                "-v", f"{root / host / 'output'}:/opt/ml/output", "-v", f"{train_dir}:/opt/ml/input/data/train:ro",
                SAMPLE_IMAGE, "train",
            )  # fmt: skip
        codes = [docker("wait", name, check=False, timeout=600).stdout.strip() for name in names]
    finally:
        for name in names:
            docker("rm", "-f", "-v", name, check=False, timeout=60)
        docker("network", "rm", network, check=False, timeout=60)
    if codes != ["0", "0"]:
        raise RuntimeError(f"bare 2-host training exited {codes}")
    return now() - start


def _bare_serve(model_dir: Path, *, batch: bool, one_request: bool = False) -> float:
    name, port = bench_name("contract-serve"), free_port()
    url = f"http://127.0.0.1:{port}"
    csv = {"Content-Type": "text/csv", "Accept": "text/csv"}
    start = now()
    with removed(name):
        env = ["-e", "SAGEMAKER_BATCH=true"] if batch else []
        docker(
            *bare_run_args(name),
            "-d",
            "-p",
            f"127.0.0.1:{port}:8080",
            *env,
            "-v",
            f"{model_dir}:/opt/ml/model:ro",
            SAMPLE_IMAGE,
            "serve",
        )
        wait_ping_200(port, 240, pause_s=0.01)
        with requests.Session() as s:
            if batch:
                s.get(f"{url}/execution-parameters", timeout=60).raise_for_status()
                records = (DATA / "iris_batch.csv").read_bytes()
                s.post(f"{url}/invocations", data=records, headers=csv, timeout=60).raise_for_status()
                row = records.splitlines(keepends=True)[0]
                big = row * (SIX_MIB // len(row))
                s.post(f"{url}/invocations", data=big, headers=csv, timeout=600).raise_for_status()
            elif one_request:
                s.post(f"{url}/invocations", data=b"5.1,3.5,1.4,0.2\n", headers=csv, timeout=60).raise_for_status()
            else:
                s.post(
                    f"{url}/invocations",
                    data=b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n",
                    headers=csv,
                    timeout=60,
                ).raise_for_status()
                row = b"5.1,3.5,1.4,0.2\n"
                big = row * (SIX_MIB // len(row))
                s.post(f"{url}/invocations", data=big, headers=csv, timeout=60).raise_for_status()
                if (
                    s.post(
                        f"{url}/invocations", data=b"5.1,3.5\nnot,a,number,row\n", headers=csv, timeout=60
                    ).status_code
                    // 100
                    != 4
                ):
                    raise RuntimeError("the sample did not answer 4xx to a malformed request")
        docker("stop", "-t", "30", name, check=False, timeout=60)
    return now() - start


def _bare_process(root: Path, *, with_input: bool) -> float:
    (root / "output" / "train").mkdir(parents=True, exist_ok=True)
    (root / "output" / "test").mkdir(parents=True, exist_ok=True)
    mounts = [
        "-v",
        f"{root / 'output' / 'train'}:/opt/ml/processing/output/train",
        "-v",
        f"{root / 'output' / 'test'}:/opt/ml/processing/output/test",
    ]
    if with_input:
        mounts += ["-v", f"{DATA / 'iris_raw.csv'}:/opt/ml/processing/input/raw/iris_raw.csv:ro"]
    name = bench_name("contract-process")
    start = now()
    with removed(name):
        code = docker(
            *bare_run_args(name),
            "--entrypoint",
            "processing",
            *mounts,
            SAMPLE_IMAGE,
            "--test-fraction",
            "0.2",
            "--seed",
            "1",
            check=False,
            timeout=600,
        ).returncode
    if (code == 0) != with_input:
        raise RuntimeError(f"bare processing exited {code}")
    return now() - start


def run_baseline(work: Path, parts: dict[str, list[float]]) -> float:
    root = Path(tempfile.mkdtemp(prefix="contract-bare-", dir=work))
    try:
        train_dir = root / "train-channel"
        train_dir.mkdir()
        (train_dir / "iris_train.csv").write_bytes((DATA / "iris_train.csv").read_bytes())
        validation = root / "validation-channel"
        validation.mkdir()
        (validation / "iris_validation.csv").write_bytes((DATA / "iris_train.csv").read_bytes() * 4000)
        timings = {
            "training": _bare_train(root / "t", {"train": train_dir}, expect_ok=True),
            "failing training": _bare_train(root / "f", {}, expect_ok=False),
            "SIGTERM training": _bare_train(
                root / "s",
                {"train": train_dir, "validation": validation},
                expect_ok=True,
                sigterm_after="train_accuracy=",
            ),
        }
        model_dir = root / "t" / "model"
        timings["serving"] = _bare_serve(model_dir, batch=False)
        timings["batch serving"] = _bare_serve(model_dir, batch=True)
        timings["processing"] = _bare_process(root / "p", with_input=True)
        timings["failing processing"] = _bare_process(root / "pf", with_input=False)
        timings["2-host training"] = _bare_two_hosts(root / "h", train_dir)
        # The FastFile check's job (channels read-only: the bare runs mount them so already) and the checkpoint
        # check's two jobs (the second one resumes from what the first left).
        timings["FastFile training"] = _bare_train(root / "ff", {"train": train_dir}, expect_ok=True)
        ckpt = root / "checkpoints"
        timings["checkpointed training"] = _bare_train(
            root / "c1", {"train": train_dir}, expect_ok=True, checkpoints=ckpt
        )
        timings["restarted training"] = _bare_train(root / "c2", {"train": train_dir}, expect_ok=True, checkpoints=ckpt)
        extras = root / "model-with-extras"
        extras.mkdir()
        for f in model_dir.iterdir():
            (extras / f.name).write_bytes(f.read_bytes())
        (extras / "README.md").write_text("# Model card\n")
        (extras / "code").mkdir()
        (extras / "code" / "inference.py").write_text("# no handlers\n")
        (extras / ".DS_Store").write_bytes(bytes(32))
        timings["serving, extra model files"] = _bare_serve(extras, batch=False, one_request=True)
        for k, v in timings.items():
            parts.setdefault(k, []).append(v)
        return sum(timings.values())
    finally:
        rmtree(root)


def run(opts: Options) -> Result:
    ensure_sample_image()
    events: list[tuple[Counter[str], float]] = []
    parts: dict[str, list[float]] = {}
    repeats = min(opts.repeats, 3)
    samples = interleave(
        {"suite": lambda: run_suite(events), "bare": lambda: run_baseline(opts.work, parts)},
        repeats,
        warmup=0,
        log=opts.log,
    )
    suite, bare = median(samples["suite"]), median(samples["bare"])
    kinds, lived = events[-1]
    result = Result("contract")
    result.rows.append(
        Row(
            "4. contract suite",
            "`pytest --image sample -q` wall time",
            "sum of 12 unavoidable container runs, bare",
            bare,
            suite,
            "s",
            f"ratio ≤ {SUITE_GOAL:.2f}",
            suite <= SUITE_GOAL * bare,
            repeats,
            f"suite {spread(samples['suite'])} s; baseline {spread(samples['bare'])} s (min/median/max)",
        )
    )
    breakdown = ", ".join(f"{k} {median(v):.2f} s" for k, v in parts.items())
    started = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    result.details.append(
        f"**Contract suite.** Baseline parts (medians, bare): {breakdown}. The suite itself started "
        f"{sum(kinds.values())} containers ({started}; last run, from `docker events` on its pid label); their "
        f"lifetimes add up to {lived:.1f} s against a wall time of {samples['suite'][-1]:.1f} s, because the shared "
        "serving and batch containers stay up while other checks run, and the jobs no earlier check depends on "
        "run ahead, side by side (contract_tests: Harness.ahead). The suite's extra containers are extra evidence "
        "the baseline does not count (a job with odd host names and extra config keys, a second serving container "
        "for the SIGTERM check); the rest of the difference is pytest start-up, container creation/removal "
        "through the API, artifact packing and the checks' own requests."
    )
    return result
