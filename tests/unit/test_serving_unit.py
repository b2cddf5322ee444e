"""Endpoint and InvokeEndpoint mapping without a Docker engine.

A fake docker seam (_fakes.py) stands in for the engine; each fake "container" runs the recorder image's own request
handler (tests/images/recorder/serve.py, configured by the container's RECORDER_* environment) on a
127.0.0.1 port, so the unit and the integration tests exercise the same server.
"""

from __future__ import annotations

import io
import signal
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from _fakes import CONFIG, IMAGE, FakeDocker

from emulator.constants import LABEL_KIND, LABEL_SESSION, MAX_PAYLOAD_BYTES, MODEL_DIR, OPT_ML
from emulator.errors import EndpointNotReady, InvalidSpec, ModelError, ValidationError
from emulator.serving import Endpoint, ModelDefinition, create_model, delete_model, get_model, invoke_endpoint
from emulator.serving.invocations import TIMEOUT_MESSAGE, Invoker


@pytest.fixture
def docker() -> FakeDocker:
    return FakeDocker()


def endpoint(docker: FakeDocker, env: dict[str, str] | None = None, **kwargs: Any) -> Endpoint:
    kwargs.setdefault("config", CONFIG)
    return Endpoint(IMAGE, environment=env or {}, docker=docker, **kwargs)


def recorded(ep: Endpoint) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = requests.get(ep.url + "/_requests", timeout=5).json()
    return result


# -- invoking -----------------------------------------------------------------------------------------------
def test_invoke_returns_the_invoke_endpoint_shape_with_the_container_content_type(docker: FakeDocker) -> None:
    with endpoint(docker, {"RECORDER_CONTENT_TYPE": "application/x-made-up"}) as ep:
        out = ep.invoke(b"1,2\n", content_type="text/csv", accept="text/csv")
    assert out == {"Body": b"1,2\n", "ContentType": "application/x-made-up", "InvokedProductionVariant": "AllTraffic"}


def test_custom_attributes_come_back_only_when_the_container_sets_them(docker: FakeDocker) -> None:
    with endpoint(docker) as ep:
        with_attrs = ep.invoke(b"x", custom_attributes="trace=1")
        without = ep.invoke(b"x")
    assert with_attrs["CustomAttributes"] == "trace=1"
    assert "CustomAttributes" not in without


def test_only_the_given_invoke_endpoint_headers_reach_the_container(docker: FakeDocker) -> None:
    with endpoint(docker) as ep:
        # the Invoker itself: Endpoint.invoke refuses TargetModel on a single-model endpoint, as the platform does
        ep.invoker.invoke(
            b"x", content_type="text/csv", target_model="m.tar.gz", inference_id="abc", target_variant="AllTraffic"
        )
        ep.invoke(b"y")
        first, second = recorded(ep)
    assert first["headers"]["Content-Type"] == "text/csv"
    assert first["headers"]["X-Amzn-SageMaker-Target-Model"] == "m.tar.gz"
    assert first["headers"]["X-Amzn-SageMaker-Inference-Id"] == "abc"
    assert first["headers"]["X-Amzn-SageMaker-Target-Variant"] == "AllTraffic"
    assert "Accept" not in second["headers"]  # no requests default such as Accept: */*
    assert "Content-Type" not in second["headers"]


@pytest.mark.parametrize(("status", "kind"), [(400, "client"), (404, "client"), (500, "server"), (503, "server")])
def test_4xx_and_5xx_become_model_error_worded_like_the_platform(docker: FakeDocker, status: int, kind: str) -> None:
    env = {"RECORDER_FAIL_ON": "oops", "RECORDER_FAIL_STATUS": str(status)}
    with endpoint(docker, env) as ep, pytest.raises(ModelError) as info:
        ep.invoke(b"1,oops\n")
    err = info.value
    assert err.status_code == 424
    assert err.original_status_code == status
    assert err.original_message == "bad record: 1,oops"
    assert str(err).startswith(f'Received {kind} error ({status}) from primary with message "bad record: 1,oops". ')
    assert "docker logs" in str(err)
    assert err.to_dict()["OriginalStatusCode"] == status


