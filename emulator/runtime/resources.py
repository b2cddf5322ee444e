"""ml.* instance types mapped to the CPU and memory limits the Docker engine can give a container.

The platform's vCPU and memory figures are the EC2 ones. The engine cannot give more CPUs or memory than
the machine has, so limits are clamped to the host (documented in docs/contract-choices.md).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from emulator.constants import NVIDIA_VISIBLE_DEVICES
from emulator.errors import GpuUnavailable, InvalidSpec
from emulator.runtime.docker import ContainerSpec

logger = logging.getLogger(__name__)

GIB = 1024**3
#: A GPU type (ml.p*, ml.g*) the table has no figures for asks the engine for all its GPUs (Docker's count -1).
ALL_GPUS = -1


@dataclass(frozen=True)
class Resources:
    """What one instance of a type gets: CPUs, memory in bytes, GPUs on the platform."""

    vcpus: int
    memory_bytes: int
    gpus: int = 0


_FAMILIES: dict[str, dict[str, tuple[int, int]]] = {
    # family: size -> (vCPUs, GiB)
    "m5": {
        "large": (2, 8),
        "xlarge": (4, 16),
        "2xlarge": (8, 32),
        "4xlarge": (16, 64),
        "12xlarge": (48, 192),
        "24xlarge": (96, 384),
    },
    "m6i": {"large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "8xlarge": (32, 128)},
    "m7i": {"large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "8xlarge": (32, 128)},
    "c5": {
        "large": (2, 4),
        "xlarge": (4, 8),
        "2xlarge": (8, 16),
        "4xlarge": (16, 32),
        "9xlarge": (36, 72),
        "18xlarge": (72, 144),
    },
    "c6i": {"large": (2, 4), "xlarge": (4, 8), "2xlarge": (8, 16), "4xlarge": (16, 32), "8xlarge": (32, 64)},
    "r5": {"large": (2, 16), "xlarge": (4, 32), "2xlarge": (8, 64), "4xlarge": (16, 128)},
    "t2": {"medium": (2, 4), "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32)},
    "t3": {"medium": (2, 4), "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32)},
    "g4dn": {
        "xlarge": (4, 16),
        "2xlarge": (8, 32),
        "4xlarge": (16, 64),
        "8xlarge": (32, 128),
        "12xlarge": (48, 192),
        "16xlarge": (64, 256),
    },
    "g5": {
        "xlarge": (4, 16),
        "2xlarge": (8, 32),
        "4xlarge": (16, 64),
        "8xlarge": (32, 128),
        "12xlarge": (48, 192),
        "16xlarge": (64, 256),
        "24xlarge": (96, 384),
        "48xlarge": (192, 768),
    },
    "p3": {"2xlarge": (8, 61), "8xlarge": (32, 244), "16xlarge": (64, 488)},
    "p3dn": {"24xlarge": (96, 768)},
    "p4d": {"24xlarge": (96, 1152)},
    "p5": {"48xlarge": (192, 2048)},
}
#: GPUs per instance of the GPU families (EC2's figures); a size not listed has 1.
_GPUS = {
    "g4dn.12xlarge": 4,
    "g5.12xlarge": 4,
    "g5.24xlarge": 4,
    "g5.48xlarge": 8,
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "p3dn.24xlarge": 8,
    "p4d.24xlarge": 8,
    "p5.48xlarge": 8,
}


def _is_gpu_type(instance_type: str) -> bool:
    """ml.p* and ml.g* (accelerated computing with NVIDIA GPUs)."""
    return instance_type.startswith(("ml.p", "ml.g"))


TABLE: dict[str, Resources] = {
    f"ml.{family}.{size}": Resources(
        cpus, mem * GIB, _GPUS.get(f"{family}.{size}", 1 if _is_gpu_type(f"ml.{family}") else 0)
    )
    for family, sizes in _FAMILIES.items()
    for size, (cpus, mem) in sizes.items()
}


def resources_for(instance_type: str) -> Resources:
    """The platform's resources for an ``ml.*`` type; ``local`` means no limits."""
    if instance_type in TABLE:
        return TABLE[instance_type]
    if instance_type.startswith("ml."):
        # A valid type we have no figures for: run without limits (a GPU type gets the engine's GPUs).
        return Resources(0, 0, ALL_GPUS if _is_gpu_type(instance_type) else 0)
    raise InvalidSpec(f"instance type {instance_type!r} is not an ml.* type; use e.g. ml.m5.large")


