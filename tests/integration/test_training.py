"""Training jobs on the real Docker engine, observed from inside by the probe image (tests/images/probe).

The probe records argv, env, the /opt/ml tree with every JSON file's exact text, mounts, interfaces, cgroup
limits, writability, signals and resolved peers into /opt/ml/model/probe.json; its behaviour is set with
PROBE_* variables. Every test checks, when it ends, that its containers, networks and temp dirs are gone.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_KIND, LABEL_PID, LABEL_SESSION
from emulator.errors import Interrupted
from emulator.runtime import session as _session
from emulator.runtime.docker import DockerClient
from emulator.runtime.resources import docker_limits
from emulator.storage.s3 import S3
from emulator.training import TrainingJob

pytestmark = pytest.mark.docker

CONFIG = "/opt/ml/input/config"
DATA = "/opt/ml/input/data"
#: Multi-host probes start a moment late, so that every peer has started (and is in Docker's DNS) when they look
#: their names up; and a lookup that misses anyway fails after 1-2 s instead of the 20 s that an unreachable upstream
#: DNS server costs on CI machines (the probe then retries, as the platform advises).
WAIT_FOR_PEERS = ["sh", "-c", "sleep 1 && exec train"]
FAST_DNS_RETRY = {"RES_OPTIONS": "timeout:1 attempts:1"}


# -- helpers ----------------------------------------------------------------------------------------------


def docker_cli(*args: str, timeout: float = 60, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def tar_members(path: str | Path) -> dict[str, bytes | None]:
    """name -> content (None for directories) of a local tar or tar.gz."""
    out: dict[str, bytes | None] = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f else None
    return out


@dataclass
class Ran:
    """A finished job: its Describe result and every log line as (arrival time, host, line)."""

    result: dict[str, Any]
    lines: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def model(self) -> dict[str, bytes | None]:
        return tar_members(self.result["ModelArtifacts"]["S3ModelArtifacts"])

    def probe(self, name: str = "probe.json") -> dict[str, Any]:
        data = self.model[name]
        assert data is not None, f"{name} missing from model.tar.gz"
        record: dict[str, Any] = json.loads(data)
        return record

    def config_file(self, name: str, probe: dict[str, Any] | None = None) -> Any:
        entry = (probe or self.probe())["tree"][f"{CONFIG}/{name}"]
        return json.loads(entry["json_text"])


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def channel(name: str, uri: str | Path, **extra: Any) -> dict[str, Any]:
    src: dict[str, Any] = {"S3DataType": "S3Prefix", "S3Uri": str(uri)}
    if "S3DataDistributionType" in extra:
        src["S3DataDistributionType"] = extra.pop("S3DataDistributionType")
    return {"ChannelName": name, "DataSource": {"S3DataSource": src}, **extra}


RunJob = Callable[..., Ran]


@pytest.fixture
def run_job(probe_image: str, fast_config: EmulatorConfig, tmp_path: Path) -> RunJob:
    """Run a probe job in-process: ``run_job(Environment={...}, ...)`` merges the changes into a base request."""

    def run(
        *,
        config: EmulatorConfig | None = None,
        s3: S3 | None = None,
        on_line: Callable[[str, str], None] | None = None,
        **changes: Any,
    ) -> Ran:
        base = {
            "TrainingJobName": unique("t"),
            "AlgorithmSpecification": {"TrainingImage": probe_image, "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        }
        ran = Ran({})
        lock = threading.Lock()

        def sink(host: str, line: str) -> None:
            with lock:
                ran.lines.append((time.time(), host, line))
            if on_line:
                on_line(host, line)

        job = TrainingJob(merged(base, changes), config=config or fast_config, s3=s3, log_sink=sink)
        ran.result = job.run()
        return ran

    return run


def leftovers(config: EmulatorConfig, label: str) -> list[str]:
    return [f"{r.kind} {r.id[:12]} {r.name}" for r in DockerClient(config).list_managed(label)]


@pytest.fixture(autouse=True)
def _nothing_left_behind(docker_available: str, fast_config: EmulatorConfig) -> Iterator[None]:
    """After every test: no training container or network of this session, and no job temp dir."""
    yield
    found = DockerClient(fast_config).list_managed(f"{LABEL_SESSION}={_session.SESSION_ID}")
    ours = [r.id[:12] for r in found if r.labels.get(LABEL_KIND) == "training"]
    assert not ours, f"training containers/networks left behind: {ours}"
    assert not list(Path(fast_config.work_dir or "").glob("sm-emulator-train-*")), "a job temp dir was left"


# -- the CLI as a subprocess ------------------------------------------------------------------------------


def cli_env(work_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_EMULATOR_") and k != "AWS_ENDPOINT_URL_S3"}
    env["SM_EMULATOR_WORK_DIR"] = str(work_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_cli(*args: str, cwd: Path, work: Path, pids: set[int]) -> subprocess.Popen[str]:
    """Start ``python -m emulator ARGS`` in ``cwd`` (temp dirs in ``work``); its pid goes into ``pids``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        cwd=cwd,
        env=cli_env(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids.add(proc.pid)  # its containers carry this pid: the session-end leak check covers them
    return proc


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    pid: int


@pytest.fixture
def cli(tmp_path: Path, emulator_pids: set[int], fast_config: EmulatorConfig) -> Callable[..., CliRun]:
    """Run ``python -m emulator ARGS`` in tmp_path; afterwards nothing it created may be left."""
    work = tmp_path / "cli-work"
    work.mkdir()

    def run(*args: str, timeout: float = 120) -> CliRun:
        proc = start_cli(*args, cwd=tmp_path, work=work, pids=emulator_pids)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            proc.kill()
        assert leftovers(fast_config, f"{LABEL_PID}={proc.pid}") == []
        assert not list(work.glob("sm-emulator-*")), f"temp dirs left: {list(work.iterdir())}"
        return CliRun(proc.returncode, out, err, proc.pid)

    return run


# -- 1. the /opt/ml tree ----------------------------------------------------------------------------------


def test_opt_ml_tree_and_config_files_exactly(run_job: RunJob, tmp_path: Path) -> None:
    train = tmp_path / "train"
    (train / "sub").mkdir(parents=True)
    (train / "a.csv").write_text("1,2\n")
    (train / "sub" / "b.csv").write_text("3,4\n")
    val_dir = tmp_path / "val"
    val_dir.mkdir()
    (val_dir / "val.csv").write_text("5,6\n")
    (val_dir / "secret.txt").write_text("a sibling the container must not see")
    store = tmp_path / "ckpt-store"
    store.mkdir()
    (store / "seed.ckpt").write_text("seed")

    ran = run_job(
        HyperParameters={"epochs": "2", "eta": "0.1", "flag": "true"},
        InputDataConfig=[channel("train", train, ContentType="text/csv"), channel("validation", val_dir / "val.csv")],
        CheckpointConfig={"S3Uri": str(store)},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        AlgorithmSpecification={
            "ContainerEntrypoint": ["sh", "-c", "echo new > /opt/ml/checkpoints/step-2.ckpt && exec train"]
        },
    )
    assert ran.result["TrainingJobStatus"] == "Completed", ran.result.get("FailureReason")
    probe = ran.probe()
    tree = probe["tree"]

    assert sorted(p for p in tree if p.startswith(CONFIG + "/") and not p.endswith("/")) == [
        f"{CONFIG}/checkpointconfig.json",
        f"{CONFIG}/hyperparameters.json",
        f"{CONFIG}/inputdataconfig.json",
        f"{CONFIG}/resourceconfig.json",
    ]
    hps = ran.config_file("hyperparameters.json")
    assert hps == {"epochs": "2", "eta": "0.1", "flag": "true"}
    assert all(isinstance(v, str) for v in hps.values())
    assert ran.config_file("inputdataconfig.json") == {
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "validation": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
    }
    assert ran.config_file("resourceconfig.json") == {
        "current_host": "algo-1",
        "current_instance_type": "ml.m5.large",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1"],
        "instance_groups": [
            {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large", "hosts": ["algo-1"]}
        ],
        "network_interface_name": "eth0",
    }
    assert ran.config_file("checkpointconfig.json") == {"LocalPath": "/opt/ml/checkpoints", "S3Uri": str(store)}
    assert probe["interfaces"] == ["eth0", "lo"]  # the network_interface_name exists

    # channel contents, exactly (a single-file channel shows that file only, not its siblings)
    assert sorted(p for p in tree if p.startswith(DATA + "/") and p != DATA + "/") == [
        f"{DATA}/train/",
        f"{DATA}/train/a.csv",
        f"{DATA}/train/sub/",
        f"{DATA}/train/sub/b.csv",
        f"{DATA}/validation/",
        f"{DATA}/validation/val.csv",
    ]
    assert tree[f"{DATA}/train/a.csv"] == {"size": 4}
    for d in ("/opt/ml/model/", "/opt/ml/output/", "/opt/ml/output/data/", "/opt/ml/checkpoints/", f"{DATA}/"):
        assert d in tree, d
    top = sorted({p[len("/opt/ml/") :].split("/", 1)[0] for p in tree})
    assert top == ["checkpoints", "input", "model", "output"]
    assert "/opt/ml/output/failure" not in tree
    assert tree["/opt/ml/checkpoints/seed.ckpt"] == {"size": 4}  # checkpoints copied in at job start
    assert [p for p in tree if p.startswith("/opt/ml/model/")] == ["/opt/ml/model/"]  # empty to start with
    writable = probe["writable"]
    assert (writable["/opt/ml/model"], writable["/opt/ml/output"], writable[f"{DATA}/train"]) == (True, True, False)
    # A single-file channel mounts the file read-only inside a plain directory (see docs/training.md); the file
    # itself cannot be changed (test_the_users_data_cannot_be_changed_through_a_channel).
    # checkpoints written by the job are synced to CheckpointConfig.S3Uri when it ends
    assert (store / "step-2.ckpt").read_text() == "new\n"
    assert (store / "seed.ckpt").read_text() == "seed"


def _snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_users_data_cannot_be_changed_through_a_channel(run_job: RunJob, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        (data / name).write_text(f"{name}\n")
    before = _snapshot(data)
    code = tmp_path / "code"
    code.mkdir()
    (code / "vandal.sh").write_text(
        "".join(
            f"rm -f {d}/a.csv; echo junk >> {d}/b.csv; chmod 777 {d}/b.csv; touch {d}/new.csv; mkdir {d}/newdir\n"
            f"mv {d}/c.csv {d}/moved.csv; truncate -s 0 {d}/c.csv; touch -d 2001-01-01 {d}/b.csv\n"
            for d in (f"{DATA}/plain", f"{DATA}/shard", f"{DATA}/one")
        )
        + "exec train\n"
    )
    ran = run_job(
        InputDataConfig=[
            channel("plain", data),  # bind-mounted as it is
            channel("shard", data, S3DataDistributionType="ShardedByS3Key"),  # per-host links to the files
            channel("one", data / "a.csv"),  # a single file
            channel("code", code),  # the script is delivered through a channel, as the platform allows
        ],
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2},
        Environment={"PROBE_RESOLVE_S": "0"},
        AlgorithmSpecification={"ContainerEntrypoint": ["sh", f"{DATA}/code/vandal.sh"]},
    )
    assert ran.result["TrainingJobStatus"] == "Completed", ran.result.get("FailureReason")
    assert ran.probe()["writable"][f"{DATA}/plain"] is False
    assert ran.probe()["writable"][f"{DATA}/shard"] is False
    assert _snapshot(data) == before  # same files, bytes, mtimes and modes
    assert sorted(p.name for p in data.iterdir()) == ["a.csv", "b.csv", "c.csv"]


# -- 2. the container -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "argv"),
    [
        ({}, ["/usr/local/bin/train"]),
        ({"ContainerEntrypoint": ["probe"]}, ["/usr/local/bin/probe"]),
        ({"ContainerArguments": ["probe", "--x", "1"]}, ["/usr/local/bin/probe", "--x", "1"]),
        (
            {"ContainerEntrypoint": ["python3", "/opt/probe/probe.py"], "ContainerArguments": ["a", "b"]},
            ["/opt/probe/probe.py", "a", "b"],
        ),
    ],
    ids=["train", "entrypoint-only", "arguments-only", "both"],
)
def test_argv(run_job: RunJob, algo: dict[str, Any], argv: list[str]) -> None:
    ran = run_job(AlgorithmSpecification=algo)
    assert ran.probe()["argv"] == argv


@pytest.fixture(scope="module")
def entrypoint_image(probe_image: str) -> Iterator[str]:
    """The probe with an exec-form ENTRYPOINT and a CMD that SageMaker's argument must replace; removed afterwards."""
    tag = f"sagemaker-emulator-test/probe-entrypoint:{secrets.token_hex(4)}"
    dockerfile = f'FROM {probe_image}\nENTRYPOINT ["python3", "/opt/probe/probe.py"]\nCMD ["from-image-cmd"]\n'
    docker_cli("build", "-q", "--label", "sagemaker-emulator.test=1", "-t", tag, "-", stdin=dockerfile, timeout=120)
    try:
        yield tag
    finally:
        docker_cli("rmi", "-f", tag, check=False)


@pytest.mark.parametrize(
    ("algo", "argv"),
    [
        ({}, ["/opt/probe/probe.py", "train"]),
        ({"ContainerArguments": ["--lr", "1"]}, ["/opt/probe/probe.py", "--lr", "1"]),
        ({"ContainerEntrypoint": ["probe"]}, ["/usr/local/bin/probe"]),
    ],
    ids=["train-replaces-cmd", "arguments-replace-train", "entrypoint-drops-cmd-and-train"],
)
def test_image_entrypoint_and_cmd(
    run_job: RunJob, entrypoint_image: str, algo: dict[str, Any], argv: list[str]
) -> None:
    ran = run_job(AlgorithmSpecification={"TrainingImage": entrypoint_image, **algo})
    assert ran.probe()["argv"] == argv


def test_environment_exactly_no_tty_root_and_hostname(run_job: RunJob, probe_image: str) -> None:
    ran = run_job(Environment={"MY_VAR": "hello world", "LR": "0.1"})
    probe = ran.probe()
    image_env = json.loads(docker_cli("image", "inspect", "--format", "{{json .Config.Env}}", probe_image))
    image_keys = {e.split("=", 1)[0] for e in image_env}
    added = {k: v for k, v in probe["env"].items() if k not in image_keys | {"HOSTNAME", "HOME"}}
    name = ran.result["TrainingJobName"]
    assert added == {
        "TRAINING_JOB_NAME": name,
        "TRAINING_JOB_ARN": f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MY_VAR": "hello world",
        "LR": "0.1",
    }
    assert ran.result["TrainingJobArn"] == added["TRAINING_JOB_ARN"]
    assert probe["tty"] is False
    assert probe["uid"] == 0
    assert probe["hostname"] == "algo-1"
    assert probe["pid"] == 1  # the program is PID 1, so signals reach it


def test_logs_stream_while_the_container_runs_prefixed_by_host(run_job: RunJob) -> None:
    ran = run_job(
        Environment={"PROBE_PRINT": "first\\nsecond\\nthird", "PROBE_STDERR": "to-stderr", "PROBE_SLEEP_S": "2"}
    )
    printed = [(h, line) for _, h, line in ran.lines]
    assert [line for _, line in printed if line in ("first", "second", "third")] == ["first", "second", "third"]
    assert ("algo-1", "to-stderr") in printed
    assert {h for h, _ in printed} == {"algo-1"}
    arrived = next(t for t, _, line in ran.lines if line == "third")
    ended = ran.result["TrainingEndTime"].timestamp()
    assert arrived < ended - 1.0, "log lines must arrive while the container runs, not after it exits"


def test_network_isolation_single_host(run_job: RunJob) -> None:
    ran = run_job(EnableNetworkIsolation=True, Environment={"MY_VAR": "1"})
    probe = ran.probe()
    assert probe["interfaces"] == ["lo"]  # network mode none
    assert probe["default_route"] is False
    assert [k for k in probe["env"] if k.startswith("AWS_")] == []
    assert probe["env"]["MY_VAR"] == "1"
    assert probe["peers"] == {"algo-1": "127.0.0.1"}  # the host still resolves its own name


def _during_run(job_name: str, hosts: int) -> tuple[Callable[[str, str], None], dict[str, Any]]:
    """A log hook that, at the first line, looks at the job's containers and network from outside.

    The first line can come before the last host has started on a loaded machine: it waits (a few seconds at
    most) until ``hosts`` containers run, and records what it saw then.
    """
    seen: dict[str, Any] = {}

    def hook(host: str, line: str) -> None:
        if seen:
            return
        deadline = time.monotonic() + 10
        while True:
            running = docker_cli("ps", "-q", "--filter", f"label={LABEL_JOB}={job_name}").split()
            if len(running) >= hosts or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        seen["containers"] = running
        seen["networks"] = docker_cli(
            "network", "ls", "--filter", f"label={LABEL_JOB}={job_name}", "--format", "{{.Internal}}"
        ).split()

    return hook, seen


@pytest.mark.slow
def test_network_isolation_multi_host_internal_network(run_job: RunJob) -> None:
    name = unique("iso")
    hook, seen = _during_run(name, 2)
    ran = run_job(
        TrainingJobName=name,
        EnableNetworkIsolation=True,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2},
        AlgorithmSpecification={"ContainerEntrypoint": WAIT_FOR_PEERS},
        Environment={"PROBE_PER_HOST": "1", "PROBE_SLEEP_S": "1.5", "PROBE_PRINT": "up", **FAST_DNS_RETRY},
        on_line=hook,
    )
    assert seen["networks"] == ["true"]  # an internal network: peers talk, nothing goes out
    for host in ("algo-1", "algo-2"):
        probe = ran.probe(f"probe-{host}.json")
        assert [k for k in probe["env"] if k.startswith("AWS_")] == []
        assert not any(v.startswith("unresolved") for v in probe["peers"].values()), probe["peers"]