def test_a_request_over_6_mib_is_refused_before_it_is_sent(docker: FakeDocker) -> None:
    with endpoint(docker) as ep:
        with pytest.raises(ValidationError, match="6291457 bytes, over InvokeEndpoint's limit of 6291456"):
            ep.invoke(b"x" * (MAX_PAYLOAD_BYTES + 1))
        with pytest.raises(ValidationError, match="over InvokeEndpoint's limit"):
            ep.invoke(io.BytesIO(b"x" * (MAX_PAYLOAD_BYTES + 10)))
        assert recorded(ep) == []
        assert len(ep.invoke(b"x" * MAX_PAYLOAD_BYTES)["Body"]) == MAX_PAYLOAD_BYTES


def test_a_response_over_6_mib_is_a_validation_error(docker: FakeDocker) -> None:
    with (
        endpoint(docker, {"RECORDER_RESPONSE_BYTES": str(MAX_PAYLOAD_BYTES + 1)}) as ep,
        pytest.raises(ValidationError, match="response body is over 6291456 bytes"),
    ):
        ep.invoke(b"x")


def test_no_answer_in_time_is_model_error_with_status_0(docker: FakeDocker) -> None:
    with endpoint(docker, {"RECORDER_SLEEP_S": "2"}, invocation_timeout_s=0.3) as ep:
        start = time.monotonic()
        with pytest.raises(ModelError) as info:
            ep.invoke(b"x")
        assert time.monotonic() - start < 1.5
    assert info.value.original_status_code == 0
    assert info.value.original_message == TIMEOUT_MESSAGE
    assert str(info.value).startswith(f'Received server error (0) from primary with message "{TIMEOUT_MESSAGE}"')


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"custom_attributes": "a" * 1025}, "CustomAttributes: 1025 characters, at most 1024"),
        ({"content_type": "text/csv; é"}, "not ASCII"),
        ({"inference_id": ""}, "InferenceId: 0 characters, at least 1"),
    ],
)
def test_invalid_headers_are_validation_errors(docker: FakeDocker, kwargs: dict[str, str], match: str) -> None:
    with endpoint(docker) as ep, pytest.raises(ValidationError, match=match):
        ep.invoke(b"x", **kwargs)  # type: ignore[arg-type]


def test_invoke_is_safe_from_many_threads(docker: FakeDocker) -> None:
    errors: list[BaseException] = []
    with endpoint(docker) as ep:

        def work(i: int) -> None:
            try:
                for j in range(20):
                    body = f"{i}-{j}".encode()
                    assert ep.invoke(body)["Body"] == body
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(recorded(ep)) == 160
    assert errors == []


def test_invoke_endpoint_by_url(docker: FakeDocker) -> None:
    with endpoint(docker) as ep:
        out = invoke_endpoint(ep.url, b"hello", content_type="text/plain")
    assert out["Body"] == b"hello"
    assert out["ContentType"] == "text/plain"


def test_invoker_connection_errors_are_model_errors() -> None:
    invoker = Invoker("http://127.0.0.1:9", timeout_s=1)  # discard port: nothing listens
    with pytest.raises(ModelError, match="could not reach the container") as info:
        invoker.invoke(b"x")
    assert info.value.original_status_code == 0


# -- the container's lifecycle ------------------------------------------------------------------------------
def test_container_spec_runs_serve_with_labels_and_a_published_port(docker: FakeDocker) -> None:
    with endpoint(docker, {"A": "1"}, name="my-endpoint", instance_type="ml.m5.large") as ep:
        spec = docker.only().spec
        assert ep.ready_after_s is not None
        assert ep.status == "InService"
    assert spec.command == ["serve"]
    assert spec.entrypoint is None
    assert spec.publish_port == 8080
    assert spec.environment == {"A": "1"}
    assert spec.labels[LABEL_KIND] == "endpoint"
    assert LABEL_SESSION in spec.labels
    assert spec.nano_cpus
    assert spec.mem_limit
    assert [(m.target, m.source is None, m.read_only) for m in spec.mounts] == [
        (OPT_ML, True, False),
        (MODEL_DIR, False, True),
    ]
    assert ep.status == "Deleted"


