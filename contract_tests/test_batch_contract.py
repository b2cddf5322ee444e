"""Batch checks b31-b33: the serving container as batch transform runs it (``SAGEMAKER_BATCH=true``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from contract_tests import _http
from contract_tests._report import blocked, check, http_request, skip, violation, warn
from contract_tests._runs import EndpointHandle, require_endpoint
from contract_tests.config import ContractConfig
from emulator.constants import (
    BATCH_STRATEGY_ENV,
    EXECUTION_PARAMETERS_PATH,
    MAX_CONCURRENT_PAYLOAD_MB,
    MAX_PAYLOAD_IN_MB,
)

_PATH = EXECUTION_PARAMETERS_PATH
_STRATEGIES = tuple(BATCH_STRATEGY_ENV.values())
_API_SPELLING = BATCH_STRATEGY_ENV


@dataclass
class ExecutionParameters:
    """What ``GET /execution-parameters`` answered."""

    status: int | None
    body: bytes
    failure: str | None = None

    @property
    def absent(self) -> bool:
        """The optional endpoint is not implemented (404/405): allowed."""
        return self.status in (404, 405)

    def got(self) -> str:
        """The answer, for messages."""
        if self.failure is not None:
            return self.failure
        return f"HTTP {self.status}, body {self.body[:300]!r}"


@pytest.fixture(scope="module")
def execution_parameters(batch_endpoint: EndpointHandle) -> ExecutionParameters:
    """``GET /execution-parameters`` once, on the batch container (the checks fail if it did not start)."""
    ep = batch_endpoint.endpoint
    if ep is None:
        return ExecutionParameters(None, b"", "the batch container did not start")
    try:
        status, body = ep.invoker.get(_PATH, timeout_s=ep.invocation_timeout_s)
    except Exception as exc:
        return ExecutionParameters(None, b"", f"no answer: {type(exc).__name__}: {exc}")
    return ExecutionParameters(status, body)


def _parsed(params: ExecutionParameters, check_id: str, log: str) -> dict[str, Any]:
    try:
        doc = json.loads(params.body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        violation(
            check_id,
            f"GET {_PATH} answered 200 with something that is not a JSON object",
            sent=http_request("GET", _PATH),
            expected='a JSON object such as {"MaxConcurrentTransforms": 2, '
            '"BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}',
            got=params.got(),
            logs=log,
        )
    return doc


@check("b31")
def test_b31_execution_parameters_schema(
    execution_parameters: ExecutionParameters, batch_endpoint: EndpointHandle
) -> None:
    require_endpoint(batch_endpoint, "b31")
    params = execution_parameters
    log = batch_endpoint.log_text()
    if params.absent:
        return  # the endpoint is optional: SageMaker then uses its defaults
    if params.status != 200:
        violation(
            "b31",
            f"GET {_PATH} answered neither 200 nor 404/405",
            sent=http_request("GET", _PATH),
            expected="200 with the JSON parameters, or 404/405 when not implemented",
            got=params.got(),
            logs=log,
        )
    doc = _parsed(params, "b31", log)
    problems = []
    mct, strategy, payload = doc.get("MaxConcurrentTransforms"), doc.get("BatchStrategy"), doc.get("MaxPayloadInMB")
    if not isinstance(mct, int) or isinstance(mct, bool) or mct < 1:
        problems.append(f"MaxConcurrentTransforms must be an integer >= 1, got {mct!r}")
    if strategy not in _STRATEGIES:
        hint = (
            f" (write {_API_SPELLING[strategy]!r}: the API's spelling is not the container's)"
            if strategy in _API_SPELLING
            else ""
        )
        problems.append(f"BatchStrategy must be one of {', '.join(_STRATEGIES)}, got {strategy!r}{hint}")
    if not isinstance(payload, int) or isinstance(payload, bool) or payload < 0:
        problems.append(f"MaxPayloadInMB must be an integer >= 0, got {payload!r}")
    if problems:
        violation(
            "b31",
            "; ".join(problems),
            sent=http_request("GET", _PATH),
            expected='{"MaxConcurrentTransforms": <int >= 1>, "BatchStrategy": "SINGLE_RECORD" | "MULTI_RECORD", '
            '"MaxPayloadInMB": <int>}',
            got=params.got(),
            logs=log,
        )
    unknown = sorted(set(doc) - {"MaxConcurrentTransforms", "BatchStrategy", "MaxPayloadInMB"})
    if unknown:
        warn("b31", f"{_PATH} has keys SageMaker does not know: {unknown}")


@check("b32")
def test_b32_execution_parameters_limits(
    execution_parameters: ExecutionParameters, batch_endpoint: EndpointHandle
) -> None:
    require_endpoint(batch_endpoint, "b32")
    params = execution_parameters
    if params.absent:
        skip("b32", f"the image has no GET {_PATH} (allowed), so there are no limits to check")
    log = batch_endpoint.log_text()
    if params.status != 200:
        blocked("b32", "b31", f"GET {_PATH} did not answer 200 ({params.got()[:200]})")
    doc = _parsed(params, "b32", log)
    mct, payload = doc.get("MaxConcurrentTransforms"), doc.get("MaxPayloadInMB")
    if not isinstance(mct, int) or not isinstance(payload, int) or isinstance(mct | payload, bool):
        blocked("b32", "b31", f"the values of GET {_PATH} are not integers ({params.got()[:200]})")
    if payload > MAX_PAYLOAD_IN_MB or mct * payload > MAX_CONCURRENT_PAYLOAD_MB:
        violation(
            "b32",
            f"MaxConcurrentTransforms x MaxPayloadInMB = {mct} x {payload} = {mct * payload} MB",
            sent=http_request("GET", _PATH),
            expected=f"MaxPayloadInMB <= {MAX_PAYLOAD_IN_MB} and MaxConcurrentTransforms x MaxPayloadInMB <= "
            f"{MAX_CONCURRENT_PAYLOAD_MB} "
            "(CreateTransformJob refuses more)",
            got=params.got(),
            logs=log,
        )


@check("b33")
def test_b33_multirecord_order(batch_endpoint: EndpointHandle, contract_config: ContractConfig) -> None:
    ep = require_endpoint(batch_endpoint, "b33")
    b = contract_config.batch
    records = contract_config.batch_records()
    headers = {"Content-Type": b.content_type, **({"Accept": b.accept} if b.accept else {})}
    body = ("\n".join(records) + "\n").encode("utf-8")
    answer = _http.post(ep, body, headers)
    log = batch_endpoint.log_text()
    if not answer.ok:
        violation(
            "b33",
            f"a MultiRecord request of {len(records)} records did not get a 2xx answer",
            sent=answer.sent,
            expected="HTTP 2xx with one output record per input record",
            got=answer.describe(),
            logs=log,
        )
    out = _http.lines(answer.body)
    if len(out) != len(records):
        violation(
            "b33",
            f"{len(records)} records in, {len(out)} output line(s) out",
            sent=answer.sent,
            expected=f"{len(records)} output lines, in input order",
            got=answer.describe(),
            logs=log,
        )
    if not b.deterministic:
        return
    for i, record in enumerate(records):
        single = _http.post(ep, (record + "\n").encode("utf-8"), headers)
        alone = _http.lines(single.body)
        if not single.ok or len(alone) != 1:
            violation(
                "b33",
                f"record {i + 1} sent alone did not get one output line",
                sent=single.sent,
                expected="HTTP 2xx with one output line",
                got=single.describe(),
                logs=log,
            )
        if alone[0].strip() != out[i].strip():
            violation(
                "b33",
                f"output line {i + 1} of the mini-batch is not the answer for record {i + 1}",
                sent=f"{answer.sent}; then record {i + 1} alone: {record!r}",
                expected=f"line {i + 1} = {alone[0].strip()!r} (the answer for that record alone)",
                got=f"line {i + 1} = {out[i].strip()!r}; all lines: {out[:10]}",
                logs=log,
                fix="answer the records in input order (or set batch.deterministic: false if the model is "
                "not deterministic)",
            )
