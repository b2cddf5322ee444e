"""Multi-model endpoints without Docker: the load/unload order of ModelCache against a fake container, staging, the
CreateModel request and the platform's ValidationErrors (emulator/serving/multimodel.py)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any, Unpack

import pytest

from emulator.constants import MODELS_DIR
from emulator.errors import InvalidSpec, ModelError, ValidationError
from emulator.serving import Endpoint, ModelDefinition, serving_endpoint
from emulator.serving.invocations import Body, InvokeHeaders, Invoker, model_error
from emulator.serving.multimodel import ModelCache, ModelStager, MultiModelEndpoint, listed_models, model_name


class FakeContainer(Invoker):
    """A multi-model container's /models API in memory: 507 once ``capacity`` models are loaded; records requests."""

    def __init__(self, capacity: int = 100, loaded: list[str] | None = None) -> None:
        super().__init__("http://127.0.0.1:1")
        self.capacity = capacity
        self.models: dict[str, str] = dict.fromkeys(loaded or [], "")
        self.log: list[str] = []
        self.forget_next_invoke = False

    def call(
        self, method: str, path: str, *, json_body: Any = None, timeout_s: float | None = None
    ) -> tuple[int, bytes]:
        if method == "POST":
            name = json_body["model_name"]
            self.log.append(f"load {name}")
            if name in self.models:
                return 409, b""
            if len(self.models) >= self.capacity:
                return 507, b"out of memory"
            self.models[name] = json_body["url"]
            return 200, b""
        if method == "DELETE":
            name = path.rsplit("/", 1)[1]
            self.log.append(f"unload {name}")
            return (200, b"") if self.models.pop(name, None) is not None else (404, b"")
        models = [{"modelName": n, "modelUrl": u} for n, u in self.models.items()]
        return 200, json.dumps({"models": models}).encode()

    def invoke(  # type: ignore[override]
        self, body: Body, *, path: str = "", timeout_s: float | None = None, **kw: Unpack[InvokeHeaders]
    ) -> dict[str, Any]:
        name = path.split("/")[2]
        self.log.append(f"invoke {name}")
        if self.forget_next_invoke:
            self.forget_next_invoke = False
            self.models.pop(name, None)
        if name not in self.models:
            raise model_error(404, "not loaded", "")
        return {"Body": self.models[name].encode(), "Target": kw.get("target_model")}


