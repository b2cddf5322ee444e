"""Remote Docker engines: nothing may depend on the engine seeing this machine's files.

The rule (:func:`is_remote`), decided here only: ``SM_EMULATOR_REMOTE_ENGINE`` (``EmulatorConfig.remote_engine``)
wins when set (1: remote, 0: local); otherwise an engine reached through ``DOCKER_HOST=tcp://...``, ``ssh://...``,
``http(s)://...`` is remote, and a unix socket (or no ``DOCKER_HOST``) is local.

A local engine keeps the fast path: bind mounts of the staged inputs. A remote one gets a
:class:`RemoteDockerClient`, whose ``create`` turns every bind mount of a container into a labelled named volume
filled through the archive API (:func:`plan_volumes`: one volume per mount, filled with one ``put_archive`` into a
helper container that is created, never started, and removed at once) and whose ``remove`` removes those volumes
with the container, on every path (a failure, a timeout, a stop, an engine fault; the exit sweep and
``python -m emulator cleanup`` find them by their labels). Outputs already come back through ``get_archive``,
Pipe channels through ``docker exec`` and seed files through ``put_archive``, so they need nothing here.

A published port is bound to 127.0.0.1 on the engine's host and the emulator connects to 127.0.0.1 only:
:func:`check_published_port` turns an engine whose host's loopback is not this machine's (no tunnel) into one
clear line instead of a start-up timeout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from emulator.config import EmulatorConfig
from emulator.constants import REMOTE_PORT_PATIENCE_S
from emulator.errors import DockerUnavailable, EmulatorError, PortUnreachable
from emulator.runtime import session as _session
from emulator.runtime.docker import ContainerSpec, DockerClient, Mount
from emulator.storage.uploads import tar_stream

#: DOCKER_HOST schemes of an engine that may run on another machine.
REMOTE_SCHEMES = ("tcp://", "ssh://", "http://", "https://")
#: Where the helper container mounts the volumes it fills (volume i at STAGE_DIR/i).
STAGE_DIR = "/sm-emulator-staging"
#: Volume names: this prefix, a token per container, the mount's index.
VOLUME_PREFIX = "sm-emulator-in-"


def is_remote(config: EmulatorConfig) -> bool:
    """Whether the engine may not see this machine's files (see the module's rule).

    >>> is_remote(EmulatorConfig(docker_host="ssh://ci@builder"))
    True
    >>> is_remote(EmulatorConfig(docker_host="unix:///var/run/docker.sock"))
    False
    >>> is_remote(EmulatorConfig(docker_host="tcp://127.0.0.1:2375", remote_engine=False))
    False
    """
    if config.remote_engine is not None:
        return config.remote_engine
    return (config.docker_host or "").strip().lower().startswith(REMOTE_SCHEMES)


def client(config: EmulatorConfig) -> DockerClient:
    """The Docker client for ``config``'s engine: a :class:`RemoteDockerClient` when it is remote."""
    return RemoteDockerClient(config) if is_remote(config) else DockerClient(config)


@dataclass(frozen=True)
class Upload:
    """A client path that travels into a named volume: at its root (a dir) or as ``name`` in it (a file)."""

    volume: str
    source: str
    name: str = ""


def plan_volumes(spec: ContainerSpec, prefix: str, is_dir: Callable[[str], bool]) -> tuple[ContainerSpec, list[Upload]]:
    """``spec`` with each bind mount replaced by a named volume ``<prefix>-<i>``, and what fills each volume.

    A bound dir becomes a volume at the same target; a bound file (a channel of one local file) a volume at the
    target's parent holding that file under the target's name. Read-only stays read-only. Pure but for
    ``is_dir``.

    >>> spec = ContainerSpec("img", mounts=[Mount("/opt/ml"), Mount("/opt/ml/input/data/a/x.csv", "/d/x.csv", True)])
    >>> staged, uploads = plan_volumes(spec, "v", lambda path: False)
    >>> staged.mounts[1], uploads
    (Mount(target='/opt/ml/input/data/a', source='v-0', read_only=True, named=True), [Upload(volume='v-0', \
source='/d/x.csv', name='x.csv')])
    """
    mounts: list[Mount] = []
    uploads: list[Upload] = []
    for m in spec.mounts:
        if m.source is None or m.named:
            mounts.append(m)
            continue
        volume = f"{prefix}-{len(uploads)}"
        if is_dir(m.source):
            uploads.append(Upload(volume, m.source))
            mounts.append(Mount(m.target, volume, m.read_only, named=True))
        else:
            parent, name = posixpath.split(m.target.rstrip("/"))
            uploads.append(Upload(volume, m.source, name))
            mounts.append(Mount(parent, volume, m.read_only, named=True))
    return replace(spec, mounts=mounts), uploads


