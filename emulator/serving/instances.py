"""Endpoints of more than one container: inference pipelines, Direct multi-container models, several instances.

``with ModelInstances(model, instance_count=2) as ep: ep.invoke(b"1,2", content_type="text/csv")``

A production variant runs InitialInstanceCount instances; an instance runs every container of the model (one
for a plain model, 2-15 for CreateModel.Containers), each its own Docker container (an
:class:`~emulator.serving.Endpoint`: labelled, removed on every path, its port on 127.0.0.1, SAGEMAKER_BIND_TO_PORT
for images labelled accept-bind-to-port). The start waits until every container of every instance answers /ping
(one failure fails the whole and removes every container). InvokeEndpoint goes to the instances in turn
(round-robin); within an instance:

* ``Serial`` (an inference pipeline): the request goes to the first container; each 2xx answer's body and
  Content-Type become the next container's request (Accept and CustomAttributes reach every container); the
  last answer is returned. A 4xx/5xx stops the chain with ModelError naming that container
  (``Received client error (400) from container-2 with message "..."``); the invocation timeout covers the chain.
* ``Direct``: TargetContainerHostname names the one container that answers (required, as on the platform).

:func:`serving_endpoint` picks a plain :class:`Endpoint` for one container on one instance (as before) and
:class:`ModelInstances` otherwise.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, Unpack

from emulator.config import EmulatorConfig
from emulator.constants import INVOCATIONS_PATH, LABEL_PIPELINE_CONTAINER, PING_TIMEOUT_S
from emulator.errors import DockerUnavailable, EmulatorError, InvalidSpec, ValidationError
from emulator.runtime import session as _session
from emulator.runtime.container import LogSink, StopResult
from emulator.runtime.docker import DockerSeam
from emulator.runtime.names import claim, release
from emulator.runtime.session import Session
from emulator.serving.endpoint import Endpoint, refuse_running_namesake
from emulator.serving.invocations import DEFAULT_VARIANT, Body, InvokeHeaders, Invoker, RawResponse
from emulator.serving.models import ModelDefinition
from emulator.serving.multimodel import MultiModelEndpoint
from emulator.spec import validate
from emulator.storage.s3 import S3

logger = logging.getLogger(__name__)

SERIAL = "Serial"
DIRECT = "Direct"
#: Seconds between checks of :meth:`ModelInstances.wait`.
_WAIT_POLL_S = 0.2


def container_names(model: ModelDefinition) -> list[str]:
    """How a multi-container model's containers are named in errors and log streams: ContainerHostname, else
    ``container-<n>`` (1-based); ``["primary"]`` for a one-container model, as the platform's messages say."""
    if not model.containers:
        return ["primary"]
    return [c.hostname or f"container-{i + 1}" for i, c in enumerate(model.containers)]


def serving_endpoint(
    model: ModelDefinition | Mapping[str, Any],
    *,
    production_variant: Mapping[str, Any] | None = None,
    scalable: bool = False,
    **kwargs: Any,
) -> Endpoint | ModelInstances:
    """The endpoint for a model and one ProductionVariant: a plain :class:`Endpoint` for one container on one
    instance (unless ``scalable``: the API server scales variants), else :class:`ModelInstances`. Keyword arguments
    go to the Endpoint(s).

    Raises:
        InvalidSpec: the model or the variant does not fit the API.
    """
    m = model if isinstance(model, ModelDefinition) else ModelDefinition.from_request(model)
    count = int((production_variant or {}).get("InitialInstanceCount", 1))
    if m.multi_model:  # a multi-model endpoint: one container
        return MultiModelEndpoint.from_model(m, production_variant=production_variant, **kwargs)
    if not m.containers and count <= 1 and not scalable:
        return Endpoint.from_model(m, production_variant=production_variant, **kwargs)
    return ModelInstances(m, production_variant=production_variant, **kwargs)


