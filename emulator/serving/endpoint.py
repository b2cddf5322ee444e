"""Real-time inference: like CreateModel + CreateEndpointConfig + CreateEndpoint for one production variant.

``with Endpoint(image, model_data="model.tar.gz") as ep: ep.invoke(b"1,2", content_type="text/csv")``

The model (a model.tar.gz, a model directory, an s3:// URI or a DescribeTrainingJob result) is extracted
into a temp dir, never next to the user's file, and mounted read-only at /opt/ml/model. The container runs
``serve`` with port 8080 (or SAGEMAKER_BIND_TO_PORT, see :func:`serving_port`) published on a free 127.0.0.1
port, so several endpoints run at once. Readiness is
``GET /ping`` every ``config.ping_interval_s`` (2 s per request) until the startup deadline, and fails at
once if the container exits. Closing sends SIGTERM, SIGKILL after ``config.serving_stop_grace_s``, and
always removes the container.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, Unpack

import requests

from emulator.config import EmulatorConfig
from emulator.constants import (
    BIND_TO_PORT_RANGE,
    INVOCATION_TIMEOUT_S,
    LABEL_ACCEPT_BIND_TO_PORT,
    LABEL_JOB,
    LABEL_KIND,
    MODEL_DIR,
    OPT_ML,
    SAFE_PORT_RANGE,
    SERVING_PORT,
)
from emulator.errors import (
    ContainerFailed,
    DockerUnavailable,
    EmulatorError,
    EndpointNotReady,
    InvalidSpec,
    ValidationError,
)
from emulator.runtime import session as _session
from emulator.runtime.cluster import start_failure
from emulator.runtime.container import Container, LogSink, StopResult, default_log_sink
from emulator.runtime.docker import ContainerSpec, DockerSeam, Mount
from emulator.runtime.inspect import Listener, listening_sockets
from emulator.runtime.names import claim, release
from emulator.runtime.resources import docker_limits, gpu_request, usable_gpus
from emulator.runtime.session import Session
from emulator.serving import readiness
from emulator.serving.invocations import (
    DEFAULT_VARIANT,
    Body,
    InvokeHeaders,
    Invoker,
    not_multi_model,
)
from emulator.serving.models import (
    ModelDefinition,
    ModelSource,
    check_env,
    local_dir,
    model_location,
)
from emulator.serving.readiness import ReadinessWatch
from emulator.spec import validate
from emulator.storage.artifacts import extract_model
from emulator.storage.s3 import S3, is_s3
from emulator.storage.workdirs import make_work_dir

logger = logging.getLogger(__name__)

#: How far back a failure's log tail looks, and the access-log lines of health checks it leaves out.
_FAILURE_SCAN_LINES = 2000
_PINGS_LEFT_OUT = "access-log lines of /ping requests left out)"
_PING_LINE = re.compile(r"\b(GET|HEAD) /ping\b")
#: Container states that hold an endpoint's name (another endpoint of that name is refused).
_LIVE_STATES = frozenset({"created", "running", "restarting", "paused"})
_HINT = "does `serve` listen on 0.0.0.0:{port} and answer GET /ping with 200?"
_TAIL_LINES = 200


# -- the endpoint -------------------------------------------------------------------------------------------
class Endpoint:
    """One serving container behind an InvokeEndpoint-like :meth:`invoke`; a context manager.

    Args:
        image: the image to run as ``docker run IMAGE serve``.
        model_data: a model.tar.gz, a model directory, an s3:// URI, a ModelDataSource dict or a
            DescribeTrainingJob result (its ModelArtifacts.S3ModelArtifacts); None for an empty /opt/ml/model.
        environment: the container's environment (CreateModel's Environment).
        instance_type: an ``ml.*`` type whose CPU and memory become Docker limits; None for no limits.
        network_isolation: EnableNetworkIsolation (see docs/serving-and-transform.md for what it means here).
        name: the endpoint name (a fresh one by default).
        variant_name: returned as InvokedProductionVariant.
        startup_timeout_s: ContainerStartupHealthCheckTimeoutInSeconds (default ``config.startup_timeout_s``).
        invocation_timeout_s: how long :meth:`invoke` waits for an answer (the platform's 60 s by default).
        max_connections: connections kept open to the container (concurrent callers).
        log_sink: called with (endpoint name, line) for every line the container prints.
        fail_fast: fail the start as soon as a sure sign shows it will never pass /ping (the server listens only
            on 127.0.0.1 or on another port, /ping keeps answering an error or answers only after 2 s: see
            :mod:`emulator.serving.readiness`) instead of polling until the startup timeout as the platform does.
            ``EndpointNotReady.cause`` then names the sign. The contract suite sets it.
        unique_name: refuse to start while another endpoint of this name lives (in this process, or a running
            container of any process), as CreateEndpoint does ("already exists"). ``serve`` sets it; the API server
            checks names itself, and its UpdateEndpoint runs the new container beside the old one under one name.
        model_download_timeout_s: ModelDataDownloadTimeoutInSeconds: the model's download and extraction must end
            within it, else the start fails (:func:`model_download_failure`); None: no bound.
        log_source: the name the container's log lines are reported under (default: the endpoint name; an
            instance or a pipeline container of :mod:`emulator.serving.instances` has its own).
    """

    #: Whether this class serves Mode MultiModel (emulator.serving.multimodel.MultiModelEndpoint does).
    multi_model = False

    def __init__(
        self,
        image: str,
        *,
        model_data: ModelSource = None,
        environment: Mapping[str, str] | None = None,
        instance_type: str | None = None,
        network_isolation: bool = False,
        name: str | None = None,
        variant_name: str = DEFAULT_VARIANT,
        startup_timeout_s: float | None = None,
        invocation_timeout_s: float = INVOCATION_TIMEOUT_S,
        max_connections: int = 10,
        hostname: str | None = None,
        session: Session | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
        kind: str = "endpoint",
        unique_name: bool = False,
        fail_fast: bool = False,
        model_download_timeout_s: float | None = None,
        log_source: str | None = None,
    ) -> None:
        self.session, self._owns_session = Session.of(session, config, docker, s3)
        self.config = self.session.config
        self.image = image
        self.name = name or _session.job_name("endpoint")
        self.arn = _session.arn(self.config, "endpoint", self.name)
        self.variant_name = variant_name
        self.environment = dict(environment or {})
        check_env(self.environment, "environment")
        self.instance_type = instance_type
        self._limits = docker_limits(instance_type) if instance_type and instance_type != "local" else (None, None)
        self.network_isolation = network_isolation
        self.startup_timeout_s = self.config.startup_timeout_s if startup_timeout_s is None else startup_timeout_s
        if self.startup_timeout_s <= 0 or invocation_timeout_s <= 0:
            raise InvalidSpec("startup and invocation timeouts must be positive numbers of seconds")
        self.invocation_timeout_s = invocation_timeout_s
        self._model_data = model_data
        self._max_connections = max_connections
        self._hostname = hostname
        #: Labels the container carries beyond the session's (an inference pipeline's container says so).
        self.labels: dict[str, str] = {}
        self._kind = kind
        self._unique_name = unique_name
        self._fail_fast = fail_fast
        self.model_download_timeout_s = model_download_timeout_s
        #: The name its log lines are reported under.
        self.log_source = log_source or self.name
        self._sink = log_sink or (default_log_sink if self.config.stream_logs else _discard)
        self._container: Container | None = None
        self._invoker: Invoker | None = None
        self._work: Path | None = None
        self._exited = threading.Event()  # set once the container exited, or never started
        self._closing = threading.Event()
        self._lock = threading.RLock()
        self._released = False
        self._claimed = False
        self._created = _session.now()
        self._started_at = 0.0
        self._status = "Creating"
        self._failure: str | None = None
        #: Seconds from container start to the first /ping 200.
        self.ready_after_s: float | None = None
        self.exit_code: int | None = None
        self.oom_killed = False
        self.stop_result: StopResult | None = None
        #: The container's serving port: 8080, or SAGEMAKER_BIND_TO_PORT for an image that accepts it.
        self.container_port = SERVING_PORT

    @classmethod
    def from_model(
        cls,
        model: ModelDefinition | Mapping[str, Any] | str | Path,
        *,
        production_variant: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Endpoint:
        """An endpoint for a CreateModel request and (optionally) one ProductionVariant of CreateEndpointConfig.

        The variant's InstanceType, VariantName, ContainerStartupHealthCheckTimeoutInSeconds and
        ModelDataDownloadTimeoutInSeconds (60-3600 each) are used; keyword arguments override them.

        Raises:
            InvalidSpec: the model or the variant does not fit the API.
        """
        m = model if isinstance(model, ModelDefinition) else ModelDefinition.from_request(model)
        if m.multi_model and not cls.multi_model:
            raise InvalidSpec(
                f"model {m.name} is Mode MultiModel: serve it with MultiModelEndpoint.from_model (serving_endpoint "
                "picks it), not Endpoint"
            )
        v = {"VariantName": DEFAULT_VARIANT, "ModelName": m.name, **(production_variant or {})}
        validate("CreateEndpointConfig", {"EndpointConfigName": "local", "ProductionVariants": [v]})
        if int(v.get("InitialInstanceCount", 1)) > 1:
            logger.warning(
                "variant %s asks for %s instances; the emulator runs one container",
                v["VariantName"],
                v["InitialInstanceCount"],
            )
        options: dict[str, Any] = {
            "model_data": m.model_data,
            "environment": m.environment,
            "network_isolation": m.network_isolation,
            "hostname": m.hostname,
            "variant_name": v["VariantName"],
            "instance_type": v.get("InstanceType"),
        }
        if v.get("ContainerStartupHealthCheckTimeoutInSeconds"):
            options["startup_timeout_s"] = float(v["ContainerStartupHealthCheckTimeoutInSeconds"])
        if v.get("ModelDataDownloadTimeoutInSeconds"):
            options["model_download_timeout_s"] = float(v["ModelDataDownloadTimeoutInSeconds"])
        options.update(kwargs)
        return cls(m.image, **options)

    # -- properties ----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the container's serving port (:attr:`container_port`) on this machine."""
        return self.invoker.url

    @property
    def port(self) -> int:
        """The 127.0.0.1 port the container's serving port is published on."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def container_id(self) -> str:
        """The serving container's id."""
        if self._container is None or not self._container.created:
            raise EmulatorError(f"endpoint {self.name} is not started; use it as a context manager")
        return self._container.id

    @property
    def invoker(self) -> Invoker:
        """The HTTP client of this endpoint (``post`` for raw requests, used by batch transform)."""
        if self._invoker is None:
            raise EmulatorError(f"endpoint {self.name} is not started; use it as a context manager")
        return self._invoker

    @property
    def status(self) -> str:
        """Creating, InService, Failed, Deleting or Deleted."""
        return self._status

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> Self:
        """Create and start the container and wait until /ping answers 200 (like CreateEndpoint + waiter).

        Raises:
            EndpointNotReady: the container exited before it was healthy, or the startup timeout passed.
            ContainerFailed: Docker could not start ``serve`` in the image.
            DockerUnavailable: the engine failed; what it could not remove is left to the exit sweep.
        """
        if self._container is not None:
            raise EmulatorError(f"endpoint {self.name} is started already")
        if self._unique_name:
            claim(self._name_kind, self.name, noun="endpoint")
            self._claimed = True
        try:
            self._start()
        except BaseException as exc:
            self._status, self._failure = "Failed", str(exc).split("\n", 1)[0]
            self._closing.set()
            self._release(exc)  # no graceful stop: removal kills a container that never became healthy
            raise
        self._status = "InService"
        return self

    def _start(self) -> None:
        docker = self.session.docker
        info = docker.image_info(self.image)  # a missing image fails before anything is created
        self.container_port, port_env = serving_port(info.labels)
        if self._unique_name:
            self._refuse_running_namesake(docker)
        typed = bool(self.instance_type) and self.instance_type != "local"
        gpus, gpu_env = gpu_request(str(self.instance_type)) if typed else (0, {})
        # A GPU instance type on an engine without GPUs: refused before the model is staged, or run on the CPU.
        if not usable_gpus(gpus, docker.has_gpus, self.config.allow_cpu_for_gpu):
            gpus, gpu_env = 0, {}
        model_dir = self._prepare_model()
        nano_cpus, mem_limit = self._limits
        spec = ContainerSpec(
            image=self.image,
            command=["serve"],
            environment={**gpu_env, **self.environment, **port_env},
            # A fresh volume over /opt/ml hides files an image bakes there, as on the platform.
            mounts=[Mount(OPT_ML), Mount(MODEL_DIR, str(model_dir), read_only=True), *self._extra_mounts()],
            labels={**self.labels, **self._extra_labels()},
            hostname=self._hostname,
            publish_port=self.container_port,
            nano_cpus=nano_cpus,
            mem_limit=mem_limit,
            gpus=gpus,
        )
        if self.network_isolation:
            logger.info(
                "%s: EnableNetworkIsolation: no credentials are passed; the container stays on the bridge "
                "network so that its port %d can be published",
                self.name,
                self.container_port,
            )
        container = Container(
            docker,
            spec,
            kind=self._kind,
            job=self.name,
            source=self.log_source,
            log_sink=self._sink,
            keep=self.config.keep_containers,
        )
        with self._lock:
            if self._closing.is_set():
                raise EmulatorError(f"endpoint {self.name} was stopped before it started")
            self._container = container
        container.create()
        try:
            container.start()
        except DockerUnavailable:
            raise
        except EmulatorError as exc:
            raise start_failure(exc, self.image, ["serve"]) from None
        threading.Thread(target=self._watch_exit, name=f"exit-{self.name}"[:60], daemon=True).start()
        self._started_at = container.started_at or time.monotonic()
        self._invoker = Invoker(
            f"http://127.0.0.1:{self._host_port(container)}",
            variant=self.variant_name,
            timeout_s=self.invocation_timeout_s,
            max_connections=self._max_connections,
            hint=self._log_hint(),
            on_unreachable=self._raise_if_exited,
        )
        self._wait_ready(self._started_at + self.startup_timeout_s)
        self.ready_after_s = time.monotonic() - self._started_at
        logger.info("endpoint %s is InService at %s (%.2fs after start)", self.name, self.url, self.ready_after_s)

    @property
    def _hint(self) -> str:
        return _HINT.format(port=self.container_port)

    @property
    def _name_kind(self) -> str:
        return f"{self._kind}:endpoint"

    def _refuse_running_namesake(self, docker: DockerSeam) -> None:
        refuse_running_namesake(docker, self.name, self._kind)

    def _extra_mounts(self) -> list[Mount]:
        """Mounts beyond /opt/ml and /opt/ml/model (a multi-model endpoint's models dir)."""
        return []

    def _extra_labels(self) -> dict[str, str]:
        """Container labels beyond the session's (a multi-model endpoint's, for ``invoke`` from another process)."""
        return {}

    def _watch_exit(self) -> None:
        container = self._container
        assert container is not None
        container.exited.wait()
        self.exit_code = container.exit_code if self.exit_code is None else self.exit_code
        self.oom_killed = container.oom_killed
        self._exited.set()

    def _prepare_model(self) -> Path:
        self._work = make_work_dir("model", self.config.work_dir)
        if self.model_download_timeout_s is None:
            return self._fetch_model(self._work)
        return bounded_download(
            self._fetch_model, self._work, self.model_download_timeout_s, self.variant_name, self._closing
        )

    def _fetch_model(self, work: Path) -> Path:
        """The model's download (S3) and extraction into ``work``: the model dir to mount."""
        source, prefix = model_location(self._model_data)
        dest = work / "model"
        if source is None:
            dest.mkdir()
            return dest
        s3 = self.session.s3 if is_s3(source) else None
        if prefix and s3 is not None:
            s3.download_prefix(source, dest)
            return dest
        if prefix:
            return local_dir(source)
        return extract_model(source, dest, s3)

    def _host_port(self, container: Container) -> int:
        try:
            return container.host_port(self.container_port)
        except ContainerFailed:
            self._raise_if_exited(wait_s=2.0)
            raise

    def _wait_ready(self, deadline: float) -> None:
        last = "no answer yet"
        watch = ReadinessWatch(self.container_port) if self._fail_fast else None
        while True:
            self._raise_if_exited()
            if self._closing.is_set():
                raise EmulatorError(f"endpoint {self.name} was stopped while it was starting")
            status: int | None = None
            seconds = 0.0
            try:
                status = self.invoker.ping()
                if status == 200:
                    return
                last = f"HTTP {status}"
            except requests.RequestException as exc:
                last = _short(exc)
                if watch is not None and isinstance(exc, requests.ReadTimeout):
                    status, seconds = self._patient_ping()
            now = time.monotonic()
            if watch is not None:
                self._judge(watch, now, status, seconds)
            if now >= deadline:
                raise self._timeout_error(last)
            # Event.wait rather than sleep: an exit wakes the loop at once.
            self._exited.wait(min(self.config.ping_interval_s, deadline - now))

    def _patient_ping(self) -> tuple[int | None, float]:
        """A ``GET /ping`` that waits longer than the platform's 2 s: (status or None, seconds it took)."""
        began = time.monotonic()
        try:
            status: int | None = self.invoker.ping(timeout_s=readiness.PATIENT_PING_S)
        except requests.RequestException:
            status = None
        return status, time.monotonic() - began

    def _judge(self, watch: ReadinessWatch, now: float, status: int | None, seconds: float) -> None:
        """Fail the start at once on a sure sign (``fail_fast``): see emulator.serving.readiness."""
        verdict = watch.ping(now, status, seconds=seconds)
        if verdict is None and self._container is not None and watch.wants_sockets(now):
            verdict = watch.listeners(now, listening_sockets(self._container))
        if verdict is None:
            return
        self._raise_if_exited()  # an exit is the better explanation
        tail = self.failure_tail()
        err = EndpointNotReady(
            f"endpoint {self.name} will not pass the /ping health check: {verdict.problem} "
            f"({now - self._started_at:.1f}s after start); fix: {verdict.fix}",
            image=self.image,
            command=["serve"],
            log_tail=tail,
        )
        err.cause, err.fix = verdict.cause, verdict.fix
        err.add_note(f"last log lines of the container:\n{tail}")
        raise err

    def _raise_if_exited(self, wait_s: float = 0.0) -> None:
        if self._container is not None:
            self._container.raise_engine_error()  # the engine failed while following the container
        if not self._exited.wait(wait_s):
            return
        if self._container is not None:
            self._container.raise_engine_error()
        tail = self.failure_tail()
        last_line = next(
            (ln for ln in reversed(tail.splitlines()) if ln.strip() and not ln.endswith(_PINGS_LEFT_OUT)),
            "(no output)",
        )
        oom = " (OOMKilled: it hit the instance type's memory limit)" if self.oom_killed else ""
        when = "before passing the /ping health check" if self.ready_after_s is None else "while serving"
        err = EndpointNotReady(
            f"serving container of image {self.image!r} exited with status {self.exit_code}{oom} "
            f"{time.monotonic() - self._started_at:.1f}s after start, {when}; Hint: {self._hint} "
            f"Last log line: {last_line.strip()[:300]}",
            image=self.image,
            command=["serve"],
            exit_code=self.exit_code,
            log_tail=tail,
        )
        err.add_note(f"last log lines of the container:\n{tail}")
        raise err

    def _timeout_error(self, last: str) -> EndpointNotReady:
        tail = self.failure_tail()
        err = EndpointNotReady(
            f"endpoint {self.name} at {self.url} did not pass the /ping health check within "
            f"{self.startup_timeout_s:g}s (last answer: {last}); Hint: {self._hint} If the model loads slowly, raise "
            "ContainerStartupHealthCheckTimeoutInSeconds (startup_timeout_s)",
            image=self.image,
            command=["serve"],
            log_tail=tail,
        )
        err.add_note(f"last log lines of the container:\n{tail}")
        return err

    # -- logs ----------------------------------------------------------------------------------------------
    def logs_tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines the container printed."""
        return self._container.logs_tail(lines) if self._container is not None else ""

    def failure_tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines, without the access-log lines of /ping requests.

        A model that fails to load makes the server answer ``GET /ping`` with 503 many times a second; those lines
        would push the load error itself out of the tail (and out of the message's "last log line").
        """
        kept: list[str] = []
        pings = 0
        for line in self.logs_tail(_FAILURE_SCAN_LINES).splitlines():
            if _PING_LINE.search(line):
                pings += 1
            else:
                kept.append(line)
        tail = "\n".join(kept[-lines:])
        return tail + (f"\n({pings} {_PINGS_LEFT_OUT}" if pings else "")

    def _log_hint(self) -> str:
        cid = self._container.id[:12] if self._container is not None and self._container.created else "?"
        return f"See the container's logs (docker logs {cid}) for more information."

    # -- requests ------------------------------------------------------------------------------------------
    def invoke(
        self,
        body: Body,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        timeout_s: float | None = None,
        **headers: Unpack[InvokeHeaders],
    ) -> dict[str, Any]:
        """Like sagemaker-runtime InvokeEndpoint; returns its response shape with ``Body`` as bytes.

        Other InvokeEndpoint headers are keyword arguments: ``target_model``, ``target_variant``,
        ``target_container_hostname``, ``inference_id``, ``enable_explanations``, ``inference_component_name``,
        ``session_id``.

        Raises:
            ValidationError: a request or response body over 6 MiB, or a header over its limit.
            ModelError: the container answered 4xx/5xx (``original_status_code``) or not within
                ``invocation_timeout_s`` (``original_status_code`` 0).
            EndpointNotReady: the container has exited.
        """
        if headers.get("target_model") is not None:
            raise ValidationError(not_multi_model(self.name))
        return self.invoker.invoke(
            body,
            endpoint_name=self.name,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            timeout_s=timeout_s,
            **headers,
        )

    def listeners(self) -> list[Listener] | None:
        """The TCP sockets the container listens on (None: they cannot be read, e.g. an image without ``cat``)."""
        return listening_sockets(self._container) if self._container is not None else None

    def ping(self) -> int:
        """``GET /ping``'s status code."""
        return self.invoker.ping()

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until the container exits (or ``timeout_s`` passes); its exit code, None while it runs.

        Raises:
            DockerUnavailable: the engine failed while the container was followed (nobody knows how it is).
        """
        self._exited.wait(timeout_s)
        if self._container is not None:
            self._container.raise_engine_error()
        return self.exit_code if self._exited.is_set() else None

    def describe(self) -> dict[str, Any]:
        """The endpoint as DescribeEndpoint returns it."""
        d: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "EndpointConfigName": self.name,
            "EndpointStatus": self._status,
            "CreationTime": self._created,
            "LastModifiedTime": _session.now(),
            "ProductionVariants": [
                {
                    "VariantName": self.variant_name,
                    "CurrentWeight": 1.0,
                    "DesiredWeight": 1.0,
                    "CurrentInstanceCount": 1,
                    "DesiredInstanceCount": 1,
                }
            ],
        }
        if self._failure:
            d["FailureReason"] = self._failure[:1024]
        return d

    # -- stopping ------------------------------------------------------------------------------------------
    def stop(self, grace_s: float | None = None) -> StopResult:
        """Stop the container like the platform: SIGTERM, then SIGKILL after ``config.serving_stop_grace_s``.

        Any thread, any time: during :meth:`start` it ends the readiness wait (start raises).
        """
        self._closing.set()
        with self._lock:
            container = self._container
        if container is None or not container.created:
            return StopResult(None, 0.0, False)
        grace = self.config.serving_stop_grace_s if grace_s is None else grace_s
        result = container.stop(grace)
        self.stop_result = container.stop_result or result
        self.exit_code = result.exit_code if result.exit_code is not None else self.exit_code
        return self.stop_result

    def close(self) -> None:
        """Stop the container (if running) and remove it, then clean up the temp model dir; idempotent.

        Raises:
            DockerUnavailable: the engine failed (now, or while the output was followed); the temp model dir is
                removed all the same, and a container the engine could not remove is left to the exit sweep
                (``python -m emulator cleanup`` after a killed process).
        """
        self._closing.set()
        if self._status not in {"Failed", "Deleted"}:
            self._status = "Deleting"
        error: BaseException | None = None
        try:
            if self._container is not None and self.stop_result is None and not self._released:
                self.stop()
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                released_now = self._release(error)
                if released_now and error is None and self._status != "Failed" and self._container is not None:
                    self._container.raise_engine_error()  # the engine cut its output: its log record is incomplete
            except DockerUnavailable as exc:
                error = exc
                raise
            finally:
                if isinstance(error, DockerUnavailable):
                    self._status, self._failure = "Failed", str(error)
                elif self._status != "Failed":
                    self._status = "Deleted"

    def _release(self, pending: BaseException | None = None) -> bool:
        """Close the client, remove the container and the temp model dir, close an own session: every step runs.

        A removal the engine fails is raised unless ``pending`` (the error that ends the endpoint) is given.
        Returns False when it had run already.
        """
        with self._lock:
            if self._released:
                return False
            self._released = True
        if self._claimed:
            release(self._name_kind, self.name)
        failure: DockerUnavailable | None = None
        try:
            if self._invoker is not None:
                self._invoker.close()
            if self._container is not None:
                try:
                    self._container.remove()
                except DockerUnavailable as exc:
                    failure = exc
        finally:
            if self._work is not None:
                shutil.rmtree(self._work, ignore_errors=True)
                self._work = None
            if self._owns_session:
                self.session.close()
        if failure is not None:
            if pending is None:
                raise failure
            logger.warning("endpoint %s: %s (left to the exit sweep)", self.name, failure)
        return True


def refuse_running_namesake(docker: DockerSeam, name: str, kind: str = "endpoint") -> None:
    """Names are unique while an endpoint lives, as on the platform: another process's endpoint counts too.

    Raises:
        InvalidSpec: a live container of ``kind`` serves an endpoint called ``name``.
    """
    for c in docker.list_managed(f"{LABEL_JOB}={name}"):
        if c.kind == "container" and c.labels.get(LABEL_KIND) == kind and c.state in _LIVE_STATES:
            raise InvalidSpec(
                f"endpoint {name!r} already exists (container {c.name} serves it, {c.state}); pick another "
                "name (--name) or stop that endpoint first"
            )


def model_download_failure(variant: str, timeout_s: float) -> str:
    """The emulator's FailureReason for a model that did not arrive within ModelDataDownloadTimeoutInSeconds."""
    return (
        f"The model data for production variant {variant} was not downloaded and extracted within "
        f"ModelDataDownloadTimeoutInSeconds ({timeout_s:g} s); raise ModelDataDownloadTimeoutInSeconds "
        "(60-3600) or serve a smaller model"
    )


