"""The one sweep: remove the containers and networks that carry the emulator's labels, and nothing else.

Used by ``python -m emulator cleanup``, the contract suite's session-end safety net and the tests. Containers
of a process that is still alive are left alone unless asked (another terminal's running endpoint).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_MANAGED, LABEL_PID, LABEL_SESSION
from emulator.runtime.docker import DockerSeam, Managed


class Swept(NamedTuple):
    """One resource the sweep removed (or, in a dry run, would remove)."""

    kind: str
    id: str
    description: str


def sweep(
    config: EmulatorConfig | None = None,
    *,
    session_id: str | None = None,
    include_running_sessions: bool = False,
    dry_run: bool = False,
    docker: DockerSeam | None = None,
) -> list[Swept]:
    """Remove (or list) labelled containers, then networks.

    Args:
        session_id: only what that session created (e.g. :data:`emulator.runtime.session.SESSION_ID`); its own
            process counts as finished.
        include_running_sessions: also what processes that are still running created.
        dry_run: list, remove nothing.
        docker: the seam to use (a new client, closed at the end, if not given).
    """
    from emulator.runtime import session as _session
    from emulator.runtime.docker import DockerClient

    own = docker is None
    seam: DockerSeam = docker if docker is not None else DockerClient(config or EmulatorConfig())
    label = f"{LABEL_SESSION}={session_id}" if session_id else LABEL_MANAGED
    done: list[Swept] = []
    try:
        for r in seam.list_managed(label):  # containers first: a network in use cannot be removed
            if session_id is None and not include_running_sessions and _alive(r.labels.get(LABEL_PID)):
                continue
            if not dry_run:
                (seam.remove if r.kind == "container" else seam.remove_network)(r.id)
                _session.unregister(r.id)
            done.append(Swept(r.kind, r.id, _describe(r)))
    finally:
        if own:
            seam.close()
    return done


def _describe(r: Managed) -> str:
    if r.kind == "container":
        return f"{r.name} (job {r.labels.get(LABEL_JOB, '?')}, {r.state or '?'})"
    return r.name


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