class ChainInvoker(Invoker):
    """``POST /invocations`` through the containers of one instance in order: an inference pipeline.

    ``post`` sends the request to the first container, each 2xx answer (body and Content-Type) to the next one,
    and returns the last answer, or the first 4xx/5xx one (its ``source`` names the container). ``get`` (batch
    transform's /execution-parameters) asks the first container; ``ping`` answers 200 only when every one does.
    """

    def __init__(self, members: Sequence[Invoker], *, variant: str, timeout_s: float, hint: str = "") -> None:
        if not members:
            raise InvalidSpec("an inference pipeline needs at least one container")
        super().__init__(members[0].url, variant=variant, timeout_s=timeout_s, max_connections=1, hint=hint)
        self.members = list(members)

    def ping(self, timeout_s: float = PING_TIMEOUT_S) -> int:
        """200 when every container answers 200, else the first other status."""
        for member in self.members:
            status = member.ping(timeout_s)
            if status != 200:
                return status
        return 200

    def get(self, path: str, timeout_s: float = PING_TIMEOUT_S) -> tuple[int, bytes]:
        """``GET <path>`` of the first container (the one that gets the records)."""
        return self.members[0].get(path, timeout_s)

    def post(
        self,
        body: bytes | Iterable[bytes],
        headers: Mapping[str, str],
        *,
        timeout_s: float | None = None,
        max_response_bytes: int | None = None,
        path: str = INVOCATIONS_PATH,
    ) -> RawResponse:
        """The chain's answer: the last container's, or the first that was not 2xx (see the class).

        Raises:
            ModelError: a container did not answer within what is left of the timeout (the chain shares it).
            ValidationError: the last answer is larger than ``max_response_bytes``.
        """
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        data: bytes | Iterable[bytes] = body
        sent = dict(headers)
        for i, member in enumerate(self.members):
            last = i == len(self.members) - 1
            raw = member.post(
                data,
                sent,
                timeout_s=max(deadline - time.monotonic(), 0.001),
                max_response_bytes=max_response_bytes if last else None,
                path=path,
            )
            if last or not 200 <= raw.status < 300:
                return raw
            try:
                data = raw.read()
                content_type = raw.content_type
            finally:
                raw.close()
            sent = {k: v for k, v in sent.items() if k.lower() != "content-type"}
            if content_type:
                sent["Content-Type"] = content_type
        raise AssertionError("unreachable")


class _Instance:
    """One instance: the model's containers (one Endpoint each) and, for a pipeline, the chain through them."""

    def __init__(self, instance_id: str, members: list[Endpoint]) -> None:
        self.id = instance_id
        self.members = members
        self.chain: ChainInvoker | None = None


