"""The one sweep: remove the containers, networks and volumes that carry the emulator's labels, and nothing else.

Used by ``python -m emulator cleanup``, the contract suite's session-end safety net and the tests. Containers
of a process that is still alive are left alone unless asked (another terminal's running endpoint).
:func:`sweep_work_dirs` does the same for the temp folders a killed process left (their names carry its pid).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_MANAGED, LABEL_PID, LABEL_SESSION
from emulator.runtime.docker import DockerSeam, Managed
from emulator.storage.workdirs import PREFIX, owner_pid


@runtime_checkable
class _Volumes(Protocol):
    """A seam that also lists and removes volumes (:class:`~emulator.runtime.docker.DockerClient` does)."""

    def list_volumes(self, label: str) -> list[Managed]: ...
    def remove_volume(self, name: str) -> None: ...


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
    """Remove (or list) labelled containers, then networks, then volumes (when the seam has them).

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
        # Volumes last (a container's inputs on a remote engine, see runtime/remote.py): in use, they cannot go.
        if isinstance(seam, _Volumes):
            for r in seam.list_volumes(label):
                if session_id is None and not include_running_sessions and _alive(r.labels.get(LABEL_PID)):
                    continue
                if not dry_run:
                    seam.remove_volume(r.id)
                done.append(Swept(r.kind, r.id, _describe(r)))
    finally:
        if own:
            seam.close()
    return done


def work_dir_roots(config: EmulatorConfig | None = None) -> list[Path]:
    """Where the emulator makes its temp folders: ``config.work_dir`` and the system temp dir."""
    roots = [Path(tempfile.gettempdir())]
    if config is not None and config.work_dir:
        roots.insert(0, Path(config.work_dir))
    unique: list[Path] = []
    for r in roots:
        if r.resolve() not in {u.resolve() for u in unique}:
            unique.append(r)
    return unique


def sweep_work_dirs(
    roots: Iterable[Path | str] | None = None,
    *,
    include_running_sessions: bool = False,
    dry_run: bool = False,
) -> list[Swept]:
    """Remove (or list) the ``sm-emulator-*-p<pid>-*`` folders under ``roots`` whose process is gone.

    Only folders this user owns and whose name carries a pid (see :mod:`emulator.storage.workdirs`) are
    considered; this process's own folders and those of live processes are kept (unless
    ``include_running_sessions``).
    """
    done: list[Swept] = []
    for root in work_dir_roots() if roots is None else [Path(r) for r in roots]:
        try:
            entries = sorted(Path(root).iterdir())
        except OSError:
            continue
        for entry in entries:
            pid = owner_pid(entry.name) if entry.name.startswith(PREFIX) else None
            if pid is None or pid == os.getpid():
                continue
            try:
                st = entry.lstat()
            except OSError:
                continue
            if not entry.is_dir() or entry.is_symlink() or st.st_uid != os.getuid():
                continue
            if not include_running_sessions and _alive(str(pid)):
                continue
            if not dry_run:
                shutil.rmtree(entry, ignore_errors=True)
                if entry.exists():
                    continue
            done.append(Swept("folder", str(entry), f"(left by pid {pid})"))
    return done


def _describe(r: Managed) -> str:
    if r.kind == "container":
        return f"{r.name} (job {r.labels.get(LABEL_JOB, '?')}, {r.state or '?'})"
    if r.kind == "volume":  # its id is its name
        return f"(job {r.labels.get(LABEL_JOB, '?')})"
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
