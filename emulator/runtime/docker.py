"""The Docker seam: the only module that imports ``docker``.

Job modules receive a :class:`DockerClient` (or anything with the same methods, see :class:`DockerSeam`)
so unit tests can pass a fake. Containers are created with the emulator's labels, never with a TTY, and
with ports published on 127.0.0.1 only.
"""

from __future__ import annotations

import io
import logging
import tarfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import docker
import docker.errors
import requests
from docker.types import Mount as _DockerMount

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_MANAGED
from emulator.errors import ContainerFailed, DockerUnavailable, EmulatorError, ImageNotFound

logger = logging.getLogger(__name__)

_FIX_ENGINE = (
    "start Docker ('bash scripts/ensure_docker.sh' as root, or 'sudo systemctl start docker') or set DOCKER_HOST"
)


@dataclass(frozen=True)
class Mount:
    """A mount: a host path bound into the container, or (``source=None``) a fresh, empty volume."""

    target: str
    source: str | None = None
    read_only: bool = False


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

    kind: Literal["container", "network"]
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
    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]: ...
    def remove(self, container_id: str) -> None: ...
    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str: ...
    def remove_network(self, network_id: str) -> None: ...
    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]: ...
    def close(self) -> None: ...


class DockerClient:
    """Thin wrapper around docker-py with just the operations the emulator needs."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        config = config or EmulatorConfig()
        self._host = config.docker_host or "the default socket (/var/run/docker.sock)"
        self._pull = config.pull_missing_images
        try:
            if config.docker_host:
                self._client = docker.DockerClient(base_url=config.docker_host, timeout=120)
            else:
                self._client = docker.from_env(timeout=120)
            self._client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DockerUnavailable(
                f"no Docker engine answers at {self._host} ({_short(exc)}); {_FIX_ENGINE}"
            ) from None
        self._api = self._client.api

    # -- images ---------------------------------------------------------------------------------------
    def image_info(self, image: str) -> ImageInfo:
        """Inspect a local image (pulling it first only when the config allows)."""
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
        """Create (not start) a container, then write ``spec.files``/``spec.dirs`` into it."""
        ports: dict[int | str, Any] = {}
        if spec.publish_port is not None:
            ports = {f"{spec.publish_port}/tcp": ("127.0.0.1", None)}
        mounts = [
            _DockerMount(m.target, m.source, type="bind", read_only=m.read_only)
            if m.source is not None
            # no_copy: an image's own files under /opt/ml must not show through, as on the platform.
            else _DockerMount(m.target, None, type="volume", no_copy=True)
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
        )
        networking_config = None
        if spec.network and spec.network not in {"none", "bridge", "host"}:
            networking_config = self._api.create_networking_config(
                {spec.network: self._api.create_endpoint_config(aliases=spec.network_aliases or None)}  # type: ignore[arg-type]
            )
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
            raise EmulatorError(f"Docker refused to create a container from {spec.image!r}: {_short(exc)}") from None
        container_id: str = created["Id"]
        if spec.files or spec.dirs:
            try:
                self._api.put_archive(container_id, "/", _tar_of(spec.files, spec.dirs))
            except docker.errors.APIError as exc:
                self.remove(container_id)
                raise EmulatorError(f"could not write the /opt/ml tree into the container: {_short(exc)}") from None
            except BaseException:
                self.remove(container_id)
                raise
        return container_id

    def start(self, container_id: str) -> None:
        """Start a created container."""
        try:
            self._api.start(container_id)
        except docker.errors.APIError as exc:
            raise ContainerFailed(f"Docker could not start the container: {_short(exc)}") from None

    def wait(self, container_id: str, timeout_s: float | None = None) -> int | None:
        """Wait for the container to exit; its exit code, or None when ``timeout_s`` passed first."""
        try:
            result = self._api.wait(container_id, timeout=timeout_s)  # type: ignore[arg-type]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            return None
        code: int = result.get("StatusCode", -1)
        return code

    def signal(self, container_id: str, sig: int) -> None:
        """Send a signal to the container's PID 1 (no error when it has already exited)."""
        try:
            self._api.kill(container_id, signal=int(sig))
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):
                raise

    def state(self, container_id: str) -> ContainerState:
        """The container's current state."""
        st = self._api.inspect_container(container_id)["State"]
        return ContainerState(
            status=st["Status"], exit_code=st.get("ExitCode", 0), oom_killed=st.get("OOMKilled", False)
        )

    def iter_log_lines(self, container_id: str) -> Iterator[str]:
        """Follow stdout and stderr until the container exits, one decoded line at a time."""
        pending = b""
        try:
            for chunk in self._api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.rstrip(b"\r").decode("utf-8", "replace")
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass
        if pending:
            yield pending.decode("utf-8", "replace")

    def logs_tail(self, container_id: str, lines: int = 50) -> str:
        """The last ``lines`` lines of the container's output."""
        try:
            raw: bytes = self._api.logs(container_id, stdout=True, stderr=True, tail=lines)
        except docker.errors.APIError:
            return ""
        return raw.decode("utf-8", "replace")

    def host_port(self, container_id: str, port: int) -> int:
        """The 127.0.0.1 port that the container's ``port`` is published on."""
        for _ in range(50):
            bindings = self._api.port(container_id, port)
            if bindings:
                return int(bindings[0]["HostPort"])
            time.sleep(0.02)
        raise ContainerFailed(f"Docker did not publish port {port} of the container")

    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar stream of ``path`` in the container (works on stopped containers, volumes included)."""
        try:
            stream, _ = self._api.get_archive(container_id, path)
        except docker.errors.NotFound:
            return iter(())
        it: Iterator[bytes] = iter(stream)
        return it

    def remove(self, container_id: str) -> None:
        """Remove a container and its anonymous volumes; a container that is gone already is fine."""
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                logger.warning("could not remove container %s: %s", container_id[:12], _short(exc))

    # -- networks -------------------------------------------------------------------------------------
    def create_network(self, name: str, labels: dict[str, str], internal: bool = False) -> str:
        """A user-defined bridge network (``internal``: no route out), labelled as ours."""
        created = self._api.create_network(
            name, driver="bridge", internal=internal, labels={LABEL_MANAGED: "true", **labels}
        )
        network_id: str = created["Id"]
        return network_id

    def remove_network(self, network_id: str) -> None:
        """Remove a network; one that is gone already is fine."""
        try:
            self._api.remove_network(network_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            logger.warning("could not remove network %s: %s", network_id[:12], _short(exc))

    # -- sweeping -------------------------------------------------------------------------------------
    def list_managed(self, label: str = LABEL_MANAGED) -> list[Managed]:
        """Containers, then networks, that carry ``label`` (``key`` or ``key=value``)."""
        found: list[Managed] = []
        for c in self._api.containers(all=True, filters={"label": label}):
            ports = {int(p["PrivatePort"]): int(p["PublicPort"]) for p in c.get("Ports") or [] if p.get("PublicPort")}
            name = (c.get("Names") or ["?"])[0].lstrip("/")
            found.append(Managed("container", c["Id"], name, c.get("Labels") or {}, c.get("State", ""), ports))
        for n in self._api.networks(filters={"label": label}):
            found.append(Managed("network", n["Id"], n.get("Name", "?"), n.get("Labels") or {}))
        return found

    def close(self) -> None:
        """Close the connection pool to the engine."""
        self._client.close()


def _tar_of(files: dict[str, bytes], dirs: list[str]) -> bytes:
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
    return buf.getvalue()


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())[:300]
