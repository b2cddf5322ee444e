"""Inference pipelines, Direct multi-container models, several instances and the model download bound, without an
engine: the fake seam of _fakes.py runs the recorder image's own handler for every container."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from _fakes import CONFIG, IMAGE, FakeDocker

from emulator.api.logs import CloudWatchLogs
from emulator.constants import LABEL_PIPELINE_CONTAINER
from emulator.errors import ContainerFailed, EmulatorError, EndpointNotReady, InvalidSpec, ModelError, ValidationError
from emulator.serving import (
    Endpoint,
    ModelDefinition,
    ModelInstances,
    VariantEndpoint,
    find_endpoint_url,
    serving_endpoint,
)
from emulator.serving.endpoint import model_download_failure

#: 20 KB of environment: within the limit for one container, over it for two together.
BIG_ENV = {f"K{i}": "x" * 1000 for i in range(20)}


@pytest.fixture
def docker() -> FakeDocker:
    return FakeDocker()


def container(env: dict[str, str], hostname: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"Image": IMAGE, "Environment": env}
    if hostname:
        c["ContainerHostname"] = hostname
    return c


def pipeline(*envs: dict[str, str], mode: str | None = None, hostnames: list[str] | None = None) -> ModelDefinition:
    names = hostnames or [None] * len(envs)  # type: ignore[list-item]
    request: dict[str, Any] = {
        "ModelName": "pipe",
        "Containers": [container(env, name) for env, name in zip(envs, names, strict=True)],
    }
    if mode:
        request["InferenceExecutionConfig"] = {"Mode": mode}
    return ModelDefinition.from_request(request)


def recorded(url: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = requests.get(url + "/_requests", timeout=5).json()
    return [r for r in result if r["path"] == "/invocations"]


# -- CreateModel -------------------------------------------------------------------------------------------
def test_create_model_keeps_every_container_in_order_with_its_own_environment() -> None:
    model = pipeline({"A": "1"}, {"B": "2"}, {"C": "3"}, hostnames=["pre", "algo", "post"])
    assert [c.hostname for c in model.containers] == ["pre", "algo", "post"]
    assert [dict(c.environment) for c in model.containers] == [{"A": "1"}, {"B": "2"}, {"C": "3"}]
    assert model.execution_mode == "Serial"


@pytest.mark.parametrize(
    ("containers", "extra", "match"),
    [
        ([container({}, "a"), container({}, "a")], {}, "ContainerHostname 'a' is used twice"),
        ([container(BIG_ENV), container(BIG_ENV)], {}, "40100 bytes of environment, over CreateModel's 32 KB"),
        ([container({})] * 16, {}, "at most 15"),
        ([container({}), container({"1BAD": "v"})], {}, r"Containers\[1\].Environment"),
    ],
)
def test_multi_container_models_that_do_not_fit_the_api_are_refused(
    containers: list[dict[str, Any]], extra: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidSpec, match=match):
        ModelDefinition.from_request({"ModelName": "m", "Containers": containers, **extra})


# -- Serial: the inference pipeline ------------------------------------------------------------------------
def test_the_request_goes_through_every_container_in_order_and_the_last_answer_comes_back(docker: FakeDocker) -> None:
    model = pipeline(
        {"RECORDER_RESPONSE": "sum", "RECORDER_CONTENT_TYPE": "application/x-sums"},
        {"RECORDER_RESPONSE": "lines", "RECORDER_CONTENT_TYPE": "text/x-last"},
    )
    with ModelInstances(model, docker=docker, config=CONFIG, unique_name=True) as ep:
        first, second = (m.url for m in ep.endpoints)
        out = ep.invoke(b"1,2\n3,4\n", content_type="text/csv", accept="text/x-last", custom_attributes="t=1")
        got_first, got_second = recorded(first), recorded(second)
    # the first container summed each line; the second numbered what it got: it got the sums
    assert out["Body"] == b"1:1:3\n1:1:7\n"
    assert out["ContentType"] == "text/x-last"
    assert out["InvokedProductionVariant"] == "AllTraffic"
    assert got_first[0]["headers"]["Content-Type"] == "text/csv"
    assert got_second[0]["headers"]["Content-Type"] == "application/x-sums"  # the first answer's type
    for seen in (got_first[0], got_second[0]):
        assert seen["headers"]["Accept"] == "text/x-last"
        assert seen["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "t=1"
    assert len(docker.containers) == 2
    assert sorted(docker.removed) == sorted(docker.containers)


def test_an_error_stops_the_chain_with_a_model_error_naming_the_container(docker: FakeDocker) -> None:
    model = pipeline({}, {"RECORDER_FAIL_ON": "bad", "RECORDER_FAIL_STATUS": "415"}, {}, hostnames=["a", "b", "c"])
    with ModelInstances(model, docker=docker, config=CONFIG) as ep:
        with pytest.raises(ModelError) as info:
            ep.invoke(b"bad row", content_type="text/csv")
        third = ep.endpoints[2].url
        assert recorded(third) == []
    assert info.value.original_status_code == 415
    assert str(info.value).startswith('Received client error (415) from b with message "bad record: bad row')


def test_unnamed_pipeline_containers_are_container_1_2_in_errors(docker: FakeDocker) -> None:
    model = pipeline({}, {"RECORDER_FAIL_ON": "x", "RECORDER_FAIL_STATUS": "500"})
    with ModelInstances(model, docker=docker, config=CONFIG) as ep, pytest.raises(ModelError, match="from container-2"):
        ep.invoke(b"x")


def test_a_target_container_hostname_on_a_serial_pipeline_is_a_validation_error(docker: FakeDocker) -> None:
    with (
        ModelInstances(pipeline({}, {}), docker=docker, config=CONFIG) as ep,
        pytest.raises(ValidationError, match="not configured for direct invocation"),
    ):
        ep.invoke(b"x", target_container_hostname="container-1")


# -- Direct --------------------------------------------------------------------------------------------------
def test_direct_mode_invokes_only_the_named_container(docker: FakeDocker) -> None:
    model = pipeline(
        {"RECORDER_CONTENT_TYPE": "text/one"},
        {"RECORDER_CONTENT_TYPE": "text/two"},
        mode="Direct",
        hostnames=["one", "two"],
    )
    with ModelInstances(model, docker=docker, config=CONFIG) as ep:
        out = ep.invoke(b"x", target_container_hostname="two")
        with pytest.raises(ValidationError, match=r"give TargetContainerHostname, one of \[one, two\]"):
            ep.invoke(b"x")
        with pytest.raises(ValidationError, match="'three' is not a container"):
            ep.invoke(b"x", target_container_hostname="three")
        first_calls = recorded(ep.endpoints[0].url)
    assert out["ContentType"] == "text/two"
    assert first_calls == []


# -- several instances -------------------------------------------------------------------------------------
def test_instances_take_requests_in_turn_and_describe_counts_them(docker: FakeDocker) -> None:
    model = ModelDefinition.from_request({"ModelName": "m", "PrimaryContainer": container({})})
    ep = serving_endpoint(model, production_variant={"InitialInstanceCount": 3}, docker=docker, config=CONFIG)
    assert isinstance(ep, ModelInstances)
    with ep:
        for _ in range(6):
            ep.invoke(b"x")
        per_instance = [len(recorded(m.url)) for m in ep.endpoints]
        described = ep.describe()["ProductionVariants"][0]
    assert per_instance == [2, 2, 2]
    assert (described["CurrentInstanceCount"], described["DesiredInstanceCount"]) == (3, 3)
    assert len(docker.containers) == 3
    assert ep.describe()["EndpointStatus"] == "Deleted"


def test_one_instance_and_one_container_stays_a_plain_endpoint(docker: FakeDocker) -> None:
    model = ModelDefinition.from_request({"ModelName": "m", "PrimaryContainer": container({})})
    assert type(serving_endpoint(model, docker=docker, config=CONFIG)) is Endpoint


def test_a_pipeline_on_two_instances_runs_every_container_on_each(docker: FakeDocker) -> None:
    variants = [{"VariantName": "AllTraffic", "ModelName": "pipe", "InitialInstanceCount": 2}]
    models = {"pipe": {"Containers": [container({}), container({})]}}
    with VariantEndpoint.from_config(models, variants, docker=docker, config=CONFIG) as ep:
        inner = ep.endpoints["AllTraffic"]
        assert isinstance(inner, ModelInstances)
        ep.invoke(b"a")
        ep.invoke(b"b")
        heads = [[r["head"] for r in recorded(m.url)] for m in inner.endpoints]
        assert ep.describe()["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    # instance 1 (its two containers) saw "a", instance 2 saw "b"
    assert heads == [["a"], ["a"], ["b"], ["b"]]
    assert len(docker.removed) == 4


def test_a_container_that_never_starts_fails_the_whole_and_removes_every_container(docker: FakeDocker) -> None:
    model = pipeline({}, {"RECORDER_EXIT_AT_START": "3"})
    ep = ModelInstances(model, production_variant={"InitialInstanceCount": 2}, docker=docker, config=CONFIG)
    # ContainerFailed: on a loaded machine the fake may report the port unpublished before the exit is seen
    with pytest.raises(ContainerFailed) as info:
        ep.start()
    assert any("container-2 of endpoint" in note for note in getattr(info.value, "__notes__", []))
    assert ep.status == "Failed"
    assert ep.describe()["FailureReason"] == str(info.value).split("\n", 1)[0]
    assert sorted(docker.removed) == sorted(docker.containers)


def test_each_container_logs_into_its_own_stream() -> None:
    lines: list[tuple[str, str, str]] = []

    class Streams(CloudWatchLogs):
        def __init__(self) -> None:
            pass

        def put(self, group: str, stream: str, line: str) -> None:
            lines.append((group, stream, line))

    sink = Streams().endpoint_sink("ep", "AllTraffic")
    sink("ep", "plain")
    sink("ep/i-1/container-2", "from the second container")
    assert lines[0][1].startswith("AllTraffic/i-")
    assert lines[1] == ("/aws/sagemaker/Endpoints/ep", "AllTraffic/i-1/container-2", "from the second container")


# -- ModelDataDownloadTimeoutInSeconds ----------------------------------------------------------------------
def test_the_variant_s_model_download_timeout_reaches_the_endpoint() -> None:
    variant = {"ModelDataDownloadTimeoutInSeconds": 120, "ContainerStartupHealthCheckTimeoutInSeconds": 90}
    ep = Endpoint.from_model({"ModelName": "m", "PrimaryContainer": {"Image": IMAGE}}, production_variant=variant)
    assert (ep.model_download_timeout_s, ep.startup_timeout_s) == (120, 90)
    with pytest.raises(InvalidSpec, match="ModelDataDownloadTimeoutInSeconds: 59 is below the minimum 60"):
        Endpoint.from_model(
            {"ModelName": "m", "PrimaryContainer": {"Image": IMAGE}},
            production_variant={"ModelDataDownloadTimeoutInSeconds": 59},
        )


def test_a_download_over_its_bound_fails_the_start_before_any_container(
    docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    finished = threading.Event()
    works: list[Path] = []

    def never_in_time(self: Endpoint, work: Path) -> Path:
        works.append(work)
        try:
            (work / "model").mkdir()
            release.wait(30)  # a download that outlives its bound
            (work / "model" / "late.bin").write_bytes(b"x")  # fails when the work dir is gone already
            return work / "model"
        finally:
            finished.set()

    monkeypatch.setattr(Endpoint, "_fetch_model", never_in_time)
    ep = Endpoint(IMAGE, docker=docker, config=CONFIG, variant_name="blue", model_download_timeout_s=0.3)
    with pytest.raises(EndpointNotReady) as info:
        ep.start()
    assert str(info.value) == model_download_failure("blue", 0.3)
    assert ep.describe()["FailureReason"] == model_download_failure("blue", 0.3)
    assert docker.containers == {}
    release.set()  # the abandoned download ends; nothing it wrote is left
    assert finished.wait(10)
    for _ in range(200):
        if not works[0].exists():
            break
        threading.Event().wait(0.05)
    assert not works[0].exists()


def test_a_download_within_its_bound_serves(docker: FakeDocker, tmp_path: Path) -> None:
    (tmp_path / "weights.txt").write_text("w")
    model = {"S3DataSource": {"S3Uri": str(tmp_path), "S3DataType": "S3Prefix", "CompressionType": "None"}}
    with Endpoint(IMAGE, model_data=model, docker=docker, config=CONFIG, model_download_timeout_s=60) as ep:
        ep.invoke(b"x")
        mounted = Path(str(docker.only().spec.mounts[1].source))
    assert (mounted / "weights.txt").read_text() == "w"


def test_round_robin_spreads_evenly_over_many_requests(docker: FakeDocker) -> None:
    model = ModelDefinition.from_request({"ModelName": "m", "PrimaryContainer": container({})})
    with ModelInstances(model, instance_count=2, docker=docker, config=CONFIG) as ep:
        served = Counter(ep._next().id for _ in range(10))
    assert sorted(served.values()) == [5, 5]


def test_another_process_is_told_it_cannot_invoke_a_pipeline_by_name(docker: FakeDocker) -> None:
    with ModelInstances(pipeline({}, {}, hostnames=["pre", "algo"]), name="pipe-ep", docker=docker, config=CONFIG):
        labels = [c.spec.labels.get(LABEL_PIPELINE_CONTAINER) for c in docker.containers.values()]
        with pytest.raises(EmulatorError, match="'pipe-ep' is an inference pipeline; another process cannot run"):
            find_endpoint_url("pipe-ep", docker)
    assert sorted(labels) == ["1/2 pre", "2/2 algo"]  # created side by side, in any order


# -- scaling (UpdateEndpointWeightsAndCapacities' DesiredInstanceCount) -------------------------------------
def test_scaling_up_adds_serving_instances_and_down_removes_them(docker: FakeDocker) -> None:
    model = ModelDefinition.from_request({"ModelName": "m", "PrimaryContainer": container({})})
    with ModelInstances(model, docker=docker, config=CONFIG) as ep:
        ep.scale(3)
        assert len(docker.containers) == 3
        for _ in range(3):
            ep.invoke(b"x")
        assert [len(recorded(m.url)) for m in ep.endpoints] == [1, 1, 1]
        assert ep.describe()["ProductionVariants"][0]["CurrentInstanceCount"] == 3
        kept = ep.endpoints[0]
        ep.scale(1)
        assert ep.endpoints == [kept]
        assert len(docker.removed) == 2
        ep.invoke(b"y")
        assert [r["head"] for r in recorded(kept.url)] == ["x", "y"]
        assert ep.describe()["ProductionVariants"][0]["CurrentInstanceCount"] == 1
        with pytest.raises(ValidationError, match="must be 1 or more"):
            ep.scale(0)


class FailingLater(FakeDocker):  # type: ignore[misc]
    """Containers after the first ``healthy`` ones exit at start (a scale-up whose new instance never starts)."""

    def __init__(self, healthy: int) -> None:
        super().__init__()
        self.healthy = healthy

    def create(self, spec: Any) -> str:
        if len(self.containers) >= self.healthy:
            spec.environment = {**spec.environment, "RECORDER_EXIT_AT_START": "4"}
        cid: str = super().create(spec)
        return cid


def test_a_new_instance_that_does_not_start_is_removed_and_the_old_ones_serve_on() -> None:
    docker = FailingLater(healthy=2)
    variants = [{"VariantName": "AllTraffic", "ModelName": "pipe"}]
    models = {"pipe": {"Containers": [container({}), container({})]}}
    with VariantEndpoint.from_config(models, variants, docker=docker, config=CONFIG, scalable=True) as ep:
        with pytest.raises(ContainerFailed) as info:  # the new instance exited (or, under load, seemed unpublished)
            ep.scale({"AllTraffic": 2})
        assert any("the running ones serve on" in n for n in getattr(info.value, "__notes__", []))
        assert ep.invoke(b"still")["Body"] == b"still"
        assert ep.describe_variants()[0]["CurrentInstanceCount"] == 1
        assert ep.describe_variants()[0]["DesiredInstanceCount"] == 1
        assert len(docker.removed) == 2  # the new instance's two containers
    assert sorted(docker.removed) == sorted(docker.containers)
