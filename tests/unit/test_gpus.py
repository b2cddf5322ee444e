"""GPU instance types: the table's GPU counts, the device request, the engine's GPUs, refusal and the CPU run."""

from __future__ import annotations

from typing import Any

import pytest
from _fakes import CONFIG as FAKE_CONFIG
from _fakes import IMAGE, FakeDocker

from emulator import constants
from emulator.cli.app import build_parser
from emulator.config import EmulatorConfig
from emulator.errors import EXIT_ENVIRONMENT, GpuUnavailable
from emulator.processing import plan as processing_plan
from emulator.runtime.docker import ContainerSpec, device_requests, engine_has_gpus
from emulator.runtime.resources import ALL_GPUS, TABLE, fit_gpus, gpu_request
from emulator.serving import Endpoint
from emulator.training import plan as training_plan

CONFIG = EmulatorConfig()


def _training(itype: str, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": "gpu-job",
        "AlgorithmSpecification": {"TrainingImage": "algo:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "out"},
        "ResourceConfig": {"InstanceType": itype, "InstanceCount": 2, "VolumeSizeInGB": 10},
        **extra,
    }


# -- the table --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("itype", "gpus"),
    # EC2's accelerated-computing figures: NVIDIA T4, A10G, V100, A100, H100 per instance.
    [
        ("ml.g4dn.xlarge", 1),
        ("ml.g4dn.12xlarge", 4),
        ("ml.g5.2xlarge", 1),
        ("ml.g5.48xlarge", 8),
        ("ml.p3.2xlarge", 1),
        ("ml.p3.8xlarge", 4),
        ("ml.p3.16xlarge", 8),
        ("ml.p4d.24xlarge", 8),
        ("ml.p5.48xlarge", 8),
    ],
)
def test_gpu_types_have_the_platforms_gpu_count(itype: str, gpus: int) -> None:
    assert TABLE[itype].gpus == gpus
    assert gpu_request(itype) == (gpus, {"NVIDIA_VISIBLE_DEVICES": ",".join(str(i) for i in range(gpus))})


def test_only_p_and_g_types_have_gpus() -> None:
    for itype, res in TABLE.items():
        assert (res.gpus > 0) == itype.startswith(("ml.p", "ml.g")), itype
    assert gpu_request("ml.m5.xlarge") == (0, {})


def test_a_gpu_type_without_figures_asks_for_all_the_engines_gpus() -> None:
    assert "ml.g6.xlarge" not in TABLE
    assert gpu_request("ml.g6.xlarge") == (ALL_GPUS, {"NVIDIA_VISIBLE_DEVICES": "all"})
    assert gpu_request("ml.trn1.2xlarge") == (0, {})  # Trainium is not an NVIDIA GPU


# -- the seam ---------------------------------------------------------------------------------------------
def test_the_device_request_is_dockers_gpus_flag() -> None:
    # What `docker run --gpus 2` sends in HostConfig.DeviceRequests (docker-py's DeviceRequest is that dict).
    assert [dict(r) for r in device_requests(2) or []] == [
        {"Driver": "nvidia", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert [dict(r)["Count"] for r in device_requests(ALL_GPUS) or []] == [-1]  # --gpus all
    assert device_requests(0) is None


def test_engine_gpus_from_docker_info() -> None:
    assert engine_has_gpus({"Runtimes": {"nvidia": {"path": "nvidia-container-runtime"}, "runc": {}}})
    assert engine_has_gpus(
        {"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=all"}]}
    )
    assert not engine_has_gpus(
        {"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "vendor.com/x=0"}]}
    )
    assert not engine_has_gpus({})


# -- plans ------------------------------------------------------------------------------------------------
def test_training_plan_asks_every_host_for_the_types_gpus() -> None:
    plan = training_plan.plan(_training("ml.p3.8xlarge"), CONFIG)
    assert [h.spec.gpus for h in plan.hosts] == [4, 4]
    assert {h.spec.environment["NVIDIA_VISIBLE_DEVICES"] for h in plan.hosts} == {"0,1,2,3"}
    cpu = training_plan.plan(_training("ml.m5.large"), CONFIG)
    assert [h.spec.gpus for h in cpu.hosts] == [0, 0]
    assert all("NVIDIA_VISIBLE_DEVICES" not in h.spec.environment for h in cpu.hosts)


def test_the_requests_environment_wins_over_nvidia_visible_devices() -> None:
    plan = training_plan.plan(_training("ml.g5.12xlarge", Environment={"NVIDIA_VISIBLE_DEVICES": "1"}), CONFIG)
    assert plan.hosts[0].spec.environment["NVIDIA_VISIBLE_DEVICES"] == "1"


def test_processing_plan_asks_for_gpus_too() -> None:
    request = {
        "ProcessingJobName": "gpu-processing",
        "AppSpecification": {"ImageUri": "proc:1"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10}
        },
    }
    spec = processing_plan.plan(request, CONFIG).hosts[0].spec
    assert (spec.gpus, spec.environment["NVIDIA_VISIBLE_DEVICES"]) == (1, "0")