@pytest.mark.slow
def test_three_hosts_resolve_each_other_and_get_their_data(run_job: RunJob, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    files = [f"part-{i}.csv" for i in range(7)]
    for f in files:
        (data / f).write_text(f)
    name = unique("multi")
    hook, seen = _during_run(name, 3)
    ran = run_job(
        TrainingJobName=name,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 3},
        InputDataConfig=[channel("full", data), channel("shard", data, S3DataDistributionType="ShardedByS3Key")],
        AlgorithmSpecification={"ContainerEntrypoint": WAIT_FOR_PEERS},
        Environment={"PROBE_PER_HOST": "1", "PROBE_SLEEP_S": "1.5", "PROBE_PRINT": "up", **FAST_DNS_RETRY},
        on_line=hook,
    )
    assert ran.result["TrainingJobStatus"] == "Completed", ran.result.get("FailureReason")
    assert len(seen["containers"]) == 3
    assert seen["networks"] == ["false"]
    hosts = ["algo-1", "algo-2", "algo-3"]
    probes = {h: ran.probe(f"probe-{h}.json") for h in hosts}
    addresses = probes["algo-1"]["peers"]
    assert sorted(addresses) == hosts
    assert len(set(addresses.values())) == 3
    shards = []
    for i, h in enumerate(hosts):
        p = probes[h]
        assert p["hostname"] == h
        resource = ran.config_file("resourceconfig.json", p)
        assert resource["current_host"] == h
        assert resource["hosts"] == hosts
        assert p["peers"] == addresses, f"{h} resolves the hosts differently"
        full = sorted(k.rsplit("/", 1)[1] for k in p["tree"] if k.startswith(f"{DATA}/full/") and not k.endswith("/"))
        assert full == files  # FullyReplicated: every host sees every file
        shard = sorted(k.rsplit("/", 1)[1] for k in p["tree"] if k.startswith(f"{DATA}/shard/") and not k.endswith("/"))
        assert shard == sorted(files)[i::3]  # ShardedByS3Key: round-robin over the sorted keys
        shards += shard
    assert sorted(shards) == files


