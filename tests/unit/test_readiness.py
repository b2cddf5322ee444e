"""Fail-fast readiness: the sure signs that a serving container will never pass /ping (emulator.serving.readiness).

Pure tests of the watch with explicit clocks, of the /proc/net/tcp parser, and of ``Endpoint(fail_fast=True)``
against the fake engine (whose containers report the sockets RECORDER_PROC_NET_TCP gives).
"""

from __future__ import annotations

import pytest
from _fakes import CONFIG, IMAGE, FakeDocker

from emulator.constants import FAST_FAIL_LISTEN_S, FAST_FAIL_PING_S, SERVING_PORT
from emulator.errors import EndpointNotReady
from emulator.runtime.inspect import Listener, parse_proc_net_tcp
from emulator.serving import Endpoint, readiness
from emulator.serving.readiness import ReadinessWatch

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
#: 127.0.0.1:8080 listening (0A), 0.0.0.0:5000 listening, and an established connection (01) on 8080.
PROC_NET_TCP = (
    HEADER
    + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1 0 100 0 0 10 0\n"
    + "   1: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 2 1 0 100 0 0 10 0\n"
    + "   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000 0 0 3 1 0 100 0 0 10 0\n"
)
#: :: (all interfaces, IPv6) and ::1 (loopback) on 8080, as /proc/net/tcp6 prints them.
PROC_NET_TCP6 = (
    HEADER
    + "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0 0 0 0 0 4 1\n"
    + "   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 0 0 0 0 0 5 1\n"
)


def test_proc_net_tcp_gives_listening_sockets_only() -> None:
    assert parse_proc_net_tcp(PROC_NET_TCP) == [Listener("0.0.0.0", 5000), Listener("127.0.0.1", 8080)]
    six = parse_proc_net_tcp(PROC_NET_TCP6)
    assert six == [Listener("::", 8080), Listener("::1", 8081)]
    assert [x.loopback for x in six] == [False, True]
    assert parse_proc_net_tcp("garbage\n  0: zz:1F90 0:0 0A\n") == []


def test_loopback_only_fails_once_it_has_held_for_the_settle_time() -> None:
    w = ReadinessWatch()
    only_loopback = [Listener("127.0.0.1", SERVING_PORT)]
    assert w.listeners(0.0, only_loopback) is None
    assert w.listeners(FAST_FAIL_LISTEN_S - 0.1, only_loopback) is None
    verdict = w.listeners(FAST_FAIL_LISTEN_S, only_loopback)
    assert verdict is not None
    assert verdict.cause == "loopback-only"
    assert "0.0.0.0:8080" in verdict.fix
    assert "127.0.0.1:8080" in verdict.problem


def test_a_break_in_the_sign_restarts_the_clock() -> None:
    w = ReadinessWatch()
    other = [Listener("0.0.0.0", 5000)]
    assert w.listeners(0.0, other) is None
    assert w.listeners(FAST_FAIL_LISTEN_S - 1, []) is None  # nothing listens for a moment: not the same sign
    assert w.listeners(FAST_FAIL_LISTEN_S + 0.5, other) is None
    verdict = w.listeners(2 * FAST_FAIL_LISTEN_S + 0.5, other)
    assert verdict is not None
    assert verdict.cause == "other-port"
    assert "5000" in verdict.problem


@pytest.mark.parametrize(
    "found",
    [
        [Listener("0.0.0.0", SERVING_PORT)],
        [Listener("::", SERVING_PORT), Listener("127.0.0.1", 9090)],
        [Listener("172.17.0.2", SERVING_PORT)],
        [],  # nothing listens yet: still starting
        None,  # the sockets cannot be read (no `cat` in the image): proves nothing
    ],
)
def test_reachable_or_unknown_sockets_never_fail(found: list[Listener] | None) -> None:
    w = ReadinessWatch()
    assert all(w.listeners(t, found) is None for t in (0.0, 10.0, 100.0))


def test_ping_503_and_no_answer_wait_for_the_startup_timeout() -> None:
    w = ReadinessWatch()
    for t in range(0, 100, 5):
        assert w.ping(float(t), 503) is None
        # No answer within the (patient) ping timeout: booting workers, not a sign.
        assert w.ping(float(t), None, seconds=8.0) is None