class VolumeSeam(Protocol):
    """The engine operations volume staging needs (:class:`~emulator.runtime.docker.DockerClient` has them)."""

    def create(self, spec: ContainerSpec) -> str: ...
    def remove(self, container_id: str) -> None: ...
    def create_volume(self, name: str, labels: dict[str, str]) -> str: ...
    def remove_volume(self, name: str) -> None: ...
    def put_archive(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None: ...


def create_with_volumes(seam: VolumeSeam, spec: ContainerSpec, prefix: str) -> tuple[str, dict[str, Upload]]:
    """Create ``spec``'s container with each bind mount's contents uploaded into a named volume first.

    Returns the container id and, per bind target, the volume that stands for it (remove them after the container,
    :func:`remove_volumes`). On any failure, what was made is removed again before the error goes on.
    """
    staged, uploads = plan_volumes(spec, prefix, os.path.isdir)
    if not uploads:
        return seam.create(spec), {}
    labels = dict(spec.labels)
    made: list[str] = []
    try:
        for upload in uploads:
            made.append(seam.create_volume(upload.volume, labels))
        _fill(seam, spec.image, uploads, labels)
        container_id = seam.create(staged)
    except BaseException:
        with contextlib.suppress(DockerUnavailable):  # labelled: the sweep finds what the engine kept
            remove_volumes(seam, made)
        raise
    binds = [m.target for m in spec.mounts if m.source is not None and not m.named]
    return container_id, dict(zip(binds, uploads, strict=True))


def refresh_volume(seam: VolumeSeam, image: str, upload: Upload, rel: str, labels: dict[str, str]) -> None:
    """Copy what is now at ``rel`` under a bound dir into the volume that stands for it (through a helper).

    For a dir that changes while its container runs (a multi-model endpoint's staged models): an engine that
    cannot see the dir cannot see the change either. Files are added or replaced, never deleted.
    """
    source = os.path.join(upload.source, rel)
    _fill(seam, image, [Upload(upload.volume, source, rel.strip("/"))], labels)


def _fill(seam: VolumeSeam, image: str, uploads: list[Upload], labels: dict[str, str]) -> None:
    """One helper container (created, never started) with every volume mounted; one archive call fills them."""
    helper = seam.create(
        ContainerSpec(
            image=image,
            entrypoint=[f"{STAGE_DIR}/never-started"],
            network="none",
            mounts=[Mount(f"{STAGE_DIR}/{i}", u.volume, named=True) for i, u in enumerate(uploads)],
            labels=labels,
        )
    )
    _session.register(seam, helper, "container")
    try:
        items = [(u.source, f"{STAGE_DIR}/{i}/{u.name}".rstrip("/")) for i, u in enumerate(uploads)]
        seam.put_archive(helper, "/", tar_stream(items))
    finally:
        seam.remove(helper)
        _session.unregister(helper)


def remove_volumes(seam: VolumeSeam, names: list[str]) -> None:
    """Remove each volume (one that is gone already is fine).

    Raises:
        DockerUnavailable: the engine failed (after every volume was tried); some may still be there.
    """
    error: DockerUnavailable | None = None
    for name in names:
        try:
            seam.remove_volume(name)
        except DockerUnavailable as exc:
            error = error or exc
    if error is not None:
        raise error


class _Plain:
    """A :class:`RemoteDockerClient` seen as a plain :class:`DockerClient` (no volume staging, no port check)."""

    def __init__(self, client: DockerClient) -> None:
        self._client = client

    def create(self, spec: ContainerSpec) -> str:
        return DockerClient.create(self._client, spec)

    def remove(self, container_id: str) -> None:
        DockerClient.remove(self._client, container_id)

    def create_volume(self, name: str, labels: dict[str, str]) -> str:
        return self._client.create_volume(name, labels)

    def remove_volume(self, name: str) -> None:
        self._client.remove_volume(name)

    def put_archive(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None:
        self._client.put_archive(container_id, path, chunks)


class RemoteDockerClient(DockerClient):
    """A :class:`DockerClient` for an engine that cannot see this machine's files: inputs travel as volumes."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        self._plain = _Plain(self)
        self._lock = threading.Lock()
        #: Container id -> its image, labels and, per bind target, the volume made for it (removed with it).
        self._staged: dict[str, tuple[str, dict[str, str], dict[str, Upload]]] = {}

    def binds_in_place(self) -> bool:
        """Never: the engine's binds are copies made for it (volumes), and what a container writes stays there."""
        return False

    def create(self, spec: ContainerSpec) -> str:
        """Create the container with its bind mounts' contents uploaded into named volumes first."""
        container_id, uploads = create_with_volumes(self._plain, spec, VOLUME_PREFIX + _session.short_token())
        if uploads:
            with self._lock:
                self._staged[container_id] = (spec.image, dict(spec.labels), uploads)
        return container_id

    def refresh_mount(self, container_id: str, target: str, rel: str, *, source_dir: str | None = None) -> None:
        """Show the container what is now at ``rel`` under the dir bound at ``target`` (see :func:`refresh_volume`).

        A local engine's bind shows it by itself; callers look for this method (``getattr``) and call it when the
        seam has it. A container another process created is found by inspecting it; then ``source_dir`` (the
        bound dir on this machine) must be given.

        Raises:
            EmulatorError: the container has no volume at ``target`` (it was not created for a remote engine).
        """
        with self._lock:
            staged = self._staged.get(container_id)
        if staged is not None:
            image, labels, uploads = staged
            refresh_volume(self._plain, image, uploads[target], rel, labels)
            return
        found = self.named_volume_at(container_id, target) if source_dir is not None else None
        if found is None or source_dir is None:
            raise EmulatorError(
                f"container {container_id[:12]} has no volume at {target} to copy {rel} into; it was not created "
                "for a remote engine (set SM_EMULATOR_REMOTE_ENGINE as the process that started it did)"
            )
        volume, image = found
        labels = _session.labels("staging", container_id[:12])
        refresh_volume(self._plain, image, Upload(volume, source_dir), rel, labels)

    def remove(self, container_id: str) -> None:
        """Remove the container, then the volumes made for it.

        Raises:
            DockerUnavailable: the engine failed; what is left stays known, so a later call (the exit sweep)
                removes it.
        """
        super().remove(container_id)
        with self._lock:
            staged = self._staged.pop(container_id, None)
        if staged is None:
            return
        try:
            remove_volumes(self._plain, [u.volume for u in staged[2].values()])
        except DockerUnavailable:
            with self._lock:
                self._staged[container_id] = staged
            raise

    def host_port(self, container_id: str, port: int) -> int:
        """The published port, once it is known to reach the container from here (:func:`check_published_port`)."""
        published = super().host_port(container_id, port)
        check_published_port(
            published, self._host, patience_s=REMOTE_PORT_PATIENCE_S, running=lambda: self._running(container_id)
        )
        return published

    def _running(self, container_id: str) -> bool:
        try:
            return self.state(container_id).status == "running"
        except Exception:  # gone, or the engine failed: the caller's own checks say which
            return False


def check_published_port(
    port: int, engine: str, *, patience_s: float, running: Callable[[], bool], interval_s: float = 0.1
) -> None:
    """Make sure 127.0.0.1:``port`` here reaches the port a remote engine published (on its host's loopback).

    Docker's proxy accepts connections on a published port as soon as the container runs, before its server
    listens; a port that refuses connections for ``patience_s`` while the container runs is not this machine's.
    Returns at once when the container stopped running (the caller's own checks say why).

    Raises:
        PortUnreachable: the port kept refusing connections.
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0):
                return
        except OSError as exc:
            if exc.errno != errno.ECONNREFUSED or not running():
                return
        if time.monotonic() >= deadline:
            raise PortUnreachable(
                f"the container's port is published on 127.0.0.1:{port} of the engine's host ({engine}), which "
                "is not reachable from here; run the emulator where the engine's loopback ports reach (its host, or a "
                "VM that forwards them such as Docker Desktop or colima) or tunnel them (docs/remote-engine.md)"
            )
        time.sleep(interval_s)
