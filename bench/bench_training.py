"""1. Emulator overhead on a training job: ``TrainingJob(request).run()`` against the same container run bare.

Emulator: from ``TrainingJob(request)`` (validation included, its own Docker client) to ``run()`` returning,
by which time model.tar.gz (and output.tar.gz when /opt/ml/output/data has files) is written.
Bare: ``docker run --rm`` with the same mounts (-v config dir, -v channel:ro, -v model dir, -v output dir),
hostname, limits (ml.m5.large clamped to this machine) and ``train`` command, from writing the config files
to "container exited" plus a gzip tar of the model dir (and of output/data when it has files), which is
the same work the emulator does after the container exits.

Two images: the sample (a real sklearn training, 120 rows) and the probe (stdlib only, does almost nothing:
a pure-overhead figure). One extra, unrecorded emulator run times every Docker API call the emulator
makes, which tells where its overhead goes.
"""

from __future__ import annotations

import sys
import tarfile
import tempfile
import threading
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._common import (
    LIMIT_CPUS,
    LIMIT_MEMORY,
    REPO,
    Options,
    Result,
    Row,
    bare_run_args,
    bench_name,
    docker,
    ensure_probe_image,
    ensure_sample_image,
    interleave,
    iris_channel,
    median,
    now,
    removed,
    rmtree,
    run_child,
    spread,
    write_training_config,
)

if TYPE_CHECKING:
    from emulator.runtime.docker import DockerSeam

GOAL = 1.10
_LABELS = {
    "wait": "wait (the container running)",
    "start": "start",
    "put_archive": "put_archive (/opt/ml/input/config)",
    "get_archive": "get_archive (/opt/ml: model, output)",
}
PROBE_ENV = {"PROBE_RESOLVE_S": "0"}