def test_instance_type_sets_cpu_and_memory_limits(run_job: RunJob) -> None:
    ran = run_job(ResourceConfig={"InstanceType": "ml.t3.medium", "InstanceCount": 1})
    limits = ran.probe()["limits"]
    nano, mem = docker_limits("ml.t3.medium")
    assert nano is not None
    assert mem is not None
    assert limits["cpu_quota_us"] * 1_000_000_000 // limits["cpu_period_us"] == nano
    assert limits["memory_bytes"] == mem


# -- 3. outcome -------------------------------------------------------------------------------------------


def test_completed_with_artifacts_metrics_and_ordered_timestamps(run_job: RunJob, tmp_path: Path) -> None:
    ran = run_job(
        Environment={"PROBE_PRINT": "epoch=1 loss=0.5\\nepoch=2 loss=0.25 acc=0.9"},
        AlgorithmSpecification={
            "MetricDefinitions": [
                {"Name": "loss", "Regex": r"loss=([0-9.]+)"},
                {"Name": "acc", "Regex": r"acc=([0-9.]+)"},
            ]
        },
    )
    r = ran.result
    name = r["TrainingJobName"]
    assert (r["TrainingJobStatus"], r["SecondaryStatus"]) == ("Completed", "Completed")
    assert r["ModelArtifacts"]["S3ModelArtifacts"] == str(tmp_path / "out" / name / "output" / "model.tar.gz")
    assert list(ran.model) == ["probe.json"]  # entries at the archive root, no "model/" or "./" prefix
    output = tar_members(tmp_path / "out" / name / "output" / "output.tar.gz")
    assert list(output) == ["probe.json"]  # output.tar.gz holds /opt/ml/output/data only
    assert {m["MetricName"]: m["Value"] for m in r["FinalMetricDataList"]} == {"loss": 0.25, "acc": 0.9}
    assert r["CreationTime"] <= r["TrainingStartTime"] <= r["TrainingEndTime"] <= r["LastModifiedTime"]
    transitions = r["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Training", "Uploading", "Completed"]
    assert all(a["StartTime"] <= b["StartTime"] for a, b in itertools.pairwise(transitions))


