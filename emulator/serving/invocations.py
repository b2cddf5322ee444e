"""The HTTP side of an endpoint: ``POST /invocations`` with InvokeEndpoint's limits and error mapping.

:class:`Invoker` talks to one serving container through a published 127.0.0.1 port. It keeps one
``requests.Session`` (connection reuse; safe for concurrent use by batch transform's worker threads) and
maps what the container does to what the platform's client sees:

* a request body over 6 MiB is refused before it is sent (``ValidationError``);
* a 4xx/5xx answer becomes ``ModelError`` with ``OriginalStatusCode``/``OriginalMessage`` and the platform's
  message (``Received client error (400) from primary with message "..."``);
* no answer within the invocation timeout (60 s) becomes ``ModelError`` with ``OriginalStatusCode`` 0;
* a response body over 6 MiB becomes ``ValidationError`` (the platform's behaviour here is unverified).

:func:`invoke_endpoint` does the same against an endpoint another process started (found by its labels).
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, TypedDict, Unpack

import requests
import requests.adapters

from emulator.config import EmulatorConfig
from emulator.constants import (
    INVOCATION_TIMEOUT_S,
    INVOCATIONS_PATH,
    LABEL_JOB,
    LABEL_KIND,
    LABEL_MME_SOURCE,
    LABEL_PIPELINE_CONTAINER,
    MAX_PAYLOAD_BYTES,
    PING_PATH,
    PING_TIMEOUT_S,
    SERVING_PORT,
)
from emulator.errors import EmulatorError, InvalidSpec, ModelError, ValidationError
from emulator.runtime.docker import DockerClient, DockerSeam, Managed
from emulator.spec import operation_model, validate

logger = logging.getLogger(__name__)

#: The platform's message when the container does not answer in time (seen in user reports).
TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency metrics "
    "for each container in Amazon CloudWatch, resolve the issue, and try again."
)
DEFAULT_VARIANT = "AllTraffic"


def not_multi_model(endpoint: str) -> str:
    """The platform's ValidationError message for a TargetModel sent to a single-model endpoint."""
    return f"Endpoint {endpoint} is not a multi-model endpoint and does not support target model header."


USER_AGENT = "sagemaker-emulator"
#: Responses up to this size stay in memory; bigger ones (batch transform) spool to a temp file.
_SPOOL_BYTES = 8 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_CONNECT_TIMEOUT_S = 10.0
_MAX_MESSAGE_CHARS = 4096

Body = bytes | bytearray | memoryview | str | IO[bytes]


class InvokeHeaders(TypedDict, total=False):
    """InvokeEndpoint's other header arguments, as keyword arguments."""

    target_model: str
    target_variant: str
    target_container_hostname: str
    inference_id: str
    enable_explanations: str
    inference_component_name: str
    session_id: str


_HEADER_ARGS = {
    "target_model": "TargetModel",
    "target_variant": "TargetVariant",
    "target_container_hostname": "TargetContainerHostname",
    "inference_id": "InferenceId",
    "enable_explanations": "EnableExplanations",
    "inference_component_name": "InferenceComponentName",
    "session_id": "SessionId",
}


@functools.cache
def output_header_names() -> dict[str, str]:
    """InvokeEndpoint's response members that travel as headers: member -> header name (botocore's model)."""
    return dict(_header_names("output"))


def _header_names(direction: str) -> dict[str, str]:
    """InvokeEndpoint's header-bound members (input or output) -> HTTP header name, from botocore's model."""
    op = operation_model("InvokeEndpoint", "sagemaker-runtime")
    shape = op.input_shape if direction == "input" else op.output_shape
    assert shape is not None  # InvokeEndpoint has both
    return {
        name: str(m.serialization["name"])
        for name, m in shape.members.items()
        if m.serialization.get("location") == "header"
    }


@dataclass
class RawResponse:
    """What the container answered to one ``POST /invocations``: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: IO[bytes]
    size: int
    elapsed_s: float
    #: The container that answered, as the platform's messages name it: primary, or a pipeline container's name.
    source: str = "primary"

    @property
    def content_type(self) -> str | None:
        """The container's Content-Type header, if it sent one."""
        return self.headers.get("Content-Type")

    def read(self) -> bytes:
        """The whole body (rewinds first)."""
        self.body.seek(0)
        return self.body.read()

    def iter_chunks(self, size: int = _READ_CHUNK) -> Iterable[bytes]:
        """The body as chunks, for writing big responses without holding them."""
        self.body.seek(0)
        while chunk := self.body.read(size):
            yield chunk

    def preview(self, limit: int = _MAX_MESSAGE_CHARS) -> str:
        """The start of the body as text, for error messages."""
        self.body.seek(0)
        return self.body.read(limit).decode("utf-8", "replace")

    def close(self) -> None:
        """Release the body (a spooled temp file for big responses)."""
        self.body.close()