# -- the engine's answer ----------------------------------------------------------------------------------
def _spec(gpus: int) -> ContainerSpec:
    env = {"A": "1", **({"NVIDIA_VISIBLE_DEVICES": "0"} if gpus else {})}
    return ContainerSpec(image="algo:1", environment=env, gpus=gpus)


def test_no_gpu_host_never_asks_the_engine() -> None:
    def ask() -> bool:
        raise AssertionError("the engine was asked about GPUs for a CPU instance type")

    specs = [_spec(0)]
    assert fit_gpus(specs, ask, allow_cpu=False) is specs


def test_an_engine_with_gpus_gets_the_request_as_it_is() -> None:
    specs = [_spec(1), _spec(1)]
    assert fit_gpus(specs, lambda: True, allow_cpu=False) == specs


def test_an_engine_without_gpus_refuses_in_one_line_naming_the_fixes() -> None:
    with pytest.raises(GpuUnavailable) as caught:
        fit_gpus([_spec(4)], lambda: False, allow_cpu=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "4 GPU(s)" in message
    for fix in ("NVIDIA Container Toolkit", "--allow-cpu-for-gpu", "SM_EMULATOR_ALLOW_CPU_FOR_GPU=1"):
        assert fix in message
    assert caught.value.exit_code == EXIT_ENVIRONMENT


def test_allow_cpu_runs_the_same_containers_without_gpus() -> None:
    fitted = fit_gpus([_spec(2), _spec(0)], lambda: False, allow_cpu=True)
    assert [(s.gpus, s.environment) for s in fitted] == [(0, {"A": "1"}), (0, {"A": "1"})]


# -- the opt-in: config, environment, CLI -----------------------------------------------------------------
def test_allow_cpu_for_gpu_from_the_environment_and_the_flags() -> None:
    assert not EmulatorConfig.from_env({}).allow_cpu_for_gpu
    assert EmulatorConfig.from_env({"SM_EMULATOR_ALLOW_CPU_FOR_GPU": "1"}).allow_cpu_for_gpu
    parser = build_parser()
    assert parser.parse_args(["train", "--image", "x", "--allow-cpu-for-gpu"]).allow_cpu_for_gpu
    assert parser.parse_args(["process", "--image", "x", "--allow-cpu-for-gpu"]).allow_cpu_for_gpu
    assert parser.parse_args(["api-server", "--allow-cpu-for-gpu"]).allow_cpu_for_gpu
    assert parser.parse_args(["train", "--image", "x"]).allow_cpu_for_gpu is None  # the environment decides


def test_checkpoint_sync_interval_must_be_positive() -> None:
    assert EmulatorConfig().checkpoint_sync_interval_s == constants.CHECKPOINT_SYNC_INTERVAL_S
    with pytest.raises(ValueError, match="more than 0"):
        EmulatorConfig(checkpoint_sync_interval_s=0)


# -- endpoints (and batch transform, which runs its model through one) -------------------------------------
@pytest.mark.parametrize(
    ("engine_gpus", "allow_cpu", "gpus", "env"),
    [
        (True, False, 1, {"A": "1", "NVIDIA_VISIBLE_DEVICES": "0"}),  # the engine has GPUs: the request goes out
        (False, True, 0, {"A": "1"}),  # none, CPU run allowed
    ],
)
def test_an_endpoint_of_a_gpu_type(engine_gpus: bool, allow_cpu: bool, gpus: int, env: dict[str, str]) -> None:
    docker = FakeDocker()
    docker.engine_gpus = engine_gpus
    config = FAKE_CONFIG.with_(allow_cpu_for_gpu=allow_cpu)
    with Endpoint(IMAGE, environment={"A": "1"}, instance_type="ml.g4dn.xlarge", docker=docker, config=config):
        spec = docker.only().spec
    assert (spec.gpus, spec.environment) == (gpus, env)


def test_an_endpoint_of_a_gpu_type_is_refused_on_an_engine_without_gpus() -> None:
    docker = FakeDocker()
    with pytest.raises(GpuUnavailable, match="--allow-cpu-for-gpu"):
        Endpoint(IMAGE, instance_type="ml.p3.2xlarge", docker=docker, config=FAKE_CONFIG).start()
    assert docker.containers == {}  # refused before anything was created