def docker_limits(instance_type: str) -> tuple[int | None, int | None]:
    """(nano_cpus, mem_limit) for Docker, clamped to what this machine has; None means no limit."""
    res = resources_for(instance_type)
    host_cpus = os.cpu_count() or 1
    host_mem = _host_memory()
    nano = int(min(res.vcpus, host_cpus) * 1e9) if res.vcpus else None
    mem = min(res.memory_bytes, host_mem) if res.memory_bytes and host_mem else (res.memory_bytes or None)
    return nano, mem


def _host_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        return 0


def gpu_request(instance_type: str) -> tuple[int, dict[str, str]]:
    """(GPUs to ask the engine for, the environment that goes with them) for one host of ``instance_type``.

    The container sees its GPUs as devices 0..n-1 (``NVIDIA_VISIBLE_DEVICES=0,1,...``, what Docker itself sets for
    a count), or ``all`` for a GPU type without figures (:data:`ALL_GPUS`).

    >>> gpu_request("ml.m5.large"), gpu_request("ml.g5.12xlarge")
    ((0, {}), (4, {'NVIDIA_VISIBLE_DEVICES': '0,1,2,3'}))
    >>> gpu_request("ml.p4de.24xlarge")
    (-1, {'NVIDIA_VISIBLE_DEVICES': 'all'})
    """
    gpus = resources_for(instance_type).gpus
    if gpus == 0:
        return 0, {}
    devices = "all" if gpus == ALL_GPUS else ",".join(str(i) for i in range(gpus))
    return gpus, {NVIDIA_VISIBLE_DEVICES: devices}


def usable_gpus(gpus: int, engine_has_gpus: Callable[[], bool], allow_cpu: bool) -> int:
    """The GPUs a host asking for ``gpus`` gets: all of them when the engine has GPUs (asked only when ``gpus`` is
    not 0), none on an engine without GPUs when ``allow_cpu`` (the CPU run).

    Raises:
        GpuUnavailable: the engine has no GPUs and ``allow_cpu`` is not set.
    """
    if not gpus or engine_has_gpus():
        return gpus
    if not allow_cpu:
        raise GpuUnavailable(
            f"the instance type asks for {'all the' if gpus == ALL_GPUS else gpus} GPU(s), but the Docker engine "
            "has no GPUs (no 'nvidia' runtime, no NVIDIA devices); install the NVIDIA Container Toolkit, or run on "
            "the CPU with --allow-cpu-for-gpu (SM_EMULATOR_ALLOW_CPU_FOR_GPU=1, EmulatorConfig(allow_cpu_for_gpu=True))"
        )
    logger.warning("the Docker engine has no GPUs: running the GPU instance type on the CPU (allow_cpu_for_gpu)")
    return 0


def fit_gpus(specs: list[ContainerSpec], engine_has_gpus: Callable[[], bool], allow_cpu: bool) -> list[ContainerSpec]:
    """The specs as the engine can run them (:func:`usable_gpus` for the hosts that ask for GPUs): unchanged, or the
    same containers without GPUs nor NVIDIA_VISIBLE_DEVICES (the CPU run).

    Raises:
        GpuUnavailable: a host asks for GPUs, the engine has none and ``allow_cpu`` is not set.
    """
    wanting = [s.gpus for s in specs if s.gpus]
    if not wanting or usable_gpus(wanting[0], engine_has_gpus, allow_cpu):
        return specs
    return [
        dataclasses.replace(
            s, gpus=0, environment={k: v for k, v in s.environment.items() if k != NVIDIA_VISIBLE_DEVICES}
        )
        if s.gpus
        else s
        for s in specs
    ]
