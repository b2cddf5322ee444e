"""Sweep leftovers: containers and networks with the emulator's label, and nothing else."""

from __future__ import annotations

import os

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_PID
from emulator.runtime.docker import DockerClient


def sweep(
    config: EmulatorConfig, *, include_running_sessions: bool = False, dry_run: bool = False
) -> list[tuple[str, str, str]]:
    """Remove (or list) labelled containers, then networks; returns (kind, id, name/job) of each."""
    docker = DockerClient(config)
    containers, networks = docker.list_managed()
    done: list[tuple[str, str, str]] = []
    for c in containers:
        labels = c.get("Labels") or {}
        if not include_running_sessions and _alive(labels.get(LABEL_PID)):
            continue
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        if not dry_run:
            docker.remove(c["Id"])
        done.append(("container", c["Id"], f"{name} (job {labels.get(LABEL_JOB, '?')})"))
    for n in networks:
        labels = n.get("Labels") or {}
        if not include_running_sessions and _alive(labels.get(LABEL_PID)):
            continue
        if not dry_run:
            docker.remove_network(n["Id"])
        done.append(("network", n["Id"], n.get("Name", "?")))
    return done


def _alive(pid: str | None) -> bool:
    if not pid or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
