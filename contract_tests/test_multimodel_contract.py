"""Multi-model checks: m39 the /models API, m40 a load beyond memory answers 507 (contract section 2.6).

Both run only for an image labelled ``com.amazonaws.sagemaker.capabilities.multi-models=true`` (skipped as
unclaimed otherwise, like s29) and only once the plain serving container works (else they are blocked by its root
cause). They share one container, started the way a multi-model endpoint does (``SAGEMAKER_MULTI_MODEL=true``, the
config's serving model packed as ``model.tar.gz`` and extracted read-only under /opt/ml/models/<name>/model) with
a memory limit of ``M40_MEMORY_MB``, and talk to the /models API themselves. m40 loads the model under new names
until the server answers 507 or ``M40_MAX_LOADS`` are loaded; every load must get 200 or 507, and the server must
still answer /ping 200 afterwards.
"""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import requests

from contract_tests._report import check, http_request, skip, violation
from contract_tests._runs import EndpointHandle, Harness, require_endpoint
from emulator import EmulatorError
from emulator.constants import LABEL_MULTI_MODELS, MODELS_PATH, PING_PATH
from emulator.serving.multimodel import MultiModelEndpoint, label_claims_multi_model

#: m40: the container's memory limit (MiB) and the most loads it tries before it gives up looking for a 507.
M40_MEMORY_MB = 512
M40_MAX_LOADS = 24
_TARGET = "model.tar.gz"
_UNKNOWN = "contract-suite-unknown-model"


def _require_claim(h: Harness, check_id: str) -> None:
    label = h.image_info().labels.get(LABEL_MULTI_MODELS, "")
    if not label_claims_multi_model(h.image_info().labels):
        skip(
            check_id,
            f"the image does not claim {LABEL_MULTI_MODELS}=true (label {label or 'unset'}): SageMaker refuses it for "
            "multi-model endpoints; add the label only if `serve` implements the /models API",
        )


def _start_multi_model(h: Harness, model_dir: Path, label: str, memory_limit_mb: int | None) -> EndpointHandle:
    """A multi-model serving container with the serving model packed as ``model.tar.gz`` under its prefix."""
    prefix = h.workdir / f"{label}-{uuid.uuid4().hex[:6]}"
    prefix.mkdir(parents=True)
    with tarfile.open(prefix / _TARGET, "w:gz") as tf:
        for path in sorted(model_dir.iterdir()):
            tf.add(path, arcname=path.name)
    return h.start_endpoint(label, prefix, endpoint_class=MultiModelEndpoint, memory_limit_mb=memory_limit_mb)


def _multi_model(
    h: Harness, shared: EndpointHandle, model_dir: Path | None, check_id: str
) -> tuple[EndpointHandle, MultiModelEndpoint]:
    """The checks' running multi-model endpoint (started once per session); a start failure is the check's."""
    require_endpoint(shared, check_id)  # the plain container must serve first (else: blocked by its root cause)
    assert model_dir is not None, "a serving container runs, so there is a model"
    handle = h.once("multi-model", lambda: _start_multi_model(h, model_dir, "mme", M40_MEMORY_MB))
    if not isinstance(handle.endpoint, MultiModelEndpoint):
        violation(
            check_id,
            "the container started with SAGEMAKER_MULTI_MODEL=true did not become healthy, while the same image "
            "serves a single model",
            sent="docker run IMAGE serve with SAGEMAKER_MULTI_MODEL=true, /opt/ml/models mounted read-only",
            expected=f"GET {PING_PATH} answers 200 before any model is loaded",
            got=str(handle.error).split("\n", 1)[0],
            logs=handle.log_text(),
        )
    return handle, handle.endpoint


def _call(ep: MultiModelEndpoint, method: str, path: str, body: Any = None) -> tuple[int | None, bytes, str]:
    """(status, body, what was sent); status None when there was no answer (the body then says why)."""
    sent = http_request(method, path, {"Content-Type": "application/json"} if body is not None else {},
                        json.dumps(body) if body is not None else None)  # fmt: skip
    try:
        status, answer = ep.invoker.call(method, path, json_body=body)
    except requests.RequestException as exc:
        return None, " ".join(str(exc).split())[:300].encode(), sent
    return status, answer, sent


def _invoke(ep: MultiModelEndpoint, name: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, bytes, str]:
    """``POST /models/<name>/invoke``: (status, body, what was sent); status None when there was no answer."""
    path = f"{MODELS_PATH}/{name}/invoke"
    sent = http_request("POST", path, headers, body)
    try:
        raw = ep.invoker.post(body, headers, path=path)
    except EmulatorError as exc:  # no answer in time, or the connection broke
        return None, str(exc).split("\n", 1)[0][:300].encode(), sent
    try:
        return raw.status, raw.read(), sent
    finally:
        raw.close()


