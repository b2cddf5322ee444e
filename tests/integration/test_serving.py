"""Endpoint on the real Docker engine with the recorder image (tests/images/recorder)."""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, MAX_PAYLOAD_BYTES
from emulator.errors import EndpointNotReady, ModelError, ValidationError
from emulator.serving import Endpoint, invoke_endpoint

pytestmark = pytest.mark.docker


@pytest.fixture
def config(fast_config: EmulatorConfig) -> EmulatorConfig:
    return fast_config.with_(stream_logs=False, serving_stop_grace_s=5)


def containers_of(name: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL_JOB}={name}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.split()


def test_two_endpoints_run_at_once_on_their_own_ports(recorder_image: str, config: EmulatorConfig) -> None:
    with (
        Endpoint(recorder_image, environment={"RECORDER_CONTENT_TYPE": "text/one"}, config=config) as one,
        Endpoint(recorder_image, environment={"RECORDER_CONTENT_TYPE": "text/two"}, config=config) as two,
    ):
        assert one.port != two.port
        assert one.invoke(b"a")["ContentType"] == "text/one"
        assert two.invoke(b"b")["ContentType"] == "text/two"
        assert one.ready_after_s is not None
        assert one.ready_after_s < 10
    assert containers_of(one.name) == []
    assert containers_of(two.name) == []


def test_readiness_fails_at_once_when_the_container_exits(recorder_image: str, config: EmulatorConfig) -> None:
    ep = Endpoint(recorder_image, environment={"RECORDER_EXIT_AT_START": "3"}, startup_timeout_s=120, config=config)
    start = time.monotonic()
    with pytest.raises(EndpointNotReady) as info:
        ep.start()
    assert time.monotonic() - start < 10
    assert "exited with status 3" in str(info.value)
    assert "exiting at start as RECORDER_EXIT_AT_START asks" in str(info.value)
    assert "exiting at start" in info.value.log_tail
    assert info.value.container_exit_code == 3
    assert containers_of(ep.name) == []


def test_readiness_timeout_is_configurable(recorder_image: str, config: EmulatorConfig) -> None:
    ep = Endpoint(recorder_image, environment={"RECORDER_PING_STATUS": "500"}, startup_timeout_s=1.5, config=config)
    start = time.monotonic()
    with pytest.raises(EndpointNotReady, match=r"within 1.5s \(last answer: HTTP 500\)"):
        ep.start()
    assert time.monotonic() - start < 10
    assert containers_of(ep.name) == []


def test_a_slow_bind_is_waited_for(recorder_image: str, config: EmulatorConfig) -> None:
    with Endpoint(recorder_image, environment={"RECORDER_BIND_DELAY_S": "1"}, config=config) as ep:
        assert ep.ready_after_s is not None
        assert ep.ready_after_s >= 1
        assert ep.ping() == 200


def test_4xx_and_5xx_are_model_errors(recorder_image: str, config: EmulatorConfig) -> None:
    env = {"RECORDER_FAIL_ON": "bad", "RECORDER_FAIL_STATUS": "422"}
    with Endpoint(recorder_image, environment=env, config=config) as ep:
        with pytest.raises(ModelError) as info:
            ep.invoke(b"a bad row", content_type="text/csv")
        assert info.value.original_status_code == 422
        assert info.value.original_message == "bad record: a bad row"
        assert str(info.value).startswith('Received client error (422) from primary with message "bad record: a bad')
        assert ep.invoke(b"good")["Body"] == b"good"


def test_payload_limits(recorder_image: str, config: EmulatorConfig) -> None:
    with Endpoint(recorder_image, config=config) as ep:
        with pytest.raises(ValidationError, match="6 MiB"):
            ep.invoke(b"x" * (MAX_PAYLOAD_BYTES + 1))
        assert len(ep.invoke(b"y" * MAX_PAYLOAD_BYTES)["Body"]) == MAX_PAYLOAD_BYTES
        seen = requests.get(ep.url + "/_requests", timeout=10).json()
        assert [r["size"] for r in seen] == [MAX_PAYLOAD_BYTES]


def test_invocation_timeout_is_model_error_0(recorder_image: str, config: EmulatorConfig) -> None:
    with Endpoint(recorder_image, environment={"RECORDER_SLEEP_S": "5"}, invocation_timeout_s=1, config=config) as ep:
        start = time.monotonic()
        with pytest.raises(ModelError, match=r"Received server error \(0\) from primary") as info:
            ep.invoke(b"x")
        assert time.monotonic() - start < 4
        assert info.value.original_status_code == 0


def test_stop_sends_sigterm_then_removes(recorder_image: str, config: EmulatorConfig) -> None:
    lines: list[str] = []
    with Endpoint(
        recorder_image,
        environment={"RECORDER_TERM_DELAY_S": "0.5"},
        config=config,
        log_sink=lambda host, line: lines.append(line),
    ) as ep:
        ep.invoke(b"x")
    assert ep.stop_result is not None
    assert ep.stop_result.killed is False
    assert ep.stop_result.exit_code == 0
    assert ep.stop_result.seconds >= 0.5
    assert "recorder: SIGTERM" in lines
    assert containers_of(ep.name) == []


def test_sigkill_after_the_grace_period(recorder_image: str, config: EmulatorConfig) -> None:
    cfg = config.with_(serving_stop_grace_s=1)
    with Endpoint(recorder_image, environment={"RECORDER_IGNORE_SIGTERM": "1"}, config=cfg) as ep:
        pass
    assert ep.stop_result is not None
    assert ep.stop_result.killed is True
    assert ep.stop_result.exit_code == 137
    assert 1 <= ep.stop_result.seconds < 10
    assert containers_of(ep.name) == []


def test_the_model_is_extracted_and_mounted_read_only(
    recorder_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name in ("model.bin", "sub/vocab.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    with Endpoint(recorder_image, model_data=str(archive), config=config) as ep:
        model = requests.get(ep.url + "/_model", timeout=10).json()
    assert model == {"files": ["model.bin", "sub/vocab.txt"], "writable": False}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tar.gz"]


def test_invoke_endpoint_finds_a_running_endpoint_by_name(recorder_image: str, config: EmulatorConfig) -> None:
    with Endpoint(recorder_image, name="find-me-by-name", config=config):
        out = invoke_endpoint("find-me-by-name", b"hi", content_type="text/plain", config=config)
    assert out["Body"] == b"hi"


def test_concurrent_invocations(recorder_image: str, config: EmulatorConfig) -> None:
    results: list[Any] = []
    with Endpoint(recorder_image, environment={"RECORDER_SLEEP_S": "0.2"}, config=config) as ep:
        threads = [
            threading.Thread(target=lambda i=i: results.append(ep.invoke(str(i).encode())["Body"])) for i in range(8)
        ]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        seen = requests.get(ep.url + "/_requests", timeout=10).json()
    assert sorted(results) == sorted(str(i).encode() for i in range(8))
    assert elapsed < 1.2  # 8 x 0.2 s would be 1.6 s one at a time
    assert max(r["in_flight"] for r in seen) > 1