class ModelInstances:
    """InitialInstanceCount instances of a model of one or several containers, behind one endpoint name.

    Args:
        model: the CreateModel definition (``containers`` for a pipeline or a Direct multi-container model).
        production_variant: the ProductionVariant (InitialInstanceCount, VariantName, InstanceType, the timeouts).
        instance_count: overrides InitialInstanceCount (batch transform runs one instance).
        name, session, config, docker, s3, log_sink, unique_name, kind: as :class:`Endpoint`; ``unique_name`` is
            checked once for the whole endpoint.
        **kwargs: go to every container's :class:`Endpoint` (``fail_fast``, ``max_connections``, ...).
    """

    def __init__(
        self,
        model: ModelDefinition | Mapping[str, Any],
        *,
        production_variant: Mapping[str, Any] | None = None,
        instance_count: int | None = None,
        name: str | None = None,
        session: Session | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
        unique_name: bool = False,
        kind: str = "endpoint",
        **kwargs: Any,
    ) -> None:
        self.model = model if isinstance(model, ModelDefinition) else ModelDefinition.from_request(model)
        v = {"VariantName": DEFAULT_VARIANT, "ModelName": self.model.name, **(production_variant or {})}
        validate("CreateEndpointConfig", {"EndpointConfigName": "local", "ProductionVariants": [v]})
        self.instance_count = int(v.get("InitialInstanceCount", 1)) if instance_count is None else instance_count
        if self.instance_count < 1:
            raise InvalidSpec(f"an endpoint needs at least one instance, not {self.instance_count}")
        self.mode = self.model.execution_mode if self.model.containers else SERIAL
        self.container_names = container_names(self.model)
        self.session, self._owns_session = Session.of(session, config, docker, s3)
        self.config = self.session.config
        self.name = name or _session.job_name("endpoint")
        self.variant_name = str(v["VariantName"])
        self.image = self.model.image
        self._kind = kind
        self._unique_name = unique_name
        self._claimed = False
        self._status = "Creating"
        self._failure: str | None = None
        self._lock = threading.Lock()
        self._scale_lock = threading.Lock()
        self._pending: list[_Instance] = []
        self._turn = itertools.count()
        self._member_options: dict[str, Any] = {
            "production_variant": {**v, "InitialInstanceCount": 1},
            "name": self.name,
            "session": self.session,
            "log_sink": log_sink,
            "kind": kind,
            **kwargs,
        }
        self.instances: list[_Instance] = [self._new_instance() for _ in range(self.instance_count)]
        #: Seconds from the start until the last container answered /ping.
        self.ready_after_s: float | None = None

    def _new_instance(self) -> _Instance:
        """One instance (not started): an Endpoint per container of the model."""
        iid = f"i-{secrets.token_hex(8)}"
        parts = self.model.containers or (self.model,)
        members = []
        for j, (part, cname) in enumerate(zip(parts, self.container_names, strict=True)):
            tail = [cname] if self.model.containers else []
            member = Endpoint.from_model(part, log_source="/".join([self.name, iid, *tail]), **self._member_options)
            if self.model.containers:
                member.labels[LABEL_PIPELINE_CONTAINER] = f"{j + 1}/{len(parts)} {cname}"
            members.append(member)
        return _Instance(iid, members)

    # -- what callers read ---------------------------------------------------------------------------------
    @property
    def endpoints(self) -> list[Endpoint]:
        """Every container's Endpoint, instance by instance."""
        return [m for inst in self.instances for m in inst.members]

    @property
    def status(self) -> str:
        """Creating, InService, Failed, Deleting or Deleted."""
        return self._status

    @property
    def invoker(self) -> Invoker:
        """The first instance's client: its chain for a pipeline (what batch transform posts to)."""
        first = self.instances[0]
        if first.chain is not None:
            return first.chain
        return first.members[0].invoker

    @property
    def url(self) -> str:
        """The first container's URL (``http://127.0.0.1:<port>``)."""
        return self.instances[0].members[0].url

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> Self:
        """Start every container of every instance side by side; return once all answer /ping.

        Raises:
            EndpointNotReady, ContainerFailed, DockerUnavailable: the first container's failure (a note names it);
                every container is removed.
        """
        began = time.monotonic()
        try:
            if self._unique_name:
                claim(f"{self._kind}:endpoint", self.name, noun="endpoint")
                self._claimed = True
                refuse_running_namesake(self.session.docker, self.name, self._kind)
            self._start_instances(self.instances, "every container of the endpoint is removed")
        except BaseException as exc:
            self._status, self._failure = "Failed", str(exc).split("\n", 1)[0]
            self._release()
            raise
        for inst in self.instances:
            self._serve(inst)
        self.ready_after_s = time.monotonic() - began
        self._status = "InService"
        logger.info(
            "endpoint %s is InService: %d instance(s) of %d container(s)",
            self.name,
            self.instance_count,
            len(self.container_names),
        )
        return self

    def _start_instances(self, instances: Sequence[_Instance], outcome: str) -> None:
        labelled = [
            (f"{inst.id}/{cname}" if self.model.containers else inst.id, member)
            for inst in instances
            for member, cname in zip(inst.members, self.container_names, strict=True)
        ]
        errors = start_together(labelled)
        if errors:
            label, first = first_cause(errors, list(errors))  # in the order they failed: the first is the cause
            first.add_note(f"{label} of endpoint {self.name} failed; {outcome}")
            raise first

    def _serve(self, inst: _Instance) -> None:
        """A started instance's clients: each container named in errors, the chain of a pipeline."""
        if self.model.containers:
            for member, cname in zip(inst.members, self.container_names, strict=True):
                member.invoker.source = cname
        if self.mode == SERIAL and len(inst.members) > 1:
            inst.chain = ChainInvoker(
                [m.invoker for m in inst.members],
                variant=self.variant_name,
                timeout_s=inst.members[0].invocation_timeout_s,
                hint=f"See the log streams of endpoint {self.name}'s containers for more information.",
            )

    def scale(self, count: int) -> None:
        """UpdateEndpointWeightsAndCapacities' DesiredInstanceCount: start instances up to ``count`` (the running
        ones serve meanwhile; a new one takes requests once all its containers answer /ping), or take the extra
        ones out of the rotation, then stop and remove them.

        Raises:
            ValidationError: ``count`` is below 1, or the endpoint is not InService.
            EndpointNotReady, ContainerFailed, DockerUnavailable: a new instance did not start; the new instances
                are removed and the running ones serve on.
        """
        if count < 1:
            raise ValidationError(f"DesiredInstanceCount must be 1 or more for endpoint {self.name}, not {count}")
        if self._status != "InService":
            raise ValidationError(f"Cannot scale endpoint {self.name} while it is {self._status}.")
        with self._scale_lock:
            current = len(self.instances)
            if count > current:
                new = [self._new_instance() for _ in range(count - current)]
                with self._lock:
                    self._pending = new  # a stop or close meanwhile reaches them too
                try:
                    self._start_instances(new, "the new instances are removed; the running ones serve on")
                    for inst in new:
                        self._serve(inst)
                    with self._lock:
                        if self._status != "InService":
                            raise EmulatorError(f"endpoint {self.name} was closed while it scaled")
                        self.instances = [*self.instances, *new]
                except BaseException:
                    self._close_instances(new)
                    raise
                finally:
                    with self._lock:
                        self._pending = []
            elif count < current:
                with self._lock:
                    gone, self.instances = self.instances[count:], self.instances[:count]
                failure = self._close_instances(gone)
                if failure is not None:
                    raise failure
            self.instance_count = count
            logger.info("endpoint %s: %d instance(s) now", self.name, count)

    def stop(self, grace_s: float | None = None) -> StopResult:
        """Stop every container (any thread, any time); the last one's StopResult."""
        result = StopResult(None, 0.0, False)
        with self._lock:
            pending = [m for inst in self._pending for m in inst.members]
        for member in [*self.endpoints, *pending]:
            result = member.stop(grace_s)
        return result

    def close(self) -> None:
        """Stop and remove every container; idempotent. Every container is closed before an error is raised.

        Raises:
            DockerUnavailable: the engine failed for some container (what it could not remove is left to the sweep).
        """
        if self._status not in {"Failed", "Deleted"}:
            self._status = "Deleting"
        failure = self._release()
        if self._status != "Failed":
            self._status = "Deleted"
        if failure is not None:
            raise failure

    def _release(self) -> DockerUnavailable | None:
        with self._lock:
            pending = list(self._pending)
        for inst in pending:  # instances a scale-up is starting: their start fails, and scale removes them
            for member in inst.members:
                member.stop(grace_s=0)
        try:
            return self._close_instances(self.instances)
        finally:
            if self._claimed:
                release(f"{self._kind}:endpoint", self.name)
                self._claimed = False
            if self._owns_session:
                self.session.close()

    @staticmethod
    def _close_instances(instances: Sequence[_Instance]) -> DockerUnavailable | None:
        """Close every container of ``instances``; the first engine failure (each is closed all the same)."""
        failure: DockerUnavailable | None = None
        for inst in instances:
            if inst.chain is not None:
                inst.chain.close()
            for member in inst.members:
                try:
                    member.close()
                except DockerUnavailable as exc:
                    failure = failure or exc
        return failure

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until some container exits (or ``timeout_s`` passes): its exit code, None while all run."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            for member in self.endpoints:
                code = member.wait(0)
                if code is not None or member.exit_code is not None:
                    return member.exit_code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(_WAIT_POLL_S)

    def failure_tail(self, lines: int = 50) -> str:
        """The last log lines of each container (those that exited first)."""
        parts = sorted(self.endpoints, key=lambda m: m.exit_code is None)
        return "\n".join(f"[{m.log_source}]\n{m.failure_tail(lines)}" for m in parts)

    # -- requests ------------------------------------------------------------------------------------------
    def _next(self) -> _Instance:
        with self._lock:
            return self.instances[next(self._turn) % len(self.instances)]

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
        """Like sagemaker-runtime InvokeEndpoint, on the next instance (round-robin); see the module for how a
        pipeline and a Direct model answer.

        Raises:
            ValidationError: TargetContainerHostname missing or unknown (Direct), or given to a Serial pipeline;
                as :meth:`Endpoint.invoke` otherwise.
            ModelError: a container answered 4xx/5xx (the message names it) or not in time.
        """
        if self._status != "InService":
            raise EmulatorError(f"endpoint {self.name} is {self._status}, not InService; start it first")
        target = headers.get("target_container_hostname")
        inst = self._next()
        if self.mode == DIRECT:
            if target is None or target not in self.container_names:
                raise ValidationError(
                    f"Endpoint {self.name} is configured for direct invocation: give TargetContainerHostname, one "
                    f"of [{', '.join(self.container_names)}]"
                    + ("" if target is None else f"; {target!r} is not a container of it")
                )
            member = inst.members[self.container_names.index(target)]
            return member.invoke(
                body,
                content_type=content_type,
                accept=accept,
                custom_attributes=custom_attributes,
                timeout_s=timeout_s,
                **headers,
            )
        if target is not None and self.model.containers:
            raise ValidationError(
                f"Endpoint {self.name} is not configured for direct invocation (its model's InferenceExecutionConfig "
                "Mode is Serial); leave TargetContainerHostname out"
            )
        invoker: Invoker = inst.chain if inst.chain is not None else inst.members[0].invoker
        return invoker.invoke(
            body,
            endpoint_name=self.name,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            timeout_s=timeout_s,
            **headers,
        )

    def describe(self) -> dict[str, Any]:
        """The endpoint as DescribeEndpoint returns it (CurrentInstanceCount: the instances running)."""
        d = self.instances[0].members[0].describe()
        d["EndpointStatus"] = self._status
        d.pop("FailureReason", None)
        if self._failure:
            d["FailureReason"] = self._failure[:1024]
        running = self.instance_count if self._status == "InService" else 0
        d["ProductionVariants"] = [
            {
                "VariantName": self.variant_name,
                "CurrentWeight": 1.0,
                "DesiredWeight": 1.0,
                "CurrentInstanceCount": running,
                "DesiredInstanceCount": self.instance_count,
            }
        ]
        return d


def start_together(named: Sequence[tuple[str, Endpoint | ModelInstances]]) -> dict[str, BaseException]:
    """Start each side by side (a thread each; one alone in the caller's thread). A failure ends the others' waits
    (``stop(grace_s=0)``: the endpoint fails as a whole). The errors by name, in the order they happened."""
    errors: dict[str, BaseException] = {}

    def start_one(label: str, endpoint: Endpoint | ModelInstances) -> None:
        try:
            endpoint.start()
        except BaseException as exc:
            errors[label] = exc
            for _, other in named:
                if other is not endpoint:
                    other.stop(grace_s=0)

    if len(named) == 1:
        start_one(*named[0])
        return errors
    threads = [
        threading.Thread(target=start_one, args=item, name=f"start-{item[0]}"[:60], daemon=True) for item in named
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def first_cause(errors: Mapping[str, BaseException], order: Sequence[str]) -> tuple[str, BaseException]:
    """The error that ended the start: a container's own failure before the stops it caused elsewhere."""
    stopped = "was stopped"
    for label in order:
        if label in errors and stopped not in str(errors[label]):
            return label, errors[label]
    label = next(x for x in order if x in errors)
    return label, errors[label]