def test_readiness_waits_for_ping_200(docker: FakeDocker) -> None:
    ep = endpoint(docker, {"RECORDER_PING_STATUS": "503"})

    def heal() -> None:
        time.sleep(0.3)
        docker.only().recorder.ENV["RECORDER_PING_STATUS"] = "200"

    threading.Thread(target=heal, daemon=True).start()
    with ep:
        assert ep.ready_after_s is not None
        assert 0.25 < ep.ready_after_s < 2


def test_a_container_that_exits_fails_readiness_at_once_with_its_log_tail(docker: FakeDocker) -> None:
    start = time.monotonic()
    with pytest.raises(EndpointNotReady) as info:
        endpoint(docker, {"RECORDER_EXIT_AT_START": "3"}, startup_timeout_s=60).start()
    assert time.monotonic() - start < 5
    err = info.value
    assert "exited with status 3" in str(err)
    assert "Hint: does `serve` listen on 0.0.0.0:8080" in str(err)
    assert "exiting at start" in str(err)
    assert "exiting at start" in err.log_tail
    assert any("exiting at start" in note for note in err.__notes__)
    assert list(docker.containers) == docker.removed


def test_readiness_timeout_names_the_last_answer(docker: FakeDocker) -> None:
    start = time.monotonic()
    with pytest.raises(EndpointNotReady, match=r"within 0.5s \(last answer: HTTP 500\); Hint: does `serve`"):
        endpoint(docker, {"RECORDER_PING_STATUS": "500"}, startup_timeout_s=0.5).start()
    assert time.monotonic() - start < 3
    assert list(docker.containers) == docker.removed


def test_close_sends_sigterm_then_removes(docker: FakeDocker) -> None:
    with endpoint(docker) as ep:
        pass
    c = docker.only()
    assert c.signals == [signal.SIGTERM]
    assert docker.removed == list(docker.containers)
    assert ep.stop_result is not None
    assert not ep.stop_result.killed
    assert ep.stop_result.exit_code == 0


def test_a_container_that_ignores_sigterm_is_killed_after_the_grace_period(docker: FakeDocker) -> None:
    with endpoint(docker, {"RECORDER_IGNORE_SIGTERM": "1"}) as ep:
        pass
    assert docker.only().signals == [signal.SIGTERM, signal.SIGKILL]
    assert ep.stop_result is not None
    assert ep.stop_result.killed
    assert 0.4 < ep.stop_result.seconds < 3
    assert docker.removed == list(docker.containers)


def test_the_container_is_removed_when_the_body_raises(docker: FakeDocker) -> None:
    with pytest.raises(RuntimeError), endpoint(docker):
        raise RuntimeError("user code failed")
    assert docker.removed == list(docker.containers)


def test_keep_containers_stops_but_keeps(docker: FakeDocker) -> None:
    with endpoint(docker, config=CONFIG.with_(keep_containers=True)):
        pass
    assert docker.removed == []
    assert docker.only().exited.is_set()


def test_log_lines_reach_the_sink(docker: FakeDocker) -> None:
    lines: list[tuple[str, str]] = []
    with endpoint(docker, name="sinky", log_sink=lambda host, line: lines.append((host, line))) as ep:
        ep.invoke(b"x")
    assert ("sinky", "recorder: listening") in lines