def _request(image: str, channel: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    req: dict[str, Any] = {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3Uri": str(channel),
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": str(out)},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    }
    if env:
        req["Environment"] = env
    return req


def run_emulator(
    image: str, channel: Path, work: Path, env: dict[str, str], docker_client: DockerSeam | None = None
) -> float:
    from emulator.config import EmulatorConfig
    from emulator.training import TrainingJob

    out = Path(tempfile.mkdtemp(prefix="train-emu-", dir=work))
    try:
        start = now()
        job = TrainingJob(_request(image, channel, out, env), config=EmulatorConfig(), docker=docker_client)
        described = job.run()
        elapsed = now() - start
        if described["TrainingJobStatus"] != "Completed":
            raise RuntimeError(f"emulator training failed: {described.get('FailureReason')}")
        if not Path(described["ModelArtifacts"]["S3ModelArtifacts"]).is_file():
            raise RuntimeError("emulator training wrote no model.tar.gz")
        return elapsed
    finally:
        rmtree(out)


def run_bare(image: str, channel: Path, work: Path, env: dict[str, str]) -> float:
    root = Path(tempfile.mkdtemp(prefix="train-bare-", dir=work))
    name = bench_name("train")
    try:
        start = now()
        write_training_config(root / "config", ["train"])
        for d in ("model", "output/data"):
            (root / d).mkdir(parents=True)
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        with removed(name):
            docker(
                *bare_run_args(name),
                "--hostname",
                "algo-1",
                "--cpus",
                str(LIMIT_CPUS),
                "--memory",
                LIMIT_MEMORY,
                *env_args,
                "-v",
                f"{root / 'config'}:/opt/ml/input/config",
                "-v",
                f"{channel}:/opt/ml/input/data/train:ro",
                "-v",
                f"{root / 'model'}:/opt/ml/model",
                "-v",
                f"{root / 'output'}:/opt/ml/output",
                image,
                "train",
                timeout=600,
            )
            _tar_dir(root / "model", root / "model.tar.gz")
            if any((root / "output" / "data").iterdir()):
                _tar_dir(root / "output" / "data", root / "output.tar.gz")
        elapsed = now() - start
        if not (root / "model.tar.gz").stat().st_size:
            raise RuntimeError("bare training wrote no model")
        return elapsed
    finally:
        rmtree(root)


def _tar_dir(src: Path, target: Path) -> None:
    with tarfile.open(target, "w:gz", compresslevel=6) as tf:  # the emulator's level
        for p in sorted(src.iterdir()):
            tf.add(p, arcname=p.name)


class _TimedApi:
    """Wraps a docker-py APIClient's methods on one instance and sums the time spent in each (main thread)."""

    CALLS = (
        "inspect_image",
        "create_container",
        "put_archive",
        "start",
        "wait",
        "get_archive",
        "inspect_container",
        "remove_container",
        "kill",
        "create_network",
        "remove_network",
    )

    def __init__(self, api: Any) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        for name in self.CALLS:
            original = getattr(api, name)

            def timed(*args: Any, _name: str = name, _orig: Any = original, **kwargs: Any) -> Any:
                # The job runs in its own thread; the log followers run beside it and are not on the critical path.
                if threading.current_thread().name.startswith(("logs-", "exit-")):
                    return _orig(*args, **kwargs)
                t0 = now()
                try:
                    result = _orig(*args, **kwargs)
                finally:
                    self.totals[_name] += now() - t0
                    self.counts[_name] += 1
                if _name == "get_archive":  # (stream, stat): time the stream's reads too
                    stream, stat = result
                    return self._timed_stream(stream), stat
                return result

            setattr(api, name, timed)

    def _timed_stream(self, stream: Any) -> Any:
        it = iter(stream)
        while True:
            t0 = now()
            try:
                chunk = next(it)
            except StopIteration:
                self.totals["get_archive"] += now() - t0
                return
            self.totals["get_archive"] += now() - t0
            yield chunk


def breakdown(
    image: str, channel: Path, work: Path, env: dict[str, str]
) -> tuple[float, dict[str, float], dict[str, int], float]:
    """One emulator run with every Docker API call timed: (total, seconds per call, counts, client setup)."""
    from emulator.config import EmulatorConfig
    from emulator.runtime.docker import DockerClient

    t0 = now()
    client = DockerClient(EmulatorConfig())
    setup = now() - t0
    timed = _TimedApi(client._api)
    total = run_emulator(image, channel, work, env, docker_client=client)
    return total + setup, dict(timed.totals), dict(timed.counts), setup


_COLD = """
import json, time
t0 = time.perf_counter()
from emulator.training import TrainingJob, with_defaults
t1 = time.perf_counter()
from emulator.spec import validate
validate("CreateTrainingJob", with_defaults({"AlgorithmSpecification": {"TrainingImage": "x"}}))
t2 = time.perf_counter()
from emulator.runtime.docker import _import_docker
_import_docker()
print(json.dumps({"import": t1 - t0, "validate": t2 - t1, "docker": time.perf_counter() - t2}))
"""


def cold_start() -> tuple[float, float, float]:
    """(import emulator.training, first request validation, docker-py's import) in a fresh interpreter: paid once
    per process."""
    child = run_child([sys.executable, "-c", _COLD], timeout_s=120, cwd=REPO)
    report = child.json()
    return float(report["import"]), float(report["validate"]), float(report["docker"])


def run(opts: Options) -> Result:
    result = Result("training")
    channel = iris_channel(opts.work)
    images = [("sample", ensure_sample_image(), {}), ("probe", ensure_probe_image(), PROBE_ENV)]
    for label, image, env in images:
        opts.log(f"training/{label}: {image}")
        # Runs are short and the machine is noisy: twice the repeats, for a steadier median.
        samples = interleave(
            {
                "emulator": partial(run_emulator, image, channel, opts.work, env),
                "bare": partial(run_bare, image, channel, opts.work, env),
            },
            2 * opts.repeats,
            log=opts.log,
        )
        emu, bare = median(samples["emulator"]), median(samples["bare"])
        what = "sklearn tree, 120 rows" if label == "sample" else "stdlib probe: pure overhead"
        result.rows.append(
            Row(
                f"1. training ({label})",
                f"start → model.tar.gz written ({what})",
                "bare `docker run` + tar.gz",
                bare,
                emu,
                "s",
                f"ratio ≤ {GOAL:.2f}",
                emu / bare <= GOAL,
                len(samples["emulator"]),
                f"emulator {spread(samples['emulator'])}; bare {spread(samples['bare'])} (min/median/max, s)",
            )
        )
        total, calls, counts, setup = breakdown(image, channel, opts.work, env)
        api = sum(calls.values())
        parts = ", ".join(
            f"{_LABELS.get(name, name)} {calls[name] * 1000:.0f} ms"
            + (f" in {counts[name]} calls" if counts[name] > 1 else "")
            for name in sorted(calls, key=lambda n: -calls[n])
            if calls[name] >= 0.0005
        )
        archive = calls.get("put_archive", 0.0) + calls.get("get_archive", 0.0)
        n_archive = counts.get("put_archive", 0) + counts.get("get_archive", 0)
        excess = emu - bare
        share = f", i.e. {archive / excess:.0%} of the median excess" if excess > 0 else ""
        result.details.append(
            f"**Training, {label}: where the emulator's {total * 1000:.0f} ms go** (one extra run, every Docker API "
            f"call timed): Docker API {api * 1000:.0f} ms ({parts}); client setup (connect + ping) "
            f"{setup * 1000:.0f} ms; the rest, {(total - api - setup) * 1000:.0f} ms, is the emulator's own Python "
            f"(request validation, tar repacking, gzip, bookkeeping). Median excess over bare in the measured runs: "
            f"{excess * 1000:+.0f} ms. "
            + (
                f"The archive calls ({n_archive}) take {archive * 1000:.0f} ms of this run{share}: one get_archive "
                "of /opt/ml after the container exits, from which the model and output archives are cut (nothing is "
                "written into the container before it starts: the config files are a read-only bind mount, the "
                "empty dirs volumes), so that no root-owned file lands on the host; Docker Engine 20.10 runs a "
                "separate chrooted helper process (`docker-tar`) for every archive call, whatever its size."
                if n_archive
                else "No archive call: this run is as root on a local engine, so the model and output dirs are "
                "read-write binds of the job's temp dir, read from there after the exit (the files are root's "
                "either way); the config files are a read-only bind, the other empty dirs volumes."
            )
        )
    cold = [cold_start() for _ in range(3)]
    result.details.append(
        f"**Training, first job in a fresh process** (not in the table, whose runs are warm): importing "
        f"`emulator.training` takes {median([c[0] for c in cold]) * 1000:.0f} ms and the first request validation "
        f"(a trimmed, cached copy of botocore's SageMaker model) {median([c[1] for c in cold]) * 1000:.0f} ms; "
        f"the Docker client libraries (docker-py, requests), imported when the first job connects to the engine, "
        f"{median([c[2] for c in cold]) * 1000:.0f} ms (medians of 3). A CLI command pays the first two before it "
        "can refuse a bad request (see 7. CLI cold start) and all three once per job it runs."
    )
    return result