def model_error(status: int, original: str, hint: str, source: str = "primary") -> ModelError:
    """A ModelError worded like the platform's: ``Received client error (400) from primary with message "..."``
    (``source``: the container that answered, e.g. an inference pipeline's second container)."""
    kind = "server" if status >= 500 or status == 0 else "client"
    shown = original if len(original) <= _MAX_MESSAGE_CHARS else original[:_MAX_MESSAGE_CHARS] + "..."
    return ModelError(
        f'Received {kind} error ({status}) from {source} with message "{shown}". {hint}',
        original_status_code=status,
        original_message=original,
    )


class Invoker:
    """Sends requests to one serving container and maps its answers like sagemaker-runtime does.

    Args:
        url: ``http://127.0.0.1:<port>`` of the container's port 8080.
        variant: the name returned as ``InvokedProductionVariant``.
        timeout_s: how long ``invoke`` waits for an answer (the platform's 60 s by default).
        max_connections: connections kept open for reuse (batch transform's MaxConcurrentTransforms).
        hint: appended to error messages (where to find the container's logs).
        on_unreachable: called when a connection fails; it may raise a better error (the container exited).
        source: the container's name in error messages (``primary``; an inference pipeline names each container).
    """

    def __init__(
        self,
        url: str,
        *,
        variant: str = DEFAULT_VARIANT,
        timeout_s: float = INVOCATION_TIMEOUT_S,
        max_connections: int = 10,
        hint: str = "",
        on_unreachable: Callable[[], None] | None = None,
        source: str = "primary",
    ) -> None:
        self.url = url.rstrip("/")
        self.source = source
        self.variant = variant
        self.timeout_s = timeout_s
        self.hint = hint or f"See the logs of the container behind {self.url} for more information."
        self._on_unreachable = on_unreachable
        self._session = requests.Session()
        # The container is on 127.0.0.1: no HTTP(S)_PROXY from the environment may route its traffic elsewhere,
        # and no per-request lookup of proxies and .netrc (about a tenth of the client's CPU per request).
        self._session.trust_env = False
        # Only the headers InvokeEndpoint forwards (plus a User-Agent): no requests defaults such as Accept: */*.
        self._session.headers.clear()
        self._session.headers["User-Agent"] = USER_AGENT
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(1, max_connections), max_retries=0)
        self._session.mount("http://", adapter)

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # -- plain GETs ---------------------------------------------------------------------------------------
    def ping(self, timeout_s: float = PING_TIMEOUT_S) -> int:
        """``GET /ping``; the status code (raises ``requests.RequestException`` when there is no answer)."""
        with self._session.get(self.url + PING_PATH, timeout=timeout_s, allow_redirects=False) as r:
            return r.status_code

    def get(self, path: str, timeout_s: float = PING_TIMEOUT_S) -> tuple[int, bytes]:
        """``GET <path>``: (status, body); raises ``requests.RequestException`` when there is no answer."""
        with self._session.get(self.url + path, timeout=timeout_s, allow_redirects=False) as r:
            return r.status_code, r.content

    def call(
        self, method: str, path: str, *, json_body: Any = None, timeout_s: float | None = None
    ) -> tuple[int, bytes]:
        """One request with an optional JSON body (a multi-model container's /models API): (status, body).

        Raises:
            requests.RequestException: no answer (the connection failed or ``timeout_s`` passed).
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._session.request(
            method, self.url + path, json=json_body, timeout=(min(timeout, _CONNECT_TIMEOUT_S), timeout)
        ) as r:
            return r.status_code, r.content

    # -- POST /invocations --------------------------------------------------------------------------------
    def post(
        self,
        body: bytes | Iterable[bytes],
        headers: Mapping[str, str],
        *,
        timeout_s: float | None = None,
        max_response_bytes: int | None = None,
        path: str = INVOCATIONS_PATH,
    ) -> RawResponse:
        """Send one ``POST /invocations`` (or ``path``) and read the whole answer, whatever its status.

        An iterable body is sent with ``Transfer-Encoding: chunked``.

        Raises:
            ModelError: no answer in time, or the connection failed (``original_status_code`` 0), or the body
                could not be read.
            ValidationError: the response body is larger than ``max_response_bytes``.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        start = time.monotonic()
        try:
            r = self._session.post(
                self.url + path,
                data=body,
                headers=dict(headers),
                stream=True,
                timeout=(min(timeout, _CONNECT_TIMEOUT_S), timeout),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise self._timeout_error(timeout) from None
        except requests.ConnectionError as exc:
            raise self._unreachable(exc) from None
        with r:
            spool, size = self._read_body(r, start, timeout, max_response_bytes)
        return RawResponse(r.status_code, r.headers, spool, size, time.monotonic() - start, self.source)

    def _read_body(
        self, r: requests.Response, start: float, timeout: float, limit: int | None
    ) -> tuple[IO[bytes], int]:
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - returned
        size = 0
        try:
            for chunk in r.iter_content(_READ_CHUNK):
                size += len(chunk)
                if limit is not None and size > limit:
                    raise ValidationError(
                        f"the container's response body is over {limit} bytes, InvokeEndpoint's limit of 6 MiB; "
                        "return a smaller response (or use batch transform for big outputs)"
                    )
                spool.write(chunk)
                if time.monotonic() - start > timeout:
                    raise self._timeout_error(timeout)
        except requests.RequestException:
            spool.close()
            if time.monotonic() - start >= timeout:
                raise self._timeout_error(timeout) from None
            raise ModelError(
                f"Received server error ({r.status_code}) from {self.source} and could not load the entire "
                f"response body. {self.hint}",
                original_status_code=r.status_code,
                original_message="",
            ) from None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool, size

    def _timeout_error(self, timeout: float) -> ModelError:
        logger.debug("no answer from %s within %ss", self.url, timeout)
        message = TIMEOUT_MESSAGE.replace("container primary", f"container {self.source}")
        return model_error(0, message, f"The emulator waited {timeout:g}s. {self.hint}", self.source)

    def _unreachable(self, exc: requests.ConnectionError) -> ModelError:
        if self._on_unreachable is not None:
            self._on_unreachable()  # raises ContainerFailed when the container has exited
        reason = " ".join(str(exc).split())[:300]
        return ModelError(
            f"could not reach the container at {self.url} ({reason}); is `serve` still running and "
            f"listening on 0.0.0.0:8080? {self.hint}",
            original_status_code=0,
            original_message=reason,
        )

    # -- InvokeEndpoint -----------------------------------------------------------------------------------
    def invoke(
        self,
        body: Body,
        *,
        endpoint_name: str = "local",
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        timeout_s: float | None = None,
        path: str = INVOCATIONS_PATH,
        **headers: Unpack[InvokeHeaders],
    ) -> dict[str, Any]:
        """Like sagemaker-runtime InvokeEndpoint; returns its response shape with ``Body`` as bytes.

        ``path`` is where the request goes in the container (a multi-model one: ``/models/<name>/invoke``).

        Raises:
            ValidationError: the request is invalid (a body over 6 MiB, a header over its limit) or the
                response body is over 6 MiB.
            ModelError: the container answered 4xx/5xx, or not within the timeout.
        """
        data = _as_bytes(body)
        params: dict[str, Any] = {
            "EndpointName": endpoint_name,
            "Body": b"",
            "ContentType": content_type,
            "Accept": accept,
            "CustomAttributes": custom_attributes,
        }
        unknown = set(headers) - set(_HEADER_ARGS)
        if unknown:
            raise ValidationError(f"unknown InvokeEndpoint argument(s) {sorted(unknown)}; use {sorted(_HEADER_ARGS)}")
        params.update({_HEADER_ARGS[k]: v for k, v in headers.items()})
        headers_out = _request_headers(params)
        raw = self.post(data, headers_out, timeout_s=timeout_s, max_response_bytes=MAX_PAYLOAD_BYTES, path=path)
        try:
            if not 200 <= raw.status < 300:
                raise model_error(raw.status, raw.preview(MAX_PAYLOAD_BYTES), self.hint, raw.source)
            return self._response(raw)
        finally:
            raw.close()

    def _response(self, raw: RawResponse) -> dict[str, Any]:
        out: dict[str, Any] = {"Body": raw.read()}
        for member, header in _header_names("output").items():
            value = raw.headers.get(header)
            if value is not None:
                out[member] = value
        out["InvokedProductionVariant"] = self.variant
        return out


# -- for the CLI: a running endpoint, by name or URL -----------------------------------------------------
def find_endpoint_url(name: str, docker: DockerSeam) -> str:
    """The URL of a running endpoint container started (by any process) under ``name``.

    Raises:
        EmulatorError: no running endpoint of that name.
    """
    return find_endpoint(name, docker)[1]


def find_endpoint(name: str, docker: DockerSeam) -> tuple[Managed, str]:
    """The running endpoint container started (by any process) under ``name``, and its URL.

    Raises:
        EmulatorError: no running endpoint of that name.
    """
    for c in docker.list_managed(f"{LABEL_JOB}={name}"):
        if c.kind == "container" and c.labels.get(LABEL_KIND) == "endpoint" and c.state == "running":
            if LABEL_PIPELINE_CONTAINER in c.labels:
                raise EmulatorError(
                    f"endpoint {name!r} is an inference pipeline; another process cannot run its chain of "
                    "containers: invoke it with --model-spec, through the API server, or from the process that "
                    "serves it"
                )
            # 8080, or the one port published for an image that accepts SAGEMAKER_BIND_TO_PORT
            port = c.ports.get(SERVING_PORT) or next(iter(c.ports.values()), None)
            if port:
                return c, f"http://127.0.0.1:{port}"
    raise EmulatorError(
        f"no running endpoint named {name!r}; start one with 'sagemaker-emulator serve --name {name} "
        "...' or pass its URL"
    )


def invoke_endpoint(
    endpoint: str,
    body: Body,
    *,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    timeout_s: float = INVOCATION_TIMEOUT_S,
    docker: DockerClient | None = None,
    config: EmulatorConfig | None = None,
    **headers: Unpack[InvokeHeaders],
) -> dict[str, Any]:
    """Like sagemaker-runtime InvokeEndpoint against a running endpoint: a name, or an ``http://127.0.0.1:PORT`` URL.

    Raises:
        ValidationError, ModelError: as :meth:`Endpoint.invoke`.
        EmulatorError: no running endpoint of that name.
    """
    container = None
    if endpoint.startswith(("http://", "https://")):
        url, name = endpoint, "local"
        if headers.get("target_model") is not None:
            raise ValidationError(
                "TargetModel needs the multi-model endpoint's name, not its URL (the emulator stages the model for "
                "the container it finds by name); pass the name"
            )
    else:
        container, url = find_endpoint(endpoint, docker or DockerClient(config))
        name = endpoint
    invoker = client_of(url, name, timeout_s)
    try:
        if container is not None and headers.get("target_model") is not None:
            if LABEL_MME_SOURCE in container.labels:
                raise EmulatorError(
                    f"{name} is a multi-model endpoint: call emulator.serving.invoke_endpoint, which loads TargetModel"
                )
            raise ValidationError(not_multi_model(name))
        return invoker.invoke(
            body,
            endpoint_name=name,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            **headers,
        )
    finally:
        invoker.close()


def client_of(url: str, name: str, timeout_s: float) -> Invoker:
    """The one-request client of a running endpoint another process serves (``invoke NAME``)."""
    hint = f"See the logs of endpoint {name}'s container (docker logs) for more information."
    return Invoker(url, timeout_s=timeout_s, max_connections=1, hint=hint)


def _as_bytes(body: Body) -> bytes:
    if isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
    elif callable(getattr(body, "read", None)):
        data = body.read(MAX_PAYLOAD_BYTES + 1)  # a file: never read more than one byte past the limit
        if not isinstance(data, bytes | bytearray):
            raise ValidationError(f"the body file returned {type(data).__name__}, not bytes; open it in binary mode")
    else:
        raise ValidationError(f"the body is {type(body).__name__}; pass bytes, a str or a binary file object")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValidationError(
            f"request body is {len(data)}{'+' if hasattr(body, 'read') else ''} bytes, over InvokeEndpoint's limit "
            f"of {MAX_PAYLOAD_BYTES} bytes (6 MiB); send less per request, or use batch transform"
        )
    return data


def _request_headers(params: Mapping[str, Any]) -> dict[str, str]:
    given = {k: v for k, v in params.items() if v is not None}
    try:
        validate("InvokeEndpoint", given, service="sagemaker-runtime")
    except InvalidSpec as exc:
        raise ValidationError(f"{exc}; fix the argument") from None
    names = _header_names("input")
    headers = {names[k]: str(v) for k, v in given.items() if k in names}
    for name, value in headers.items():
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValidationError(
                f"header {name} {value!r} holds a control character (CR, LF, tab, ...), which no HTTP header may "
                "carry; remove it"
            )
        if not value.isascii():
            raise ValidationError(
                f"header {name} {value!r} is not ASCII, which InvokeEndpoint requires; "
                "percent-encode or drop the non-ASCII characters"
            )
    return headers