def test_two_slow_answers_in_a_row_fail_but_one_does_not() -> None:
    w = ReadinessWatch()
    assert w.ping(0.0, 200, seconds=6.0) is None  # a worker that was booting answers late once ...
    assert w.ping(8.0, 200, seconds=0.01) is None  # ... then in time: no sign
    assert w.ping(16.0, 503, seconds=6.0) is None
    verdict = w.ping(24.0, 200, seconds=6.5)
    assert verdict is not None
    assert verdict.cause == "ping-slow"
    assert "2 times in a row (up to 6.5 s)" in verdict.problem


@pytest.mark.parametrize(("status", "seconds", "cause"), [(500, 0.1, "ping-status"), (308, 0.1, "ping-status")])
def test_ping_errors_fail_after_the_ping_bound(status: int, seconds: float, cause: str) -> None:
    w = ReadinessWatch()
    assert w.ping(0.0, status, seconds=seconds) is None
    assert w.ping(FAST_FAIL_PING_S / 2, status, seconds=seconds) is None
    verdict = w.ping(FAST_FAIL_PING_S, status, seconds=seconds)
    assert verdict is not None
    assert verdict.cause == cause


def test_a_changing_error_status_is_not_one_sign() -> None:
    w = ReadinessWatch()
    assert w.ping(0.0, 500) is None
    assert w.ping(FAST_FAIL_PING_S, 404) is None  # a new answer: the clock restarts


def test_socket_reads_are_rate_limited() -> None:
    w = ReadinessWatch()
    assert w.wants_sockets(0.0)
    assert not w.wants_sockets(readiness.SOCKET_READ_INTERVAL_S / 2)
    assert w.wants_sockets(readiness.SOCKET_READ_INTERVAL_S)


# -- Endpoint(fail_fast=True) on the fake engine --------------------------------------------------------------
@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "FAST_FAIL_LISTEN_S", 0.3)
    monkeypatch.setattr(readiness, "FAST_FAIL_PING_S", 0.3)
    monkeypatch.setattr(readiness, "SOCKET_READ_INTERVAL_S", 0.05)


def _start(env: dict[str, str], *, fail_fast: bool, startup_timeout_s: float = 3.0) -> EndpointNotReady:
    docker = FakeDocker()
    ep = Endpoint(IMAGE, environment=env, docker=docker, config=CONFIG, fail_fast=fail_fast,
                  startup_timeout_s=startup_timeout_s)  # fmt: skip
    with pytest.raises(EndpointNotReady) as info:
        ep.start()
    assert docker.removed, "the container that never became healthy was not removed"
    return info.value


@pytest.mark.usefixtures("quick")
def test_fail_fast_names_a_loopback_only_server() -> None:
    env = {"RECORDER_PING_STATUS": "503", "RECORDER_PROC_NET_TCP": PROC_NET_TCP}
    err = _start(env, fail_fast=True)
    assert err.cause == "loopback-only"
    assert "bind to 0.0.0.0:8080" in err.fix
    assert "127.0.0.1:8080" in str(err)


@pytest.mark.usefixtures("quick")
def test_fail_fast_names_an_error_status_of_ping() -> None:
    err = _start({"RECORDER_PING_STATUS": "500"}, fail_fast=True)
    assert err.cause == "ping-status"
    assert "HTTP 500" in str(err)


@pytest.mark.usefixtures("quick")
def test_fail_fast_names_a_slow_ping_but_not_a_silent_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "PATIENT_PING_S", 3.0)
    err = _start({"RECORDER_PING_DELAY_S": "2.2"}, fail_fast=True, startup_timeout_s=20)
    assert err.cause == "ping-slow"
    assert "after more than 2 s" in str(err)


@pytest.mark.usefixtures("quick")
def test_without_fail_fast_the_platform_waits_for_the_startup_timeout() -> None:
    err = _start({"RECORDER_PING_STATUS": "500"}, fail_fast=False, startup_timeout_s=1.0)
    assert err.cause == ""
    assert "did not pass the /ping health check within 1s" in str(err)
