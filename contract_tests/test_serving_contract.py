"""Serving checks s19-s28 and s41-s44: ``docker run IMAGE serve`` with the trained model, run by the Endpoint.

All checks share one serving container (``sagemaker_endpoint``; /opt/ml/model read-only, extracted from the
model.tar.gz that t01 trained); only s28 (SIGTERM) and s42 (extra files in the model directory) start their own.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

from contract_tests import _http
from contract_tests._report import blocked, check, http_request, skip, violation, warn
from contract_tests._runs import EndpointHandle, Harness, fingerprint, require_endpoint
from contract_tests.config import ContractConfig, Request
from emulator.constants import (
    MAX_PAYLOAD_BYTES,
    MODEL_DIR,
    PING_PATH,
    PING_TIMEOUT_S,
    SERVING_PORT,
    SERVING_STOP_GRACE_S,
)

_CONNECT_BOUND_S = 0.25
_PING_BOUND_S = PING_TIMEOUT_S
_MIB = MAX_PAYLOAD_BYTES // 2**20


def _headers(req: Request, *, accept: bool = True) -> dict[str, str]:
    out = {"Content-Type": req.content_type}
    if accept and req.accept:
        out["Accept"] = req.accept
    return out


def _valid(config: ContractConfig) -> tuple[Request, bytes]:
    req = config.serving.requests[0]
    return req, config.request_body(req)


# -- s19, s20 -------------------------------------------------------------------------------------------------
@check("s19")
def test_s19_listens_on_all_interfaces_8080(sagemaker_endpoint: EndpointHandle) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s19")
    times = []
    for _ in range(5):
        start = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", ep.port), timeout=_PING_BOUND_S):
                times.append(time.monotonic() - start)
        except OSError as exc:
            violation(
                "s19",
                f"a TCP connection to port {SERVING_PORT} failed",
                sent=f"TCP connect to 127.0.0.1:{ep.port} (the container's {SERVING_PORT})",
                expected="the connection is accepted",
                got=str(exc),
                logs=sagemaker_endpoint.log_text(),
            )
    if max(times) > _CONNECT_BOUND_S:
        violation(
            "s19",
            f"accepting a connection took {max(times) * 1000:.0f} ms",
            sent=f"5 TCP connects to 127.0.0.1:{ep.port} (the container's {SERVING_PORT})",
            expected=f"each accepted within {_CONNECT_BOUND_S * 1000:.0f} ms",
            got=", ".join(f"{t * 1000:.0f} ms" for t in times),
            logs=sagemaker_endpoint.log_text(),
            fix="keep the accept loop free (run more workers or an async server; no blocking work in it)",
        )
    request = f"GET {PING_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", ep.port), timeout=_PING_BOUND_S) as s:
            s.sendall(request)
            first = s.recv(64)
    except OSError as exc:
        first = f"<{exc}>".encode()
    if not first.startswith(b"HTTP/"):
        violation(
            "s19",
            "the connection was accepted but closed without an HTTP answer",
            sent=f"GET {PING_PATH} over a raw TCP connection to 127.0.0.1:{ep.port}",
            expected=f"an HTTP status line from the server on 0.0.0.0:{SERVING_PORT}",
            got=repr(first[:64]),
            logs=sagemaker_endpoint.log_text(),
        )


@check("s20")
def test_s20_ping_healthy(sagemaker_endpoint: EndpointHandle) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s20")
    seen = []
    for _ in range(5):
        start = time.monotonic()
        try:
            status = ep.invoker.ping(timeout_s=_PING_BOUND_S)
        except Exception as exc:
            violation(
                "s20",
                f"GET {PING_PATH} did not answer within {_PING_BOUND_S:g} s",
                sent=http_request("GET", PING_PATH),
                expected=f"HTTP 200 within {_PING_BOUND_S:g} s",
                got=f"{type(exc).__name__}: {exc}",
                logs=sagemaker_endpoint.log_text(),
            )
        took = time.monotonic() - start
        seen.append(f"{status} in {took * 1000:.0f} ms")
        if status != 200:
            violation(
                "s20",
                f"GET {PING_PATH} answered {status} after the endpoint was healthy",
                sent=http_request("GET", PING_PATH),
                expected="HTTP 200 every time (consistently healthy)",
                got="; ".join(seen),
                logs=sagemaker_endpoint.log_text(),
            )


# -- s21, s22 -------------------------------------------------------------------------------------------------
@check("s21")
def test_s21_invocations_answer(sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s21")
    for i, req in enumerate(contract_config.serving.requests):
        body = contract_config.request_body(req)
        answer = _http.post(ep, body, _headers(req))
        where = f"sample request serving.requests[{i}]"
        if not answer.ok:
            violation(
                "s21",
                f"{where} did not get a 2xx answer",
                sent=answer.sent,
                expected=f"HTTP 2xx within {ep.invocation_timeout_s:g} s",
                got=answer.describe(),
                logs=sagemaker_endpoint.log_text(),
            )
        if len(answer.body) > MAX_PAYLOAD_BYTES:
            violation(
                "s21",
                f"{where}: the answer is over {_MIB} MiB, which InvokeEndpoint refuses",
                sent=answer.sent,
                expected=f"at most {MAX_PAYLOAD_BYTES} bytes",
                got=answer.describe(),
                fix="return smaller answers (or use batch transform for big outputs)",
            )
        exp = req.expect
        if exp.content_type and _http.media_type(answer.content_type) != _http.media_type(exp.content_type):
            violation(
                "s21",
                f"{where}: the answer has the wrong Content-Type",
                sent=answer.sent,
                expected=f"Content-Type {exp.content_type}",
                got=answer.describe(),
                fix=f"set the response Content-Type to {exp.content_type}",
            )
        out = _http.lines(answer.body)
        want = len(_http.lines(body)) if exp.lines == "rows" else exp.lines
        if want is not None and len(out) != want:
            violation(
                "s21",
                f"{where}: {len(out)} output line(s) for {want} expected",
                sent=answer.sent,
                expected=f"{want} non-empty line(s)" + (" (one per input row)" if exp.lines == "rows" else ""),
                got=answer.describe(),
                fix="answer each input record with one output line, in order",
            )
        if exp.columns is not None:
            bad = [(n, ln) for n, ln in enumerate(out) if len(ln.split(",")) != exp.columns]
            if bad:
                n, ln = bad[0]
                violation(
                    "s21",
                    f"{where}: output line {n + 1} has {len(ln.split(','))} field(s), not {exp.columns}",
                    sent=answer.sent,
                    expected=f"{exp.columns} comma-separated fields per line",
                    got=f"line {n + 1}: {ln[:200]!r}",
                )


@check("s22")
def test_s22_6mib_payload_accepted(sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s22")
    req, small = _valid(contract_config)
    rows = _http.lines(small)
    body = _http.payload_of_size(rows)
    answer = _http.post(ep, body, _headers(req))
    what = f"a body of exactly {MAX_PAYLOAD_BYTES} bytes ({len(body) // max(1, len(small))}x the sample rows)"
    if answer.failure is not None or answer.status == 413 or (answer.status or 0) >= 500:
        violation(
            "s22",
            f"{what} was refused or broke the server",
            sent=answer.sent,
            expected=f"the server reads the whole {_MIB} MiB body (2xx, or a 4xx from the model about the content)",
            got=answer.describe(),
            logs=sagemaker_endpoint.log_text(),
            fix=None if answer.status == 413 or answer.failure else f"handle a {_MIB} MiB body without erroring",
        )
    if not answer.ok:
        warn(
            "s22",
            f"the {_MIB} MiB body got HTTP {answer.status} ({answer.body[:200]!r}): the server accepted its size, "
            "the model rejected the content; fine for this check",
        )
    elif len(answer.body) > MAX_PAYLOAD_BYTES:
        warn(
            "s22",
            f"the answer to a {_MIB} MiB request is {len(answer.body)} bytes, over InvokeEndpoint's {_MIB} MiB "
            "response limit: clients sending this much per request would get an error from the platform",
        )


# -- s23-s25 --------------------------------------------------------------------------------------------------
@check("s23")
def test_s23_malformed_input_is_4xx(sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s23")
    bad = contract_config.serving.malformed_request
    assert bad is not None  # the config loader requires it when serving is claimed
    answer = _http.post(ep, contract_config.request_body(bad), _headers(bad))
    if answer.failure is not None or answer.status is None or answer.status < 400:
        violation(
            "s23",
            "malformed input did not get an HTTP error answer",
            sent=answer.sent,
            expected="HTTP 4xx (e.g. 400 with a short message), and the server keeps serving",
            got=answer.describe(),
            logs=sagemaker_endpoint.log_text(),
        )
    if answer.status >= 500:
        warn(
            "s23",
            f"malformed input got HTTP {answer.status}, a server error; answer 4xx (e.g. 400) so clients see a "
            f"client error. Sent: {answer.sent}; got: {answer.describe()}",
        )
    req, body = _valid(contract_config)
    after = _http.post(ep, body, _headers(req))
    if not after.ok:
        violation(
            "s23",
            "after the malformed request, a valid request failed",
            sent=f"first {answer.sent}; then {after.sent}",
            expected="the valid request gets 2xx (the server survived the bad one)",
            got=f"malformed: {answer.describe()}; valid: {after.describe()}",
            logs=sagemaker_endpoint.log_text(),
        )


@check("s24")
def test_s24_unknown_headers_ignored(sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s24")
    req, body = _valid(contract_config)
    headers = {
        **_headers(req),
        "X-Amzn-SageMaker-Custom-Attributes": "contract-suite=1,trace=abc",
        "X-Amzn-SageMaker-Inference-Id": str(uuid.uuid4()),
        "X-Amzn-SageMaker-Target-Variant": "AllTraffic",
        "X-Forwarded-For": "203.0.113.7",
        "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793",
        "X-Contract-Suite-Unknown-Header": "ignore me",
    }
    answer = _http.post(ep, body, headers)
    if not answer.ok:
        baseline = _http.post(ep, body, _headers(req))
        violation(
            "s24",
            "a valid request with extra headers did not get a 2xx answer",
            sent=answer.sent,
            expected="the same 2xx answer as without the extra headers",
            got=f"with them: {answer.describe()}; without them: {baseline.describe()}",
            logs=sagemaker_endpoint.log_text(),
        )


@check("s25")
def test_s25_missing_accept_handled(sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s25")
    req, body = _valid(contract_config)
    for label, headers in (
        ("no Accept header", _headers(req, accept=False)),
        ("Accept: */*", {**_headers(req, accept=False), "Accept": "*/*"}),
    ):
        answer = _http.post(ep, body, headers)
        if not answer.ok:
            violation(
                "s25",
                f"a valid request with {label} did not get a 2xx answer",
                sent=answer.sent,
                expected="HTTP 2xx in the default content type",
                got=answer.describe(),
                logs=sagemaker_endpoint.log_text(),
            )


# -- s26-s28 --------------------------------------------------------------------------------------------------
@check("s26")
def test_s26_model_dir_read_only(
    sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig, contract_harness: Harness
) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s26")
    req, body = _valid(contract_config)
    answer = _http.post(ep, body, _headers(req))
    log = sagemaker_endpoint.log_text()
    if not answer.ok and "Read-only file system" in log:
        violation(
            "s26",
            f"the server failed writing into the read-only {MODEL_DIR}",
            sent=answer.sent,
            expected=f"HTTP 2xx with {MODEL_DIR} mounted read-only",
            got=answer.describe(),
            logs=log,
        )
    served = contract_harness.served_model_dir
    before = contract_harness.model_fingerprints.get(served) if served is not None else None
    if served is not None and before is not None:
        after = fingerprint(served)
        if after != before:
            changed = sorted(set(before.items()) ^ set(after.items()))
            violation(
                "s26",
                "the model directory changed while it was served",
                sent="docker run IMAGE serve",
                expected=f"{MODEL_DIR} unchanged",
                got=f"changed entries: {changed[:10]}",
                logs=log,
            )


@check("s27")
def test_s27_model_from_tarball_offline(sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s27")
    req, body = _valid(contract_config)
    answer = _http.post(ep, body, _headers(req))
    if not answer.ok:
        violation(
            "s27",
            "the server, started from the extracted model.tar.gz, did not answer a valid request",
            sent=f"{answer.sent}; model.tar.gz extracted into {MODEL_DIR} before start, "
            f"network isolation {'on' if ep.network_isolation else 'off'}, no AWS credentials",
            expected=f"HTTP 2xx using the model in {MODEL_DIR}",
            got=answer.describe(),
            logs=sagemaker_endpoint.log_text(),
        )


@check("s28")
def test_s28_sigterm_exits_in_time(
    contract_harness: Harness, serving_model_dir: Path | None, shared_endpoint: EndpointHandle
) -> None:
    grace = contract_harness.options.serving_stop_timeout_s
    require_endpoint(shared_endpoint, "s28")  # blocked by whatever keeps the image from serving
    model_dir = serving_model_dir
    assert model_dir is not None
    handle = contract_harness.start_endpoint(
        "serve-stop", model_dir, network_isolation=contract_harness.config.capabilities.network_isolation
    )
    ep = require_endpoint(handle, "s28")
    try:
        result = ep.stop()
    finally:
        ep.close()
    if result.killed or result.seconds > grace:
        violation(
            "s28",
            f"`serve` was still running {grace:g} s after SIGTERM and had to be killed",
            sent="docker stop (SIGTERM) to a healthy serving container",
            expected=f"the container exits within {grace:g} s (the platform sends SIGKILL at "
            f"{SERVING_STOP_GRACE_S:g} s)",
            got=f"killed after {result.seconds:.1f} s (exit status {result.exit_code})",
            logs=handle.log_text(),
        )


# -- s43, s44: what serving needs (judged by the shared container's start) ------------------------------------
@check("s43")
def test_s43_serving_needs_no_input_dir(sagemaker_endpoint: EndpointHandle) -> None:
    # The emulator, like hosting, gives the serving container a fresh /opt/ml with only the model mounted: if the
    # shared container serves, `serve` did not need /opt/ml/input; if it did, the root cause names s43.
    require_endpoint(sagemaker_endpoint, "s43")


@check("s44")
def test_s44_serving_loads_what_training_wrote(sagemaker_endpoint: EndpointHandle) -> None:
    # The shared container serves the model.tar.gz the suite's training job wrote: if `serve` looks for other
    # files, it cannot start, and the root cause (the missing /opt/ml/model file) names s44.
    require_endpoint(sagemaker_endpoint, "s44")


# -- s41, s42 (the suite's own items, beyond the contract reference's section 9) ------------------------------
#: A Content-Type no image parses (s41).
_UNSUPPORTED_TYPE = "application/x-contract-unsupported"
#: Types clients send by mistake; s41 also sends the first one the image does not accept.
_COMMON_TYPES = ("application/json", "text/csv", "text/plain", "application/x-npy", "application/octet-stream")
_UNSUPPORTED_MEDIA_TYPE = 415
#: s42 waits for the container with the extra files at most this many times as long as the plain model took
#: to pass /ping, and at least _EXTRAS_STARTUP_FLOOR_S (both within --startup-timeout): the same image and model
#: plus a few small files load as fast, and a 503 that lasts far longer is the extra files' doing.
_EXTRAS_STARTUP_FACTOR = 4
_EXTRAS_STARTUP_FLOOR_S = 30.0
#: What real model.tar.gz files hold besides the model (s42). Harmless to servers that read them: the module
#: defines no handler (framework toolkits then use their defaults) and the requirements list no package.
MODEL_EXTRAS: dict[str, bytes] = {
    "README.md": b"# Model card\n\nAn extra file, as model.tar.gz files made by hand hold them.\n",
    "code/inference.py": b"# Inference handlers (model_fn, input_fn, predict_fn, output_fn): none defined here.\n",
    "code/requirements.txt": b"# no extra packages\n",
    ".DS_Store": b"\x00\x00\x00\x01Bud1" + bytes(26),
    "metrics/eval/report.json": b'{"accuracy": null, "note": "written next to the model by a training script"}\n',
}


@check("s41")
def test_s41_unsupported_content_type_is_4xx(
    sagemaker_endpoint: EndpointHandle, contract_config: ContractConfig
) -> None:
    ep = require_endpoint(sagemaker_endpoint, "s41")
    req, body = _valid(contract_config)
    serving = contract_config.serving
    accepted = ", ".join(serving.accepted_media_types())
    common = next((c for c in _COMMON_TYPES if not serving.accepts(c)), None)
    wrong = [t for t in (_UNSUPPORTED_TYPE, common) if t is not None and not serving.accepts(t)]
    if not wrong:
        skip(
            "s41",
            f"the config says the image accepts every Content-Type (serving.accepted_content_types: {accepted}); "
            "list the types it parses to exercise this check",
        )
    not_415 = []
    for content_type in wrong:
        answer = _http.post(ep, body, {**_headers(req), "Content-Type": content_type})
        status = answer.status
        if answer.failure is None and status is not None and 400 <= status < 500:
            if status != _UNSUPPORTED_MEDIA_TYPE:
                not_415.append(f"{content_type}: {answer.describe()}")
            continue
        if answer.failure is not None:
            problem = f"a body sent as {content_type} broke the server"
        elif status is not None and 200 <= status < 300:
            problem = (
                f"a body sent as {content_type} got HTTP {status}: the server did not check the Content-Type "
                f"and parsed it as {_http.media_type(req.content_type)} anyway"
            )
        elif status is not None and status >= 500:
            problem = f"a body sent as {content_type} got HTTP {status}, a server error, not a 4xx"
        else:
            problem = f"a body sent as {content_type} did not get a 4xx answer"
        violation(
            "s41",
            problem,
            sent=f"{answer.sent} (the body of serving.requests[0], a {_http.media_type(req.content_type)} body)",
            expected=f"HTTP {_UNSUPPORTED_MEDIA_TYPE} Unsupported Media Type (any 4xx passes): the image accepts "
            f"{accepted} (serving.accepted_content_types)",
            got=answer.describe(),
            logs=sagemaker_endpoint.log_text(),
        )
    if not_415:
        warn(
            "s41",
            f"an unsupported Content-Type got another 4xx than {_UNSUPPORTED_MEDIA_TYPE} ({'; '.join(not_415)}): "
            f"answer {_UNSUPPORTED_MEDIA_TYPE} Unsupported Media Type so clients learn the type is the problem",
        )


@check("s42")
def test_s42_extra_model_files_tolerated(
    sagemaker_endpoint: EndpointHandle,
    contract_config: ContractConfig,
    contract_harness: Harness,
    serving_model_dir: Path | None,
) -> None:
    # Without a healthy container for the plain model (or without a model) s42 has nothing to compare with.
    plain_ep = require_endpoint(sagemaker_endpoint, "s42")
    assert serving_model_dir is not None  # the shared container serves it
    req, body = _valid(contract_config)
    plain = _http.post(plain_ep, body, _headers(req))
    if not plain.ok:
        blocked("s42", "s21", f"the plain model does not answer the sample request ({plain.describe()[:200]})")
    model_dir, added = contract_harness.model_dir_with(serving_model_dir, MODEL_EXTRAS)
    if not added:
        skip("s42", f"the model already holds {', '.join(MODEL_EXTRAS)}: nothing extra to add")
    sent = (
        f"docker run IMAGE serve with {MODEL_DIR} (read-only) holding the model plus {', '.join(added)}; "
        f"then serving.requests[0]"
    )
    plain_ready_s = plain_ep.ready_after_s or 0.0
    bound = min(
        contract_harness.options.startup_timeout_s,
        float(round(max(_EXTRAS_STARTUP_FLOOR_S, _EXTRAS_STARTUP_FACTOR * plain_ready_s))),
    )
    handle = contract_harness.start_endpoint(
        "serve-extras",
        model_dir,
        network_isolation=contract_harness.config.capabilities.network_isolation,
        startup_timeout_s=bound,
    )
    try:
        if handle.endpoint is None:
            # The emulator's hint (bind to 0.0.0.0:8080?) does not apply: the plain model is served fine.
            error = (str(handle.error) if handle.error is not None else "not started").split("; Hint")[0]
            violation(
                "s42",
                f"with extra files in {MODEL_DIR} the serving container did not become healthy "
                f"(with the plain model it did, after {plain_ready_s:.1f} s): {error.splitlines()[0][:250]}",
                sent=sent,
                expected=f"GET {PING_PATH} answers 200 within {bound:g} s, as with the plain model",
                got=error,
                logs=handle.log_text(),
            )
        answer = _http.post(handle.endpoint, body, _headers(req))
        shape = (answer.ok, _http.media_type(answer.content_type), len(_http.lines(answer.body)))
        plain_shape = (plain.ok, _http.media_type(plain.content_type), len(_http.lines(plain.body)))
        same_body = answer.body == plain.body or not contract_config.batch.deterministic
        if shape != plain_shape or not same_body:
            violation(
                "s42",
                f"with extra files in {MODEL_DIR} the sample request got another answer than with the plain model",
                sent=sent,
                expected="the plain model's answer" + ("" if same_body else " (the same body: batch.deterministic)"),
                got=f"with the extra files: {answer.describe()}; plain: {plain.describe()}",
                logs=handle.log_text(),
            )
    finally:
        if handle.endpoint is not None:
            handle.endpoint.close()