# -- models -------------------------------------------------------------------------------------------------
def _tarball(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        data = b"weights"
        info = tarfile.TarInfo("model.bin")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def test_a_model_tarball_is_extracted_into_a_temp_dir_not_next_to_it(docker: FakeDocker, tmp_path: Path) -> None:
    archive = _tarball(tmp_path / "model.tar.gz")
    with endpoint(docker, model_data=str(archive)):
        source = docker.only().spec.mounts[1].source
        assert source is not None
        assert (Path(source) / "model.bin").read_bytes() == b"weights"
        assert not Path(source).is_relative_to(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tar.gz"]
    assert not Path(source).exists()


def test_a_model_dir_is_mounted_as_is_read_only(docker: FakeDocker, tmp_path: Path) -> None:
    with endpoint(docker, model_data=tmp_path):
        mount = docker.only().spec.mounts[1]
    assert (mount.source, mount.target, mount.read_only) == (str(tmp_path), MODEL_DIR, True)


def test_a_training_job_result_gives_its_model(docker: FakeDocker, tmp_path: Path) -> None:
    archive = _tarball(tmp_path / "model.tar.gz")
    job = {
        "TrainingJobName": "t",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": str(archive)},
    }
    with endpoint(docker, model_data=job):
        source = docker.only().spec.mounts[1].source
        assert source is not None
        assert (Path(source) / "model.bin").exists()
    with pytest.raises(InvalidSpec, match="training job t is Failed"):
        endpoint(docker, model_data={**job, "TrainingJobStatus": "Failed"}).start()


def test_from_model_uses_create_model_and_the_production_variant(docker: FakeDocker, tmp_path: Path) -> None:
    request = {
        "ModelName": "m1",
        "PrimaryContainer": {
            "Image": IMAGE,
            "Environment": {"K": "V"},
            "ModelDataSource": {
                "S3DataSource": {"S3Uri": str(tmp_path), "S3DataType": "S3Prefix", "CompressionType": "None"}
            },
        },
    }
    variant = {"VariantName": "blue", "InstanceType": "ml.c5.large", "ContainerStartupHealthCheckTimeoutInSeconds": 90}
    ep = Endpoint.from_model(request, production_variant=variant, docker=docker, config=CONFIG)
    assert ep.startup_timeout_s == 90
    with ep:
        assert ep.invoke(b"x")["InvokedProductionVariant"] == "blue"
        spec = docker.only().spec
    assert spec.environment == {"K": "V"}
    assert spec.mounts[1].source == str(tmp_path)


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (
            {
                "ModelName": "m",
                "Containers": [{"Image": "a"}, {"Image": "b"}],
                "InferenceExecutionConfig": {"Mode": "Direct"},
            },
            "Direct needs a ContainerHostname on every container",
        ),
        ({"ModelName": "m", "Containers": [{"Image": "a"}, {}]}, r"give Containers\[1\].Image"),
        ({"ModelName": "m", "PrimaryContainer": {"Image": "a", "Mode": "MultiModel"}}, "MultiModel"),
        ({"ModelName": "m", "PrimaryContainer": {"Image": "a", "Environment": {"K": 1}}}, "expected a string"),
        ({"ModelName": "m"}, "PrimaryContainer is missing"),
    ],
)
def test_unsupported_models_are_refused(request_: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidSpec, match=match):
        ModelDefinition.from_request(request_)


def test_startup_health_check_timeout_is_checked_against_the_api_range() -> None:
    with pytest.raises(InvalidSpec, match="ContainerStartupHealthCheckTimeoutInSeconds: 30 is below the minimum 60"):
        Endpoint.from_model(
            {"ModelName": "m", "PrimaryContainer": {"Image": IMAGE}},
            production_variant={"ContainerStartupHealthCheckTimeoutInSeconds": 30},
        )


def test_the_model_registry() -> None:
    create_model({"ModelName": "registered", "PrimaryContainer": {"Image": IMAGE}})
    try:
        assert get_model("registered").image == IMAGE
        with pytest.raises(InvalidSpec, match="exists already"):
            create_model({"ModelName": "registered", "PrimaryContainer": {"Image": IMAGE}})
    finally:
        delete_model("registered")
    with pytest.raises(InvalidSpec, match="no such model"):
        get_model("registered")
    assert get_model("x", {"x": {"PrimaryContainer": {"Image": "i"}}}).image == "i"