def test_failed_with_the_failure_file(run_job: RunJob) -> None:
    text = "ValueError: column 'x' is missing"
    ran = run_job(Environment={"PROBE_FAILURE": text, "PROBE_EXIT_CODE": "2"})
    assert (ran.result["TrainingJobStatus"], ran.result["SecondaryStatus"]) == ("Failed", "Failed")
    assert ran.result["FailureReason"] == text
    assert "probe.json" in ran.model  # artifacts are exported even when the job failed


def test_failure_reason_is_the_first_1024_characters_of_the_file(run_job: RunJob) -> None:
    write = (
        "{ printf 'START-\\303\\251-'; head -c 1500 /dev/zero | tr '\\0' x; printf -- '-END'; } "
        "> /opt/ml/output/failure && PROBE_EXIT_CODE=2 exec train"
    )
    ran = run_job(AlgorithmSpecification={"ContainerEntrypoint": ["sh", "-c", write]})
    assert ran.result["TrainingJobStatus"] == "Failed"
    assert ran.result["FailureReason"] == ("START-\u00e9-" + "x" * 1500 + "-END")[:1024]
    assert len(ran.result["FailureReason"]) == 1024


def test_failed_without_a_failure_file_reports_the_exit_code(run_job: RunJob) -> None:
    ran = run_job(Environment={"PROBE_EXIT_CODE": "3"})
    assert ran.result["TrainingJobStatus"] == "Failed"
    assert ran.result["FailureReason"] == "AlgorithmError: , exit code: 3"
    assert "probe.json" in ran.model


