"""ml.* instance types mapped to the CPU and memory limits the Docker engine can give a container.

The platform's vCPU and memory figures are the EC2 ones. The engine cannot give more CPUs or memory than
the machine has, so limits are clamped to the host (documented in docs/contract-choices.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from emulator.errors import InvalidSpec

GIB = 1024**3


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
    "g4dn": {"xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "12xlarge": (48, 192)},
    "g5": {"xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "12xlarge": (48, 192)},
    "p3": {"2xlarge": (8, 61), "8xlarge": (32, 244), "16xlarge": (64, 488)},
}
_GPUS = {"g4dn.12xlarge": 4, "g5.12xlarge": 4, "p3.8xlarge": 4, "p3.16xlarge": 8}

TABLE: dict[str, Resources] = {
    f"ml.{family}.{size}": Resources(
        cpus, mem * GIB, _GPUS.get(f"{family}.{size}", 1 if family in {"g4dn", "g5", "p3"} else 0)
    )
    for family, sizes in _FAMILIES.items()
    for size, (cpus, mem) in sizes.items()
}


def resources_for(instance_type: str) -> Resources:
    """The platform's resources for an ``ml.*`` type; ``local`` means no limits."""
    if instance_type in TABLE:
        return TABLE[instance_type]
    if instance_type.startswith("ml."):
        return Resources(0, 0)  # a valid type we have no figures for: run without limits
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
