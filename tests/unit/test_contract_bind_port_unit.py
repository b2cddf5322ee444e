"""Rule 29 without an engine: the readiness sign of a labelled image that ignores SAGEMAKER_BIND_TO_PORT is owned by
s29 (not s19), and what the s29 check calls a problem in a container's sockets."""

from __future__ import annotations

import pytest

from contract_tests._diagnosis import diagnose_serving
from contract_tests.test_capability_contract import port_problems
from emulator.constants import FAST_FAIL_LISTEN_S, SAFE_PORT_RANGE, SERVING_PORT
from emulator.runtime.inspect import Listener
from emulator.serving.readiness import ReadinessWatch


def _other_port(port: int, listening: int) -> tuple[str, str]:
    """The (cause, fix) the readiness watch gives for a server on ``listening`` while it was told ``port``."""
    watch = ReadinessWatch(port)
    assert watch.listeners(0.0, [Listener("0.0.0.0", listening)]) is None
    verdict = watch.listeners(FAST_FAIL_LISTEN_S + 1, [Listener("0.0.0.0", listening)])
    assert verdict is not None
    return verdict.cause, verdict.fix


@pytest.mark.parametrize(("port", "listening", "owner"), [(9042, SERVING_PORT, "s29"), (SERVING_PORT, 5000, "s19")])
def test_a_server_on_the_wrong_port_is_owned_by_s29_only_when_it_was_told_another_port(
    port: int, listening: int, owner: str
) -> None:
    cause, fix = _other_port(port, listening)
    assert cause == "other-port"
    error = f"endpoint e will not pass the /ping health check: nothing listens on port {port} (3.0s after start)"
    root = diagnose_serving(error=error, cause=cause, fix=fix)
    assert root.check_id == owner
    assert ("SAGEMAKER_BIND_TO_PORT" in root.fix) == (owner == "s29")


@pytest.mark.parametrize(
    ("listening", "wanted"),
    [
        ([("0.0.0.0", 9001)], []),
        ([("::", 9001), ("0.0.0.0", SAFE_PORT_RANGE[1])], []),
        ([("127.0.0.1", 9001)], ["nothing listens on SAGEMAKER_BIND_TO_PORT 9001 on all interfaces"]),
        ([("0.0.0.0", 9001), ("0.0.0.0", SERVING_PORT)], [f"it also listens on {SERVING_PORT}"]),
        ([("0.0.0.0", 9001), ("0.0.0.0", SAFE_PORT_RANGE[1] + 1)], ["outside SAGEMAKER_SAFE_PORT_RANGE"]),
    ],
)
def test_port_problems(listening: list[tuple[str, int]], wanted: list[str]) -> None:
    problems = port_problems(listening, 9001, SAFE_PORT_RANGE)
    assert len(problems) == len(wanted)
    assert all(w in p for w, p in zip(wanted, problems, strict=True))
