"""The Docker seam: the only module that imports ``docker``.

Job modules receive a :class:`DockerClient` (or anything with the same methods, see :class:`DockerSeam`)
so unit tests can pass a fake. Containers are created with the emulator's labels, never with a TTY, and
with ports published on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import tarfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_MANAGED
from emulator.errors import ContainerFailed, DockerUnavailable, EmulatorError, ImageNotFound

if TYPE_CHECKING:
    import docker
    import docker.errors
    import requests
    from docker.types import DeviceRequest

logger = logging.getLogger(__name__)

_FIX_ENGINE = (
    "start Docker ('bash scripts/ensure_docker.sh' as root, or 'sudo systemctl start docker') or set DOCKER_HOST"
)
#: docker-py needs paramiko for any ssh:// engine, even when it runs the system's ssh client.
_FIX_SSH = "install paramiko (pip install paramiko), which docker-py needs for DOCKER_HOST=ssh://..."
_FIX_FAULT = (
    "check the engine ('docker info'), then run 'python -m emulator cleanup' to remove what the job left behind"
)

#: What a broken connection to the engine raises, from requests (most calls) or urllib3 (streams read raw).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (ConnectionError,)
_TAIL_ERRORS: tuple[type[BaseException], ...] = ()


def _import_docker() -> None:
    """Import docker-py, requests and urllib3 (about 150 ms), once, when the first client is made.

    Only a :class:`DockerClient` needs them: a command refused by validation, ``--help`` and the unit tests
    with a fake seam never pay for them. Every use below runs after ``DockerClient.__init__`` has called this.
    """
    global docker, requests, _CONNECTION_ERRORS, _TAIL_ERRORS
    import docker
    import docker.errors
    import requests
    import urllib3.exceptions

    _CONNECTION_ERRORS = (
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.Timeout,
        urllib3.exceptions.HTTPError,
        ConnectionError,
    )
    _TAIL_ERRORS = (docker.errors.APIError, *_CONNECTION_ERRORS)


@dataclass(frozen=True)
class Mount:
    """A mount: a host path bound into the container, or (``source=None``) a fresh, empty volume.

    ``named``: ``source`` is the name of a volume (one :meth:`DockerClient.create_volume` made), not a host path.
    """

    target: str
    source: str | None = None
    read_only: bool = False
    named: bool = False


@dataclass
class ContainerSpec:
    """Everything needed to create one container."""

    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    hostname: str | None = None
    network: str | None = None
    network_aliases: list[str] = field(default_factory=list)
    publish_port: int | None = None
    nano_cpus: int | None = None
    mem_limit: int | None = None
    shm_size: int | None = None
    #: Extra /etc/hosts entries (host name -> address), e.g. a host's own name under network mode "none".
    extra_hosts: dict[str, str] = field(default_factory=dict)
    #: Files (container path -> bytes) and empty directories written into the container before it starts.
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    #: GPUs asked of the engine (an NVIDIA device request); -1: all of them; 0: none.
    gpus: int = 0
    #: Named pipes (FIFOs, mode 0644, owned by root) written into the container before it starts (Pipe mode).
    fifos: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageInfo:
    """What ``docker image inspect`` says about an image's runtime config."""

    id: str
    entrypoint: list[str] | None
    cmd: list[str] | None
    user: str
    labels: dict[str, str]
    env: list[str]


@dataclass(frozen=True)
class ContainerState:
    """A container's status, exit code and whether the kernel OOM-killed it."""

    status: str
    exit_code: int
    oom_killed: bool


@dataclass(frozen=True)
class Managed:
    """A container or network the emulator created, found by its labels."""

    kind: Literal["container", "network", "volume"]
    id: str
    name: str
    labels: Mapping[str, str]
    #: Containers: running, exited, created, ...
    state: str = ""
    #: Containers: container port -> the 127.0.0.1 port it is published on.
    ports: Mapping[int, int] = field(default_factory=dict)