def _tar(path: Path, files: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    for key in ("a.tar.gz", "b.tar.gz", "c.tar.gz", "deep/d.tar.gz"):
        _tar(tmp_path / "prefix" / key, {"answer.txt": key.encode()})
    return tmp_path / "prefix"


def _cache(prefix: Path, tmp_path: Path, container: FakeContainer, **kw: Any) -> ModelCache:
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    return ModelCache(container, ModelStager(str(prefix), staging), **kw)


def _n(key: str) -> str:
    return model_name(key)


def test_first_use_loads_then_reuses(prefix: Path, tmp_path: Path) -> None:
    box = FakeContainer()
    cache = _cache(prefix, tmp_path, box)
    cache.invoke(b"x", target_model="a.tar.gz")
    out = cache.invoke(b"x", target_model="a.tar.gz")
    assert box.log == [f"load {_n('a.tar.gz')}", f"invoke {_n('a.tar.gz')}", f"invoke {_n('a.tar.gz')}"]
    assert out["Body"] == f"{MODELS_DIR}/{_n('a.tar.gz')}/model".encode()
    assert out["Target"] == "a.tar.gz"
    staged = tmp_path / "staging" / _n("a.tar.gz") / "model" / "answer.txt"
    assert staged.read_bytes() == b"a.tar.gz"


def test_the_bound_unloads_the_least_recently_used(prefix: Path, tmp_path: Path) -> None:
    box = FakeContainer()
    cache = _cache(prefix, tmp_path, box, max_loaded=2)
    for key in ("a.tar.gz", "b.tar.gz", "a.tar.gz", "c.tar.gz"):
        cache.invoke(b"x", target_model=key)
    assert f"unload {_n('b.tar.gz')}" in box.log
    assert box.log.index(f"unload {_n('b.tar.gz')}") < box.log.index(f"load {_n('c.tar.gz')}")
    assert cache.loaded == [_n("a.tar.gz"), _n("c.tar.gz")]
    assert not (tmp_path / "staging" / _n("b.tar.gz")).exists()


def test_507_unloads_the_least_recently_used_and_retries(prefix: Path, tmp_path: Path) -> None:
    box = FakeContainer(capacity=2)
    cache = _cache(prefix, tmp_path, box)
    for key in ("a.tar.gz", "b.tar.gz", "c.tar.gz"):
        cache.invoke(b"x", target_model=key)
    c = _n("c.tar.gz")
    assert box.log[-4:] == [f"load {c}", f"unload {_n('a.tar.gz')}", f"load {c}", f"invoke {c}"]
    assert sorted(box.models) == sorted([_n("b.tar.gz"), c])


def test_507_with_nothing_to_unload_reaches_the_client(prefix: Path, tmp_path: Path) -> None:
    cache = _cache(prefix, tmp_path, FakeContainer(capacity=0))
    with pytest.raises(ModelError) as err:
        cache.invoke(b"x", target_model="a.tar.gz")
    assert err.value.original_status_code == 507
    assert "Received server error (507)" in str(err.value)
    assert not (tmp_path / "staging" / _n("a.tar.gz")).exists()


def test_cache_disabled_unloads_after_each_invocation(prefix: Path, tmp_path: Path) -> None:
    box = FakeContainer()
    cache = _cache(prefix, tmp_path, box, keep=False)
    cache.invoke(b"x", target_model="a.tar.gz")
    cache.invoke(b"x", target_model="a.tar.gz")
    a = _n("a.tar.gz")
    assert box.log == [f"load {a}", f"invoke {a}", f"unload {a}"] * 2


def test_a_model_the_container_lost_is_loaded_again(prefix: Path, tmp_path: Path) -> None:
    box = FakeContainer()
    cache = _cache(prefix, tmp_path, box)
    cache.invoke(b"x", target_model="a.tar.gz")
    box.forget_next_invoke = True
    cache.invoke(b"x", target_model="a.tar.gz")
    a = _n("a.tar.gz")
    assert box.log == [f"load {a}", f"invoke {a}", f"invoke {a}", f"load {a}", f"invoke {a}"]


def test_loaded_elsewhere_409_counts_as_loaded(prefix: Path, tmp_path: Path) -> None:
    a = _n("a.tar.gz")
    box = FakeContainer(loaded=[a])
    cache = _cache(prefix, tmp_path, box)  # it does not know: another process loaded it
    cache.invoke(b"x", target_model="a.tar.gz")
    assert box.log == [f"load {a}", f"invoke {a}"]
    assert cache.loaded == [a]


def test_listed_models_seed_the_order_of_another_process(prefix: Path, tmp_path: Path) -> None:
    box = FakeContainer(loaded=[_n("a.tar.gz"), _n("b.tar.gz")])
    cache = _cache(prefix, tmp_path, box, max_loaded=2, loaded=listed_models(box))
    cache.invoke(b"x", target_model="c.tar.gz")
    assert box.log[0] == f"unload {_n('a.tar.gz')}"


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("missing.tar.gz", r"^Failed to download model data\(path: .*missing.tar.gz\)\. Please ensure"),
        ("../a.tar.gz", "not a path relative to the endpoint's ModelDataUrl"),
        ("/etc/passwd", "not a path relative"),
        ("a\tb.tar.gz", "must be 1-1024 printable characters"),
        ("x" * 1025, "must be 1-1024 printable characters"),
    ],
)
def test_unknown_or_escaping_target_models_are_validation_errors(
    prefix: Path, tmp_path: Path, key: str, match: str
) -> None:
    box = FakeContainer()
    with pytest.raises(ValidationError, match=match):
        _cache(prefix, tmp_path, box).invoke(b"x", target_model=key)
    assert box.log == []


def test_nested_keys_and_s3_locations(prefix: Path, tmp_path: Path) -> None:
    stager = ModelStager("s3://bucket/models/", tmp_path)
    assert stager.location("deep/d.tar.gz") == "s3://bucket/models/deep/d.tar.gz"
    assert "bucket: bucket, key: models/x.tar.gz" in stager._not_found("s3://bucket/models/x.tar.gz")
    box = FakeContainer()
    _cache(prefix, tmp_path, box).invoke(b"x", target_model="deep/d.tar.gz")
    assert box.log[0] == f"load {_n('deep/d.tar.gz')}"