def bounded_download(
    fetch: Callable[[Path], Path], work: Path, timeout_s: float, variant: str, closing: threading.Event
) -> Path:
    """``fetch(work)`` in a worker thread, given at most ``timeout_s`` (ModelDataDownloadTimeoutInSeconds).

    A fetch that outlives its bound is abandoned: its thread ends on its own and removes ``work`` when it does.

    Raises:
        EndpointNotReady: the bound passed (:func:`model_download_failure`) or the endpoint was stopped meanwhile.
        Whatever ``fetch`` raised, when it ended in time.
    """
    outcome: list[Path | BaseException] = []
    done = threading.Event()
    abandoned = threading.Event()

    def run() -> None:
        try:
            outcome.append(fetch(work))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            done.set()
            if abandoned.is_set():
                shutil.rmtree(work, ignore_errors=True)

    threading.Thread(target=run, name=f"model-download-{variant}"[:60], daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not done.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
        if closing.is_set() or time.monotonic() >= deadline:
            abandoned.set()
            if done.is_set():  # it ended meanwhile: its thread may have missed the flag
                shutil.rmtree(work, ignore_errors=True)
            if closing.is_set():
                raise EndpointNotReady(f"the endpoint was stopped while the model of variant {variant} downloaded")
            raise EndpointNotReady(model_download_failure(variant, timeout_s))
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def serving_port(labels: Mapping[str, str], rng: random.Random | None = None) -> tuple[int, dict[str, str]]:
    """The container port ``serve`` must listen on, and the variables that say so, for an image's labels.

    An image labelled ``com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true`` gets a port drawn from
    BIND_TO_PORT_RANGE in SAGEMAKER_BIND_TO_PORT, and SAGEMAKER_SAFE_PORT_RANGE; any other image 8080 and neither.

    >>> serving_port({})
    (8080, {})
    >>> port, env = serving_port({LABEL_ACCEPT_BIND_TO_PORT: "true"}, random.Random(1))
    >>> env == {"SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_SAFE_PORT_RANGE": "9100-9199"}, port != 8080
    (True, True)
    """
    if labels.get(LABEL_ACCEPT_BIND_TO_PORT, "").strip().lower() != "true":
        return SERVING_PORT, {}
    port = (rng or random).randint(*BIND_TO_PORT_RANGE)
    low, high = SAFE_PORT_RANGE
    return port, {"SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_SAFE_PORT_RANGE": f"{low}-{high}"}


def _discard(host: str, line: str) -> None:
    """A log sink that drops lines (config.stream_logs is off)."""


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