# -- 4. stopping ------------------------------------------------------------------------------------------


def test_max_runtime_sends_sigterm_and_stops(run_job: RunJob) -> None:
    started = time.monotonic()
    ran = run_job(Environment={"PROBE_SLEEP_S": "60"}, StoppingCondition={"MaxRuntimeInSeconds": 1})
    assert time.monotonic() - started < 8
    assert (ran.result["TrainingJobStatus"], ran.result["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert "FailureReason" not in ran.result
    probe = ran.probe()  # exported after the stop
    assert probe["signals"] == [signal.SIGTERM]
    assert "finished_sleep" not in probe


def test_sigterm_ignored_means_sigkill_after_the_grace_period(run_job: RunJob, fast_config: EmulatorConfig) -> None:
    started = time.monotonic()
    ran = run_job(
        config=fast_config.with_(training_stop_grace_s=1),
        Environment={"PROBE_SLEEP_S": "60", "PROBE_IGNORE_SIGTERM": "1"},
        StoppingCondition={"MaxRuntimeInSeconds": 1},
    )
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 9, elapsed  # 1 s runtime + 1 s grace, then SIGKILL
    assert ran.result["SecondaryStatus"] == "MaxRuntimeExceeded"
    probe = ran.probe()  # the model is still exported after the SIGKILL
    assert probe["signals"] == [signal.SIGTERM]
    assert "finished_sleep" not in probe


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_the_cli_cleans_up_and_exits_130(
    probe_image: str, tmp_path: Path, emulator_pids: set[int], fast_config: EmulatorConfig, sig: signal.Signals
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    name = unique("ctrlc")
    proc = start_cli(
        "train",
        "--image",
        probe_image,
        "--job-name",
        name,
        "--env",
        "PROBE_SLEEP_S=60",
        "--output",
        str(tmp_path / "out"),
        "--stop-grace",
        "2",
        cwd=tmp_path,
        work=work,
        pids=emulator_pids,
    )
    try:
        deadline = time.monotonic() + 60
        while not docker_cli("ps", "-q", "--filter", f"label={LABEL_JOB}={name}", "--filter", "status=running"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the training container never started"
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert leftovers(fast_config, f"{LABEL_PID}={proc.pid}") == []
    assert leftovers(fast_config, f"{LABEL_JOB}={name}") == []
    assert list(work.iterdir()) == []  # no sm-emulator-train-* temp dir
    assert (tmp_path / "out" / name / "output" / "model.tar.gz").is_file()  # stopped jobs still export


# -- 5. cleanup and Docker errors -------------------------------------------------------------------------


def test_missing_image_exits_2_and_leaves_nothing(cli: Callable[..., CliRun]) -> None:
    run = cli("train", "--image", "sagemaker-emulator-test/no-such-image:latest", "--output", "out")
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    [error] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "'sagemaker-emulator-test/no-such-image:latest' is not present locally" in error


def test_image_without_train_is_a_one_line_error_naming_train(cli: Callable[..., CliRun], base_image: str) -> None:
    base = base_image
    run = cli("train", "--image", base, "--output", "out")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    [error] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert f"image {base!r} cannot run 'train'" in error
    assert 'exec: "train": executable file not found' in error
    assert "put an executable named 'train' on PATH or use an exec-form ENTRYPOINT" in error


def test_cleanup_removes_labelled_leftovers_only(cli: Callable[..., CliRun], probe_image: str) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    token = secrets.token_hex(3)
    stale = [
        "--label",
        "sagemaker-emulator.managed=true",
        "--label",
        f"{LABEL_PID}={dead.pid}",
        "--label",
        f"{LABEL_JOB}=cleanup-{token}",
    ]
    created: list[str] = []
    network = ""
    try:
        created.append(docker_cli("create", *stale, "--name", f"sm-cleanup-stale-{token}", probe_image, "train"))
        created.append(
            docker_cli(
                "create",
                "--label",
                "sagemaker-emulator.test=1",
                "--name",
                f"sm-cleanup-keep-{token}",
                probe_image,
                "train",
            )
        )
        network = docker_cli("network", "create", *stale, f"sm-cleanup-net-{token}")

        dry = cli("cleanup", "--dry-run")
        assert dry.returncode == 0
        assert f"would remove container {created[0][:12]}" in dry.stdout
        assert docker_cli("inspect", "-f", "{{.Id}}", created[0]) == created[0]

        run = cli("cleanup")
        assert run.returncode == 0, run.stderr
        assert f"removed container {created[0][:12]}" in run.stdout
        assert f"removed network {network[:12]}" in run.stdout
        assert created[1][:12] not in run.stdout
        assert docker_cli("inspect", created[0], check=False) == "[]"  # gone
        assert docker_cli("network", "inspect", network, check=False) == "[]"
        assert docker_cli("inspect", "-f", "{{.Id}}", created[1]) == created[1]  # not ours: kept
    finally:
        for cid in created:
            docker_cli("rm", "-f", cid, check=False)
        if network:
            docker_cli("network", "rm", network, check=False)


# -- 6. S3 ------------------------------------------------------------------------------------------------


def test_s3_channels_checkpoints_and_output(run_job: RunJob, fast_config: EmulatorConfig) -> None:
    with S3(fast_config) as s3:
        assert s3.endpoint_url.startswith("http://127.0.0.1:")
        s3.client.create_bucket(Bucket="bucket")
        s3.put_bytes("s3://bucket/train/a.csv", b"1,2\n")
        s3.put_bytes("s3://bucket/train/sub/b.csv", b"3,4\n")
        s3.put_bytes("s3://bucket/ckpt/seed.ckpt", b"seed")
        ran = run_job(
            s3=s3,
            InputDataConfig=[channel("train", "s3://bucket/train/")],
            OutputDataConfig={"S3OutputPath": "s3://bucket/prefix"},
            CheckpointConfig={"S3Uri": "s3://bucket/ckpt/"},
            AlgorithmSpecification={
                "ContainerEntrypoint": ["sh", "-c", "echo new > /opt/ml/checkpoints/step-2.ckpt && exec train"]
            },
        )
        name = ran.result["TrainingJobName"]
        model_uri = f"s3://bucket/prefix/{name}/output/model.tar.gz"
        assert ran.result["ModelArtifacts"]["S3ModelArtifacts"] == model_uri
        keys = [k for k, _ in s3.list_keys("s3://bucket/")]
        assert f"prefix/{name}/output/model.tar.gz" in keys
        assert f"prefix/{name}/output/output.tar.gz" in keys
        assert s3.read_bytes("s3://bucket/ckpt/step-2.ckpt") == b"new\n"
        with tarfile.open(fileobj=io.BytesIO(s3.read_bytes(model_uri))) as tf:
            f = tf.extractfile("probe.json")
            assert f is not None
            tree = json.load(f)["tree"]
    assert tree[f"{DATA}/train/a.csv"] == {"size": 4}
    assert tree[f"{DATA}/train/sub/b.csv"] == {"size": 4}
    assert tree["/opt/ml/checkpoints/seed.ckpt"] == {"size": 4}


# -- 7. CLI -----------------------------------------------------------------------------------------------


def test_cli_success_streams_prefixed_logs_and_exits_0(
    cli: Callable[..., CliRun], probe_image: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1\n")
    name = unique("cli")
    run = cli(
        "train",
        "--image",
        probe_image,
        "--job-name",
        name,
        "--channel",
        f"train={data}",
        "--hp",
        "epochs=2",
        "--env",
        "PROBE_PRINT=hello",
        "--metric",
        "m=hel(l)o",
        "--output",
        "out",
    )
    assert run.returncode == 0, run.stderr
    assert "algo-1 | hello" in run.stdout.splitlines()
    assert "status    Completed (Completed)" in run.stdout
    model = tmp_path / "out" / name / "output" / "model.tar.gz"
    assert f"model     {model}" in run.stdout
    probe = json.loads(tar_members(model)["probe.json"] or b"")
    assert json.loads(probe["tree"][f"{CONFIG}/hyperparameters.json"]["json_text"]) == {"epochs": "2"}


def test_cli_failed_job_exits_1_with_the_reason(cli: Callable[..., CliRun], probe_image: str) -> None:
    run = cli(
        "train",
        "--image",
        probe_image,
        "--env",
        "PROBE_EXIT_CODE=1",
        "--env",
        "PROBE_FAILURE=broken input",
        "--output",
        "out",
        "-q",
    )
    assert run.returncode == 1
    assert "status    Failed (Failed)" in run.stdout
    assert "reason    broken input" in run.stdout


def test_cli_bad_spec_field_exits_2_with_one_line(cli: Callable[..., CliRun], tmp_path: Path, probe_image: str) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        yaml.safe_dump({"AlgorithmSpecification": {"TrainingImage": probe_image}, "HyperParameter": {"a": "1"}})
    )
    run = cli("train", "--spec", str(spec))
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr.strip().splitlines()
    assert line == (
        "error: invalid CreateTrainingJob request: HyperParameter: unknown field; did you mean 'HyperParameters'?"
    )


def test_cli_spec_with_flag_overrides(cli: Callable[..., CliRun], tmp_path: Path, probe_image: str) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "TrainingJobName": "from-spec",
                "AlgorithmSpecification": {"TrainingImage": probe_image, "TrainingInputMode": "File"},
                "HyperParameters": {"epochs": "1", "lr": "0.1"},
                "Environment": {"FROM_SPEC": "1"},
                "OutputDataConfig": {"S3OutputPath": str(tmp_path / "spec-out")},
            }
        )
    )
    name = unique("override")
    run = cli(
        "train", "--spec", str(spec), "--job-name", name, "--hp", "epochs=5", "--env", "FROM_FLAG=2", "--json", "-q"
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["TrainingJobName"] == name
    assert result["HyperParameters"] == {"epochs": "5", "lr": "0.1"}
    assert result["Environment"] == {"FROM_SPEC": "1", "FROM_FLAG": "2"}
    model = tmp_path / "spec-out" / name / "output" / "model.tar.gz"
    assert result["ModelArtifacts"]["S3ModelArtifacts"] == str(model)
    probe = json.loads(tar_members(model)["probe.json"] or b"")
    assert json.loads(probe["tree"][f"{CONFIG}/hyperparameters.json"]["json_text"]) == {"epochs": "5", "lr": "0.1"}
    assert (probe["env"]["FROM_SPEC"], probe["env"]["FROM_FLAG"]) == ("1", "2")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["cleanup", "--help"]])
def test_cli_help_exits_0(cli: Callable[..., CliRun], args: list[str]) -> None:
    run = cli(*args)
    assert run.returncode == 0
    assert run.stdout.startswith("usage: python -m emulator")


def test_library_run_raises_interrupted_on_ctrl_c(run_job: RunJob, tmp_path: Path) -> None:
    """Ctrl-C while TrainingJob.run waits: the job is stopped, exported and removed, then Interrupted is raised."""
    assert threading.current_thread() is threading.main_thread()  # where Python delivers SIGINT

    def press_ctrl_c(host: str, line: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as info:
        run_job(Environment={"PROBE_SLEEP_S": "60", "PROBE_PRINT": "go"}, on_line=press_ctrl_c)
    assert info.value.exit_code == 130
    [model] = (tmp_path / "out").glob("*/output/model.tar.gz")
    assert json.loads(tar_members(model)["probe.json"] or b"")["signals"] == [signal.SIGTERM]