def test_missing_target_model_is_the_platforms_validation_error(prefix: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"^Request [0-9a-f-]{36} is missing a target model header\.$"):
        _cache(prefix, tmp_path, FakeContainer()).invoke(b"x")


def test_target_model_on_a_single_model_endpoint_is_refused() -> None:
    ep = Endpoint("img", name="single")
    with pytest.raises(ValidationError, match=r"^Endpoint single is not a multi-model endpoint and does not support"):
        ep.invoke(b"x", target_model="a.tar.gz")


def test_create_model_multi_model_makes_a_multi_model_endpoint(prefix: Path) -> None:
    request = {
        "ModelName": "m",
        "PrimaryContainer": {
            "Image": "img",
            "Mode": "MultiModel",
            "ModelDataUrl": str(prefix),
            "MultiModelConfig": {"ModelCacheSetting": "Disabled"},
        },
    }
    model = ModelDefinition.from_request(request)
    assert (model.multi_model, model.model_cache) == (True, False)
    ep = serving_endpoint(request)
    assert isinstance(ep, MultiModelEndpoint)
    assert ep.environment["SAGEMAKER_MULTI_MODEL"] == "true"
    assert (ep.model_prefix, ep.model_cache) == (str(prefix), False)
    single = serving_endpoint({"ModelName": "s", "PrimaryContainer": {"Image": "img"}})
    assert not isinstance(single, MultiModelEndpoint)
    with pytest.raises(InvalidSpec, match="serve it with MultiModelEndpoint"):
        Endpoint.from_model(request)


def test_multi_model_needs_a_prefix() -> None:
    with pytest.raises(InvalidSpec, match="MultiModel container needs the S3 prefix"):
        ModelDefinition.from_request({"ModelName": "m", "PrimaryContainer": {"Image": "i", "Mode": "MultiModel"}})
    with pytest.raises(InvalidSpec, match="needs ModelDataUrl"):
        MultiModelEndpoint("img")


def test_batch_transform_refuses_a_multi_model_model(prefix: Path, tmp_path: Path) -> None:
    from emulator.transform import TransformJob

    model = {"PrimaryContainer": {"Image": "img", "Mode": "MultiModel", "ModelDataUrl": str(prefix)}}
    request = {
        "ModelName": "mme",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(tmp_path)}}},
        "TransformOutput": {"S3OutputPath": str(tmp_path / "out")},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    with pytest.raises(InvalidSpec, match="Mode MultiModel, which batch transform does not support"):
        TransformJob(request, models={"mme": model})


def test_a_loaded_model_answers_while_another_one_loads(prefix: Path, tmp_path: Path) -> None:
    import threading

    class SlowLoads(FakeContainer):
        def __init__(self) -> None:
            super().__init__()
            self.loading = threading.Event()
            self.finish = threading.Event()

        def call(self, method: str, path: str, *, json_body: Any = None, timeout_s: float | None = None) -> Any:
            if method == "POST" and json_body["model_name"] == _n("b.tar.gz"):
                self.loading.set()
                assert self.finish.wait(30)
            return super().call(method, path, json_body=json_body, timeout_s=timeout_s)

    box = SlowLoads()
    cache = _cache(prefix, tmp_path, box)
    cache.invoke(b"x", target_model="a.tar.gz")
    slow = threading.Thread(target=cache.invoke, args=(b"x",), kwargs={"target_model": "b.tar.gz"})
    slow.start()
    assert box.loading.wait(30)
    quick = threading.Thread(target=cache.invoke, args=(b"x",), kwargs={"target_model": "a.tar.gz"})
    quick.start()
    quick.join(30)  # only a bound against a hang: a waiting invocation ends once b is loaded, then fails below
    box.finish.set()
    slow.join(30)
    quick.join(30)
    a, b = _n("a.tar.gz"), _n("b.tar.gz")
    # a's second invocation went through while b's POST /models was still unanswered (logged once answered)
    assert box.log == [f"load {a}", f"invoke {a}", f"invoke {a}", f"load {b}", f"invoke {b}"]
    assert cache.loaded == [a, b]