class DockerSeam(Protocol):
    """The operations job modules use; :class:`DockerClient` implements them against a real engine."""

    def image_info(self, image: str) -> ImageInfo: ...
    def create(self, spec: ContainerSpec) -> str: ...
    def start(self, container_id: str) -> None: ...
    def wait(self, container_id: str, timeout_s: float | None = None) -> int | None: ...
    def signal(self, container_id: str, sig: int) -> None: ...
    def state(self, container_id: str) -> ContainerState: ...
    def iter_log_lines(self, container_id: str) -> Iterator[str]: ...
    def logs_tail(self, container_id: str, lines: int = 50) -> str: ...
    def host_port(self, container_id: str, port: int) -> int: ...
    def exec_output(self, container_id: str, argv: list[str]) -> bytes | None: ...
    def exec_stdin(self, container_id: str, argv: list[str], chunks: Iterable[bytes]) -> int | None: ...
    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]: ...
    def remove(self, container_id: str) -> None: ...
    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str: ...
    def remove_network(self, network_id: str) -> None: ...
    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]: ...
    def has_gpus(self) -> bool: ...
    def binds_in_place(self) -> bool: ...
    def close(self) -> None: ...


class DockerClient:
    """Thin wrapper around docker-py with just the operations the emulator needs.

    An engine that stops answering, drops a connection or answers 5xx mid-job raises :class:`DockerUnavailable`
    (exit code 3) from every method, never a docker-py or requests error; ``remove`` and ``remove_network``
    raise it too, so that the caller knows the resource is still there (the exit sweep and ``cleanup`` retry).
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        _import_docker()
        config = config or EmulatorConfig()
        self._host = config.docker_host or "the default socket (/var/run/docker.sock)"
        self._pull = config.pull_missing_images
        self._engine_info: dict[str, Any] | None = None
        try:
            if config.docker_host:
                # ssh://: through the system's ssh client (its config, keys and agent, as the docker CLI does).
                ssh = config.docker_host.startswith("ssh://")
                self._client = docker.DockerClient(base_url=config.docker_host, timeout=120, use_ssh_client=ssh)
            else:
                self._client = docker.from_env(timeout=120)
            self._client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            fix = _FIX_SSH if "paramiko" in str(exc) else _FIX_ENGINE
            raise DockerUnavailable(f"no Docker engine answers at {self._host} ({_short(exc)}); {fix}") from None
        self._api = self._client.api

    def _unavailable(self, what: str, exc: BaseException) -> DockerUnavailable:
        return DockerUnavailable(f"the Docker engine at {self._host} failed while {what} ({_short(exc)}); {_FIX_FAULT}")

    @contextlib.contextmanager
    def _engine(self, what: str) -> Iterator[None]:
        """Turn an engine fault (a broken connection, a 5xx) into :class:`DockerUnavailable`."""
        try:
            yield
        except docker.errors.APIError as exc:
            if _engine_fault(exc):
                raise self._unavailable(what, exc) from None
            raise
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(what, exc) from None

    # -- images ---------------------------------------------------------------------------------------
    def image_info(self, image: str) -> ImageInfo:
        """Inspect a local image (pulling it first only when the config allows)."""
        with self._engine(f"inspecting image {image!r}"):
            try:
                attrs: dict[str, Any] = self._api.inspect_image(image)  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                if not self._pull:
                    raise ImageNotFound(
                        f"image {image!r} is not present locally; build it (docker build -t {image} .) or pull it "
                        f"(docker pull {image})"
                    ) from None
                attrs = self._pull_image(image)
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                raise ImageNotFound(f"cannot inspect image {image!r}: {_short(exc)}; check the image name") from None
        cfg = attrs.get("Config") or {}
        return ImageInfo(
            id=attrs["Id"],
            entrypoint=cfg.get("Entrypoint"),
            cmd=cfg.get("Cmd"),
            user=cfg.get("User") or "",
            labels=cfg.get("Labels") or {},
            env=cfg.get("Env") or [],
        )

    def _pull_image(self, image: str) -> dict[str, Any]:
        logger.info("pulling image %s", image)
        try:
            self._client.images.pull(image)
            result: dict[str, Any] = self._api.inspect_image(image)  # type: ignore[no-untyped-call]
            return result
        except docker.errors.APIError as exc:
            raise ImageNotFound(
                f"image {image!r} is not present locally and cannot be pulled ({_short(exc)}); build or pull it first"
            ) from None

    # -- containers -----------------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a container, then write ``spec.files``/``spec.dirs`` into it.

        A container whose files cannot be written is removed again; if the engine fails that removal too, the
        container is registered with the session so that the exit sweep removes it.
        """
        ports: dict[int | str, Any] = {}
        if spec.publish_port is not None:
            ports = {f"{spec.publish_port}/tcp": ("127.0.0.1", None)}
        mounts = [
            docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
            if m.source is not None and not m.named
            # no_copy: an image's own files under /opt/ml must not show through, as on the platform.
            else docker.types.Mount(m.target, m.source, type="volume", read_only=m.read_only, no_copy=True)
            for m in spec.mounts
        ]
        host_config = self._api.create_host_config(
            mounts=mounts,
            port_bindings=ports or None,
            network_mode=spec.network or "bridge",
            nano_cpus=spec.nano_cpus,
            mem_limit=spec.mem_limit,
            shm_size=spec.shm_size,
            extra_hosts=spec.extra_hosts or None,
            device_requests=device_requests(spec.gpus),
        )
        networking_config = None
        if spec.network and spec.network not in {"none", "bridge", "host"}:
            networking_config = self._api.create_networking_config(
                {spec.network: self._api.create_endpoint_config(aliases=spec.network_aliases or None)}  # type: ignore[arg-type]
            )
        with self._engine(f"creating a container from {spec.image!r}"):
            try:
                created = self._api.create_container(
                    image=spec.image,
                    command=spec.command,
                    entrypoint=spec.entrypoint,
                    environment=spec.environment,
                    labels={LABEL_MANAGED: "true", **spec.labels},
                    name=spec.name,
                    hostname=spec.hostname,
                    host_config=host_config,
                    networking_config=networking_config,
                    ports=list(ports and [spec.publish_port]) or None,
                    tty=False,
                    stdin_open=False,
                )
            except docker.errors.ImageNotFound:
                raise ImageNotFound(f"image {spec.image!r} is not present locally; build or pull it first") from None
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                raise EmulatorError(
                    f"Docker refused to create a container from {spec.image!r}: {_short(exc)}"
                ) from None
        container_id: str = created["Id"]
        if spec.files or spec.dirs or spec.fifos:
            try:
                with self._engine("writing the /opt/ml tree into a new container"):
                    try:
                        self._api.put_archive(container_id, "/", _tar_of(spec.files, spec.dirs, spec.fifos))
                    except docker.errors.APIError as exc:
                        if _engine_fault(exc):
                            raise
                        raise EmulatorError(
                            f"could not write the /opt/ml tree into the container: {_short(exc)}"
                        ) from None
            except BaseException:
                self._remove_or_register(container_id)
                raise
        return container_id

    def _remove_or_register(self, container_id: str) -> None:
        try:
            self.remove(container_id)
        except DockerUnavailable:
            from emulator.runtime import session as _session

            _session.register(self, container_id, "container")  # the exit sweep tries again

    def start(self, container_id: str) -> None:
        """Start a created container."""
        with self._engine("starting a container"):
            try:
                self._api.start(container_id)
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                raise ContainerFailed(f"Docker could not start the container: {_short(exc)}") from None

    def wait(self, container_id: str, timeout_s: float | None = None) -> int | None:
        """Wait for the container to exit; its exit code, or None when ``timeout_s`` passed first."""
        with self._engine("waiting for a container to exit"):
            try:
                result = self._api.wait(container_id, timeout=timeout_s)  # type: ignore[arg-type]
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
                # A timeout (ours, or the client's default one) means "still running"; docker-py on a unix socket
                # reports its read timeout as a ConnectionError.
                if isinstance(exc, requests.exceptions.ReadTimeout) or "timed out" in str(exc).lower():
                    return None
                raise
        code: int = result.get("StatusCode", -1)
        return code

    def signal(self, container_id: str, sig: int) -> None:
        """Send a signal to the container's PID 1 (no error when it has already exited)."""
        with self._engine("signalling a container"):
            try:
                self._api.kill(container_id, signal=int(sig))
            except docker.errors.APIError as exc:
                if exc.status_code not in (404, 409):
                    raise

    def state(self, container_id: str) -> ContainerState:
        """The container's current state."""
        with self._engine("inspecting a container"):
            st = self._api.inspect_container(container_id)["State"]
        return ContainerState(
            status=st["Status"], exit_code=st.get("ExitCode", 0), oom_killed=st.get("OOMKilled", False)
        )

    def iter_log_lines(self, container_id: str) -> Iterator[str]:
        """Follow stdout and stderr until the container exits, one decoded line at a time.

        The request is made at once (not on the first ``next()``), so that an engine that cannot follow the
        container fails the caller, not a log thread.

        Raises:
            DockerUnavailable: the engine failed the request, or broke the stream later (when iterated); a
                container that is gone just ends it.
        """
        what = "following a container's output"
        with self._engine(what):
            try:
                stream = self._api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True)
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                return iter(())  # 404/409: removed already
        return self._lines(container_id, stream, what)

    def _lines(self, container_id: str, stream: Iterable[bytes], what: str) -> Iterator[str]:
        pending = b""
        with self._engine(what):
            for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.rstrip(b"\r").decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")
        self._check_stream_end(container_id, what)

    def _check_stream_end(self, container_id: str, what: str) -> None:
        """The engine ends a follow stream when the container exits; one that ends while it runs was cut."""
        for _ in range(5):
            with self._engine(what):
                try:
                    status = self._api.inspect_container(container_id)["State"]["Status"]
                except docker.errors.NotFound:
                    return
            if status not in {"running", "restarting", "paused"}:
                return
            time.sleep(0.05)
        raise self._unavailable(what, ConnectionError("the stream ended while the container still runs"))

    def logs_tail(self, container_id: str, lines: int = 50) -> str:
        """The last ``lines`` lines of the container's output ("" when the engine cannot say)."""
        try:
            raw: bytes = self._api.logs(container_id, stdout=True, stderr=True, tail=lines)
        except _TAIL_ERRORS:
            return ""
        return raw.decode("utf-8", "replace")

    def host_port(self, container_id: str, port: int) -> int:
        """The 127.0.0.1 port that the container's ``port`` is published on."""
        for _ in range(50):
            with self._engine("reading a container's published port"):
                bindings = self._api.port(container_id, port)
            if bindings:
                return int(bindings[0]["HostPort"])
            time.sleep(0.02)
        raise ContainerFailed(f"Docker did not publish port {port} of the container")

    def exec_output(self, container_id: str, argv: list[str]) -> bytes | None:
        """What ``argv`` run inside the running container printed on stdout; None if it could not run or failed.

        Only for looking, never for changing a container: the emulator reads ``/proc`` files with it (which
        ``get_archive`` cannot copy: their size reads as 0).
        """
        with self._engine("running a command in a container"):
            try:
                exec_id = self._api.exec_create(container_id, argv, stdout=True, stderr=False)["Id"]
                out = self._api.exec_start(exec_id)
                code = self._api.exec_inspect(exec_id).get("ExitCode")
            except docker.errors.APIError:
                return None  # not running (any more), or no such program in the image
        return out if code == 0 and isinstance(out, bytes) else None

    def exec_stdin(self, container_id: str, argv: list[str], chunks: Iterable[bytes]) -> int | None:
        """Run ``argv`` as root in the running container with ``chunks`` on its stdin (then end of file); wait for it.

        Returns its exit code; None when it could not run (the container is not running, or stopped meanwhile).
        The bytes travel through the engine's API (an attached exec), so the engine need not see this machine's
        files (Pipe mode feeds its FIFOs this way).
        """
        try:
            exec_id = self._api.exec_create(container_id, argv, stdin=True, stdout=False, stderr=False, user="root")[
                "Id"
            ]
            attached = self._api.exec_start(exec_id, socket=True)
        except _TAIL_ERRORS:
            return None
        raw: Any = getattr(attached, "_sock", attached)
        try:
            raw.settimeout(None)  # the writer waits, unbounded, for the container to open its end
            for chunk in chunks:
                raw.sendall(chunk)
            raw.shutdown(socket.SHUT_WR)
            while raw.recv(65536):  # the engine closes the stream when the command has exited
                pass
        except OSError:
            pass  # the command ended before it read everything (or the container stopped): its exit code says
        finally:
            with contextlib.suppress(OSError):
                raw.close()
        for _ in range(250):  # the stream ends as the command does; its exit code follows within moments
            try:
                info = self._api.exec_inspect(exec_id)
            except _TAIL_ERRORS:
                return None
            if not info.get("Running"):
                code = info.get("ExitCode")
                return code if isinstance(code, int) else None
            time.sleep(0.02)
        return None

    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar stream of ``path`` in the container (works on stopped containers, volumes included)."""
        what = f"downloading {path} from a container"
        with self._engine(what):
            try:
                stream, _ = self._api.get_archive(container_id, path)
            except docker.errors.NotFound:
                return iter(())
        return self._guarded(stream, what)

    def _guarded(self, stream: Iterable[bytes], what: str) -> Iterator[bytes]:
        with self._engine(what):
            yield from stream

    def remove(self, container_id: str) -> None:
        """Remove a container and its anonymous volumes; a container that is gone already is fine.

        Raises:
            DockerUnavailable: the engine failed; the container may still be there.
        """
        with self._engine(f"removing container {container_id[:12]}"):
            try:
                self._api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                if exc.status_code != 409:  # 409: removal already in progress
                    logger.warning("could not remove container %s: %s", container_id[:12], _short(exc))

    # -- networks -------------------------------------------------------------------------------------
    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str:
        """A user-defined bridge network (``internal``: no route out), labelled as ours."""
        with self._engine(f"creating network {name}"):
            created = self._api.create_network(
                name, driver="bridge", internal=internal, labels={LABEL_MANAGED: "true", **labels}
            )
        network_id: str = created["Id"]
        return network_id

    def remove_network(self, network_id: str) -> None:
        """Remove a network; one that is gone already is fine.

        Raises:
            DockerUnavailable: the engine failed; the network may still be there.
        """
        with self._engine(f"removing network {network_id[:12]}"):
            try:
                self._api.remove_network(network_id)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                logger.warning("could not remove network %s: %s", network_id[:12], _short(exc))

    # -- sweeping -------------------------------------------------------------------------------------
    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]:
        """Containers, then networks, that carry ``label`` (``key`` or ``key=value``)."""
        found: list[Managed] = []
        with self._engine("listing the emulator's containers and networks"):
            containers = self._api.containers(all=True, filters={"label": label})
            networks = self._api.networks(filters={"label": label})
        for c in containers:
            ports = {int(p["PrivatePort"]): int(p["PublicPort"]) for p in c.get("Ports") or [] if p.get("PublicPort")}
            name = (c.get("Names") or ["?"])[0].lstrip("/")
            found.append(Managed("container", c["Id"], name, c.get("Labels") or {}, c.get("State", ""), ports))
        for n in networks:
            found.append(Managed("network", n["Id"], n.get("Name", "?"), n.get("Labels") or {}))
        return found

    # -- volumes (how inputs reach a remote engine, see runtime/remote.py) --------------------------------------
    def create_volume(self, name: str, labels: dict[str, str]) -> str:
        """A named local volume, labelled as ours; its name."""
        with self._engine(f"creating volume {name}"):
            created = self._api.create_volume(name, labels={LABEL_MANAGED: "true", **labels})
        volume: str = created["Name"]
        return volume

    def remove_volume(self, name: str) -> None:
        """Remove a volume; one that is gone already is fine.

        Raises:
            DockerUnavailable: the engine failed; the volume may still be there.
        """
        with self._engine(f"removing volume {name}"):
            try:
                self._api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                logger.warning("could not remove volume %s: %s", name, _short(exc))

    def list_volumes(self, label: str = LABEL_MANAGED) -> list[Managed]:
        """Volumes that carry ``label`` (``key`` or ``key=value``)."""
        with self._engine("listing the emulator's volumes"):
            found = self._api.volumes(filters={"label": label}).get("Volumes") or []
        return [Managed("volume", v["Name"], v["Name"], v.get("Labels") or {}) for v in found]

    def named_volume_at(self, container_id: str, target: str) -> tuple[str, str] | None:
        """The named volume mounted at ``target`` in the container and the container's image id; None: no volume."""
        with self._engine("inspecting a container's mounts"):
            attrs = self._api.inspect_container(container_id)
        for m in attrs.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Destination") == target and m.get("Name"):
                return str(m["Name"]), str(attrs["Image"])
        return None

    def put_archive(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None:
        """Unpack a tar stream (sent as it is produced) at ``path`` in a created or stopped container.

        An :class:`EmulatorError` the stream raises (a file it cannot read) is raised as it is, not as the broken
        connection the aborted upload looks like.
        """
        failed: list[EmulatorError] = []

        def guarded() -> Iterator[bytes]:
            try:
                yield from chunks
            except EmulatorError as exc:
                failed.append(exc)
                raise

        with self._engine(f"uploading into {path} of a container"):
            try:
                self._api.put_archive(container_id, path, guarded())
            except docker.errors.APIError as exc:
                if _engine_fault(exc):
                    raise
                raise EmulatorError(f"could not upload into {path} of the container: {_short(exc)}") from None
            except _CONNECTION_ERRORS:
                if failed:
                    raise failed[0] from None
                raise

    def has_gpus(self) -> bool:
        """Whether the engine can give containers NVIDIA GPUs (``docker info``: the nvidia runtime, or GPU devices)."""
        return engine_has_gpus(self._info())

    def binds_in_place(self) -> bool:
        """Whether what a root container writes into a bind mount is a file this process may read and remove.

        True for an engine on this machine (it binds this machine's paths) without user-namespace remapping (its
        root is this machine's root), while this process runs as root: the files a container writes are then
        owned by the same user as everything else this process makes, and a job's outputs can be read from
        its bind mounts instead of through an archive call. Otherwise (a user's own account, a remote engine)
        the outputs stay in volumes and leave through the archive API, so that no root-owned file is left on
        the host.
        """
        if os.geteuid() != 0:
            return False
        options = self._info().get("SecurityOptions") or []
        return not any("name=userns" in str(o) or "name=rootless" in str(o) for o in options)

    def _info(self) -> dict[str, Any]:
        """``docker info``, read once per client (what it says does not change while a process runs)."""
        if self._engine_info is None:
            with self._engine("reading the engine's info"):
                self._engine_info = dict(self._api.info())
        return self._engine_info

    def close(self) -> None:
        """Close the connection pool to the engine."""
        self._client.close()


def _tar_of(files: dict[str, bytes], dirs: list[str], fifos: Iterable[str] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        seen: set[str] = set()

        def add_dir(path: str) -> None:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d and d not in seen:
                    seen.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = int(time.time())
                    tf.addfile(info)

        for d in dirs:
            add_dir(d)
        for path, data in files.items():
            add_dir(path.rsplit("/", 1)[0])
            info = tarfile.TarInfo(path.strip("/"))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tf.addfile(info, io.BytesIO(data))
        for path in fifos:
            add_dir(path.rsplit("/", 1)[0])
            info = tarfile.TarInfo(path.strip("/"))
            info.type = tarfile.FIFOTYPE
            info.mode = 0o644
            info.mtime = int(time.time())
            tf.addfile(info)
    return buf.getvalue()


def device_requests(gpus: int) -> list[DeviceRequest] | None:
    """The device request of ``docker run --gpus N`` (``all`` for -1); None for no GPUs.

    >>> [(r.driver, r.count, r.capabilities) for r in device_requests(2) or []]
    [('nvidia', 2, [['gpu']])]
    >>> device_requests(0) is None
    True
    """
    if not gpus:
        return None
    from docker.types import DeviceRequest

    return [DeviceRequest(driver="nvidia", count=gpus, capabilities=[["gpu"]])]


def engine_has_gpus(info: Mapping[str, Any]) -> bool:
    """Whether ``docker info`` shows NVIDIA GPUs: the ``nvidia`` runtime (NVIDIA Container Toolkit) or CDI devices
    of kind ``nvidia.com/gpu`` (``DiscoveredDevices``, newer engines).

    >>> engine_has_gpus({"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}})
    True
    >>> engine_has_gpus({"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=0"}]})
    True
    >>> engine_has_gpus({"Runtimes": {"runc": {}, "io.containerd.runc.v2": {}}})
    False
    """
    if "nvidia" in (info.get("Runtimes") or {}):
        return True
    devices = info.get("DiscoveredDevices") or []
    return any(str(d.get("ID", "")).startswith("nvidia.com/gpu") for d in devices if isinstance(d, Mapping))


def _engine_fault(exc: docker.errors.APIError) -> bool:
    """A 5xx that says the engine failed, not that the request or the image was wrong."""
    status = exc.status_code or 0
    if status < 500:
        return False
    text = _short(exc).lower()
    # Older engines answer 500 when the image's command cannot run: that is the image's fault (start_failure).
    return not any(s in text for s in ("executable file not found", "no such file or directory", "permission denied"))


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())[:300]