def _got(status: int | None, body: bytes) -> str:
    shown = body[:300].decode("utf-8", "replace")
    return f"HTTP {status}: {shown!r}" if status is not None else f"no answer ({shown})"


def _listed(body: bytes) -> list[str] | None:
    try:
        page = json.loads(body)
    except ValueError:
        return None
    models = page.get("models") if isinstance(page, dict) else None
    if not isinstance(models, list):
        return None
    return [str(m.get("modelName")) for m in models if isinstance(m, dict)]


# -- m39 ------------------------------------------------------------------------------------------------------------
@check("m39")
def test_m39_multi_model_api(
    contract_harness: Harness, sagemaker_endpoint: EndpointHandle, serving_model_dir: Path | None
) -> None:
    h = contract_harness
    _require_claim(h, "m39")
    handle, ep = _multi_model(h, sagemaker_endpoint, serving_model_dir, "m39")
    name, url = ep.stage(_TARGET)
    load = {"model_name": name, "url": url}
    request = h.config.serving.requests[0]
    body = h.config.request_body(request)
    headers = {"Content-Type": request.content_type, **({"Accept": request.accept} if request.accept else {})}

    def expect(step: str, got: tuple[int | None, bytes, str], wanted: set[int], what: str) -> bytes:
        status, answer, sent = got
        if status not in wanted:
            violation(
                "m39",
                f"{step}: {what}",
                sent=sent,
                expected=f"HTTP {' or '.join(map(str, sorted(wanted)))}",
                got=_got(status, answer),
                logs=handle.log_text(),
            )
        return answer

    expect("load", _call(ep, "POST", MODELS_PATH, load), {200}, "loading a model did not answer 200")
    expect("load again", _call(ep, "POST", MODELS_PATH, load), {409}, "loading a loaded model did not answer 409")
    listed = _call(ep, "GET", MODELS_PATH)
    names = _listed(expect("list", listed, {200}, "GET /models did not answer 200"))
    if names is None or name not in names:
        violation(
            "m39",
            "GET /models does not list the loaded model",
            sent=listed[2],
            expected=f'{{"models": [{{"modelName": "{name}", "modelUrl": "{url}"}}, ...]}}',
            got=_got(listed[0], listed[1]),
            logs=handle.log_text(),
        )
    expect("get", _call(ep, "GET", f"{MODELS_PATH}/{name}"), {200}, "GET /models/<name> of a loaded model failed")
    expect("get unknown", _call(ep, "GET", f"{MODELS_PATH}/{_UNKNOWN}"), {404}, "an unknown model is not a 404")
    expect("invoke", _invoke(ep, name, body, headers), set(range(200, 300)), "invoking the loaded model failed")
    expect("invoke unknown", _invoke(ep, _UNKNOWN, body, headers), {404}, "an unknown model is not a 404")
    expect("unload", _call(ep, "DELETE", f"{MODELS_PATH}/{name}"), {200}, "unloading the model did not answer 200")
    expect("unload again", _call(ep, "DELETE", f"{MODELS_PATH}/{name}"), {404}, "an unloaded model is not a 404")


# -- m40 ------------------------------------------------------------------------------------------------------------
@check("m40")
def test_m40_out_of_memory_is_507(
    contract_harness: Harness, sagemaker_endpoint: EndpointHandle, serving_model_dir: Path | None
) -> None:
    h = contract_harness
    _require_claim(h, "m40")
    handle, ep = _multi_model(h, sagemaker_endpoint, serving_model_dir, "m40")
    _, url = ep.stage(_TARGET)
    setting = f"the container limited to {M40_MEMORY_MB} MiB, the model loaded under new names"
    for i in range(M40_MAX_LOADS):
        status, answer, sent = _call(ep, "POST", MODELS_PATH, {"model_name": f"m40-{i}", "url": url})
        if status == 507:
            break
        if status != 200:
            crashed = ep.wait(1.0) is not None
            oom = " (OOMKilled)" if ep.oom_killed else ""
            violation(
                "m40",
                f"load {i + 1} ({i} models loaded) got {_got(status, answer)}"
                + (f"; the container exited{oom}" if crashed else ""),
                sent=f"{setting}: {sent}",
                expected="HTTP 200 while the model fits, 507 once it does not; the server keeps serving",
                got=_got(status, answer),
                logs=handle.log_text(),
            )
    try:
        alive = ep.wait(0) is None and ep.ping() == 200
    except requests.RequestException:
        alive = False
    if not alive:
        violation(
            "m40",
            "the server no longer answers GET /ping with 200 after loading models until 507",
            sent=setting,
            expected=f"GET {PING_PATH} answers 200",
            got=f"the container {'exited' if ep.wait(0) is not None else 'runs'}",
            logs=handle.log_text(),
        )
