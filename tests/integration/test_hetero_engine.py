"""Heterogeneous training clusters on the real engine, seen from inside by the probe image (tests/images/probe).

One job through the Python API (two groups, three hosts, channels assigned to groups, one sharded among its
group's hosts) and one through the CLI with a YAML spec. Each probe writes probe-<host>.json into the model
dir; the hosts' model dirs are merged into model.tar.gz, so every host's view comes back.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB
from emulator.runtime.docker import DockerClient
from emulator.runtime.resources import docker_limits
from emulator.training import TrainingJob

pytestmark = pytest.mark.docker

CONFIG = "/opt/ml/input/config"
DATA = "/opt/ml/input/data"
#: The probes start a moment late so that every peer is in Docker's DNS when they look the hosts up.
WAIT_FOR_PEERS = ["sh", "-c", "sleep 1 && exec train"]
#: PROBE_SLEEP_S: each host stays up a moment after its lookups, so that a slower peer still resolves it.
PROBE_ENV = {"PROBE_PER_HOST": "1", "PROBE_SLEEP_S": "3", "RES_OPTIONS": "timeout:1 attempts:1"}
GROUPS = [
    {"InstanceGroupName": "data", "InstanceType": "ml.t3.medium", "InstanceCount": 2},
    {"InstanceGroupName": "dnn", "InstanceType": "ml.m5.large", "InstanceCount": 1},
]


def probes(model_tar: str | Path) -> dict[str, dict[str, Any]]:
    """host -> what its probe recorded (probe-<host>.json in the merged model archive)."""
    out: dict[str, dict[str, Any]] = {}
    with tarfile.open(model_tar) as tf:
        for m in tf.getmembers():
            name = m.name.removeprefix("./")
            f = tf.extractfile(m) if m.isfile() and name.startswith("probe-") else None
            if f:
                out[name.removeprefix("probe-").removesuffix(".json")] = json.loads(f.read())
    return out


def config_file(probe: dict[str, Any], name: str) -> Any:
    return json.loads(probe["tree"][f"{CONFIG}/{name}"]["json_text"])


def files_in(probe: dict[str, Any], channel: str) -> list[str] | None:
    """The files of a channel dir as the host saw it; None when the host has no such dir."""
    if f"{DATA}/{channel}/" not in probe["tree"]:
        return None
    return sorted(k.rsplit("/", 1)[1] for k in probe["tree"] if k.startswith(f"{DATA}/{channel}/") and k[-1] != "/")


def grouped(name: str, uri: Path, *groups: str, **source: Any) -> dict[str, Any]:
    src = {"S3DataType": "S3Prefix", "S3Uri": str(uri), "InstanceGroupNames": list(groups), **source}
    return {"ChannelName": name, "DataSource": {"S3DataSource": src}}


def data_dir(root: Path, name: str, files: int) -> Path:
    d = root / name
    d.mkdir()
    for i in range(files):
        (d / f"{name}-{i}.csv").write_text(f"{i}\n")
    return d


def assert_nothing_left(config: EmulatorConfig, job: str) -> None:
    left = DockerClient(config).list_managed(f"{LABEL_JOB}={job}")
    assert not left, f"left behind: {[(r.kind, r.name) for r in left]}"


@pytest.mark.slow
def test_each_host_sees_its_group_its_resources_and_only_its_groups_channels(
    probe_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    raw, train, shared = data_dir(tmp_path, "raw", 4), data_dir(tmp_path, "train", 1), data_dir(tmp_path, "shared", 1)
    name = f"hetero-{secrets.token_hex(3)}"
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": probe_image,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": WAIT_FOR_PEERS,
        },
        "ResourceConfig": {"InstanceGroups": GROUPS, "VolumeSizeInGB": 5},
        "InputDataConfig": [
            grouped("raw", raw, "data", S3DataDistributionType="ShardedByS3Key"),
            grouped("train", train, "dnn"),
            grouped("shared", shared, "data", "dnn"),
        ],
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        "Environment": PROBE_ENV,
    }
    result = TrainingJob(request, config=fast_config).run()
    assert result["TrainingJobStatus"] == "Completed", result.get("FailureReason")
    assert result["ResourceConfig"] == {"InstanceGroups": GROUPS, "VolumeSizeInGB": 5}
    seen = probes(result["ModelArtifacts"]["S3ModelArtifacts"])
    hosts = ["algo-1", "algo-2", "algo-3"]
    assert sorted(seen) == hosts
    groups = [
        {"instance_group_name": "data", "instance_type": "ml.t3.medium", "hosts": ["algo-1", "algo-2"]},
        {"instance_group_name": "dnn", "instance_type": "ml.m5.large", "hosts": ["algo-3"]},
    ]
    mine = {"algo-1": GROUPS[0], "algo-2": GROUPS[0], "algo-3": GROUPS[1]}
    for host, probe in seen.items():
        group = mine[host]
        assert config_file(probe, "resourceconfig.json") == {
            "current_host": host,
            "current_instance_type": group["InstanceType"],
            "current_group_name": group["InstanceGroupName"],
            "hosts": hosts,
            "instance_groups": groups,
            "network_interface_name": "eth0",
        }
        # every host resolves every peer, across groups
        assert sorted(probe["peers"]) == hosts
        assert not any(v.startswith("unresolved") for v in probe["peers"].values()), probe["peers"]
        # the cgroup memory limit is the one of the host's own instance type
        assert probe["limits"]["memory_bytes"] == docker_limits(str(group["InstanceType"]))[1]
    assert docker_limits("ml.t3.medium")[1] != docker_limits("ml.m5.large")[1]  # so the check above has teeth
    assert {h: sorted(config_file(p, "inputdataconfig.json")) for h, p in seen.items()} == {
        "algo-1": ["raw", "shared"],
        "algo-2": ["raw", "shared"],
        "algo-3": ["shared", "train"],
    }
    assert {h: (files_in(p, "raw"), files_in(p, "train"), files_in(p, "shared")) for h, p in seen.items()} == {
        "algo-1": (["raw-0.csv", "raw-2.csv"], None, ["shared-0.csv"]),
        "algo-2": (["raw-1.csv", "raw-3.csv"], None, ["shared-0.csv"]),
        "algo-3": (None, ["train-0.csv"], ["shared-0.csv"]),
    }
    assert_nothing_left(fast_config, name)


def test_the_cli_runs_a_yaml_spec_with_instance_groups(
    probe_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    name = f"hetero-cli-{secrets.token_hex(3)}"
    spec = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": probe_image, "TrainingInputMode": "File"},
        "ResourceConfig": {
            "InstanceGroups": [
                {"InstanceGroupName": "cpu", "InstanceType": "ml.m5.large", "InstanceCount": 1},
                {"InstanceGroupName": "small", "InstanceType": "ml.t3.medium", "InstanceCount": 1},
            ]
        },
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        "Environment": {**PROBE_ENV, "PROBE_RESOLVE_S": "0", "PROBE_SLEEP_S": "0"},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_EMULATOR_") and k != "AWS_ENDPOINT_URL_S3"}
    env["SM_EMULATOR_WORK_DIR"] = str(fast_config.work_dir)
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "train", "--spec", "job.yaml", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "starting on 2 hosts (cpu: 1 x ml.m5.large, small: 1 x ml.t3.medium)" in done.stderr, done.stderr
    result = json.loads(done.stdout)
    assert result["ResourceConfig"]["InstanceGroups"] == spec["ResourceConfig"]["InstanceGroups"]  # type: ignore[index]
    seen = probes(result["ModelArtifacts"]["S3ModelArtifacts"])
    assert {h: config_file(p, "resourceconfig.json")["current_group_name"] for h, p in seen.items()} == {
        "algo-1": "cpu",
        "algo-2": "small",
    }
    assert_nothing_left(fast_config, name)
