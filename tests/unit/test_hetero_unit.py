"""Heterogeneous training clusters (ResourceConfig.InstanceGroups, channels' InstanceGroupNames), no engine.

The plan (hosts, each host's resources and /opt/ml/input/config files), the platform's refusals, what the runner
stages on which host (the fake seam of test_training_unit), the GPU rule per group, and the API server's
CreateTrainingJob / DescribeTrainingJob round trip through boto3 (``_fakes.JobsDocker``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from _fakes import JobsDocker
from botocore.exceptions import ClientError
from test_training_unit import FakeDocker, channel, make_request

from emulator.api.server import ApiServer
from emulator.config import EmulatorConfig
from emulator.constants import NVIDIA_VISIBLE_DEVICES
from emulator.errors import GpuUnavailable, InvalidSpec
from emulator.runtime.resources import docker_limits
from emulator.training import TrainingJob
from emulator.training.plan import config_files, plan
from emulator.tuning import TuningJob

CONFIG_DIR = "/opt/ml/input/config"
#: Two groups whose instance types differ in memory (both clamp to the same CPUs on a small machine).
GROUPS = [
    {"InstanceGroupName": "data", "InstanceType": "ml.t3.medium", "InstanceCount": 2},
    {"InstanceGroupName": "dnn", "InstanceType": "ml.m5.large", "InstanceCount": 1},
]


@pytest.fixture
def config(tmp_path: Path) -> EmulatorConfig:
    work = tmp_path / "work"
    work.mkdir()
    return EmulatorConfig(work_dir=str(work), training_stop_grace_s=0.2)


def hetero(tmp_path: Path, groups: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    req: dict[str, Any] = make_request(tmp_path, **changes)
    req["ResourceConfig"] = {"InstanceGroups": groups or GROUPS, "VolumeSizeInGB": 5}
    return req


def grouped(name: str, uri: Path, *groups: str, **extra: Any) -> dict[str, Any]:
    ch: dict[str, Any] = channel(name, uri, **extra)
    ch["DataSource"]["S3DataSource"]["InstanceGroupNames"] = list(groups)
    return ch


def data_dir(tmp_path: Path, name: str, files: int) -> Path:
    d = tmp_path / name
    d.mkdir()
    for i in range(files):
        (d / f"part-{i}.csv").write_text(f"{name},{i}\n")
    return d


# -- the plan --------------------------------------------------------------------------------------------------


def test_hosts_are_numbered_in_group_order_and_each_has_its_groups_resources(
    tmp_path: Path, config: EmulatorConfig
) -> None:
    p = plan(hetero(tmp_path), config)
    assert p.host_names == ["algo-1", "algo-2", "algo-3"]
    small, large = docker_limits("ml.t3.medium"), docker_limits("ml.m5.large")
    assert small != large  # the two types differ on this machine, so the check below can tell them apart
    assert [(h.spec.nano_cpus, h.spec.mem_limit) for h in p.hosts] == [small, small, large]
    assert p.private_network  # three hosts resolve each other


def test_resourceconfig_names_each_hosts_group_and_every_group_with_its_hosts(
    tmp_path: Path, config: EmulatorConfig
) -> None:
    req = plan(hetero(tmp_path), config).request
    hosts = ["algo-1", "algo-2", "algo-3"]
    groups = [
        {"instance_group_name": "data", "instance_type": "ml.t3.medium", "hosts": ["algo-1", "algo-2"]},
        {"instance_group_name": "dnn", "instance_type": "ml.m5.large", "hosts": ["algo-3"]},
    ]
    assert config_files(req, "algo-2", hosts, {})["resourceconfig.json"] == {
        "current_host": "algo-2",
        "current_instance_type": "ml.t3.medium",
        "current_group_name": "data",
        "hosts": hosts,
        "instance_groups": groups,
        "network_interface_name": "eth0",
    }
    third = config_files(req, "algo-3", hosts, {})["resourceconfig.json"]
    assert (third["current_group_name"], third["current_instance_type"]) == ("dnn", "ml.m5.large")
    assert third["instance_groups"] == groups


def test_a_channel_with_instance_group_names_is_in_the_inputdataconfig_of_those_groups_hosts_only(
    tmp_path: Path, config: EmulatorConfig
) -> None:
    train, raw = data_dir(tmp_path, "train", 1), data_dir(tmp_path, "raw", 1)
    req = hetero(tmp_path, InputDataConfig=[grouped("train", train, "dnn"), grouped("raw", raw, "data", "dnn")])
    p = plan(req, config)
    assert [i.hosts for i in p.inputs] == [(2,), (0, 1, 2)]
    seen = {h: set(config_files(p.request, h, p.host_names, {})["inputdataconfig.json"]) for h in p.host_names}
    assert seen == {"algo-1": {"raw"}, "algo-2": {"raw"}, "algo-3": {"raw", "train"}}


def test_describe_keeps_resourceconfig_as_given(tmp_path: Path, config: EmulatorConfig) -> None:
    req = plan(hetero(tmp_path), config).request
    assert req["ResourceConfig"] == {"InstanceGroups": GROUPS, "VolumeSizeInGB": 5}


# -- refused as the platform refuses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["ResourceConfig"].update(InstanceType="ml.m5.large"),
            "InstanceType or InstanceCount cannot be specified with InstanceGroups",
        ),
        (
            lambda r: r["ResourceConfig"].update(InstanceCount=3),
            "InstanceType or InstanceCount cannot be specified with InstanceGroups",
        ),
        (
            lambda r: r["ResourceConfig"]["InstanceGroups"].append(dict(GROUPS[0])),
            "InstanceGroups[data]: the group name is given twice",
        ),
        (
            lambda r: r["ResourceConfig"]["InstanceGroups"][1].update(InstanceCount=0),
            "InstanceGroups[dnn].InstanceCount: must be at least 1",
        ),
        (
            lambda r: r["ResourceConfig"].update(
                InstanceGroups=[{**GROUPS[0], "InstanceGroupName": f"g{i}"} for i in range(6)]
            ),
            "ResourceConfig.InstanceGroups: 6 items, at most 5 allowed",
        ),
        (
            lambda r: r["ResourceConfig"]["InstanceGroups"].__setitem__(
                0, {**GROUPS[0], "InstanceGroupName": "x" * 65}
            ),
            "InstanceGroupName: 65 characters, at most 64 allowed",
        ),
        (
            lambda r: r.update(InputDataConfig=[grouped("train", Path("/d"), "gpu")]),
            "InstanceGroupNames: 'gpu' is not a group of ResourceConfig.InstanceGroups (data, dnn)",
        ),
        (
            lambda r: r.update(InputDataConfig=[grouped("train", Path("/d"), "dnn"), channel("test", "/d")]),
            "some channels have assigned instance groups: [train] while others not: [test]",
        ),
    ],
)
def test_what_the_platform_refuses_is_refused_in_one_line(
    tmp_path: Path, config: EmulatorConfig, change: Any, message: str
) -> None:
    req = hetero(tmp_path, groups=[dict(g) for g in GROUPS])
    change(req)
    with pytest.raises(InvalidSpec) as info:
        plan(req, config)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_instance_group_names_without_instance_groups_is_refused(tmp_path: Path, config: EmulatorConfig) -> None:
    req = make_request(tmp_path, InputDataConfig=[grouped("train", tmp_path, "dnn")])
    with pytest.raises(InvalidSpec, match=r"InstanceGroupNames: the cluster has no instance groups"):
        plan(req, config)


# -- what each host gets (the runner, on the fake seam) ----------------------------------------------------------


def test_each_host_gets_only_its_groups_channels_sharded_among_those_hosts(
    tmp_path: Path, config: EmulatorConfig
) -> None:
    train, raw = data_dir(tmp_path, "train", 1), data_dir(tmp_path, "raw", 4)
    req = hetero(
        tmp_path,
        InputDataConfig=[
            grouped("train", train, "dnn"),
            grouped("raw", raw, "data", S3DataDistributionType="ShardedByS3Key"),
        ],
    )
    docker = FakeDocker()
    result = TrainingJob(req, config=config, docker=docker).run()
    assert result["TrainingJobStatus"] == "Completed"
    channels = [
        {m.target: sorted(files) for m, files in ((m, c.mounted.get(m.target, {})) for m in c.spec.mounts)
         if m.target.startswith("/opt/ml/input/data/")}
        for c in docker.containers.values()
    ]  # fmt: skip
    assert channels == [
        {"/opt/ml/input/data/raw": ["part-0.csv", "part-2.csv"]},
        {"/opt/ml/input/data/raw": ["part-1.csv", "part-3.csv"]},
        {"/opt/ml/input/data/train": ["part-0.csv"]},
    ]
    assert [sorted(docker.config_json(i, "inputdataconfig.json")) for i in range(3)] == [["raw"], ["raw"], ["train"]]
    assert [docker.config_json(i, "resourceconfig.json")["current_group_name"] for i in range(3)] == [
        "data",
        "data",
        "dnn",
    ]
    assert result["ResourceConfig"] == {"InstanceGroups": GROUPS, "VolumeSizeInGB": 5}


def test_a_gpu_group_follows_the_gpu_rule_and_the_cpu_group_is_untouched(tmp_path: Path) -> None:
    groups = [GROUPS[0], {"InstanceGroupName": "gpu", "InstanceType": "ml.g5.12xlarge", "InstanceCount": 1}]
    work = tmp_path / "work"
    work.mkdir()
    refused = FakeDocker()
    with pytest.raises(GpuUnavailable, match="has no GPUs"):
        TrainingJob(hetero(tmp_path, groups), config=EmulatorConfig(work_dir=str(work)), docker=refused).run()
    assert refused.containers == {}  # refused before anything was made
    docker = FakeDocker()
    cpu_run = EmulatorConfig(work_dir=str(work), allow_cpu_for_gpu=True)
    assert (
        TrainingJob(hetero(tmp_path, groups), config=cpu_run, docker=docker).run()["TrainingJobStatus"] == "Completed"
    )
    assert [(s.gpus, NVIDIA_VISIBLE_DEVICES in s.environment) for s in docker.specs] == [(0, False)] * 3
    asked = plan(hetero(tmp_path, groups), cpu_run)
    assert [(h.spec.gpus, h.spec.environment.get(NVIDIA_VISIBLE_DEVICES)) for h in asked.hosts] == [
        (0, None),
        (0, None),
        (4, "0,1,2,3"),
    ]


# -- the API server (boto3) ------------------------------------------------------------------------------------


def test_create_training_job_with_instance_groups_through_boto3_describes_them_as_given(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    cfg = EmulatorConfig(work_dir=str(work), stream_logs=False, training_stop_grace_s=0.5)
    with ApiServer(port=0, config=cfg, docker=JobsDocker()) as server:
        sm: Any = boto3.session.Session().client(
            "sagemaker",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )
        resources = {"InstanceGroups": GROUPS, "VolumeSizeInGB": 5}
        sm.create_training_job(
            TrainingJobName="hetero-api",
            RoleArn="arn:aws:iam::123456789012:role/Emulator",
            AlgorithmSpecification={"TrainingImage": "fake-algo:latest", "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": str(tmp_path / "out")},
            ResourceConfig=resources,
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )
        deadline = time.monotonic() + 30
        while (answer := sm.describe_training_job(TrainingJobName="hetero-api"))["TrainingJobStatus"] == "InProgress":
            assert time.monotonic() < deadline, answer
            time.sleep(0.05)
        assert answer["TrainingJobStatus"] == "Completed", json.dumps(answer, default=str)
        assert answer["ResourceConfig"] == resources
        with pytest.raises(ClientError, match="InstanceType or InstanceCount cannot be specified with InstanceGroups"):
            sm.create_training_job(
                TrainingJobName="hetero-api-2",
                RoleArn="arn:aws:iam::123456789012:role/Emulator",
                AlgorithmSpecification={"TrainingImage": "fake-algo:latest", "TrainingInputMode": "File"},
                OutputDataConfig={"S3OutputPath": str(tmp_path / "out")},
                ResourceConfig={**resources, "InstanceCount": 3},
                StoppingCondition={"MaxRuntimeInSeconds": 600},
            )


# -- a tuning job whose training jobs run on a heterogeneous cluster -------------------------------------------


def test_a_tuning_job_trains_on_the_instance_groups_of_its_definition(tmp_path: Path, config: EmulatorConfig) -> None:
    request = {
        "HyperParameterTuningJobName": "hetero-tune",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "6"}]},
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": "fake-algo:latest",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "score", "Regex": r"score=(-?[0-9.]+)"}],
            },
            "ResourceConfig": {"InstanceGroups": GROUPS, "VolumeSizeInGB": 5},
            "Environment": {"FAKE_LOG": "score=1"},
            "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }
    docker = JobsDocker()
    tuning = TuningJob(request, config=config.with_(stream_logs=False), docker=docker)
    assert "x 3 needs" in tuning.parallelism_note  # every host of the cluster counted
    described = tuning.run()
    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get("FailureReason")
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    hosts = [c.spec.network_aliases for c in docker.containers.values()]
    assert hosts == [["algo-1"], ["algo-2"], ["algo-3"]] * 2
