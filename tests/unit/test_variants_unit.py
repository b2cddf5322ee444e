"""VariantEndpoint without an engine: routing, weights and the start/close of every variant, over fake endpoints."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, cast

import pytest

from emulator.errors import EndpointNotReady, InvalidSpec, ValidationError
from emulator.serving import Endpoint, VariantEndpoint


class FakeEndpoint:
    """Stands in for one variant's Endpoint: records what the VariantEndpoint asks of it."""

    def __init__(self, variant: str, fail: bool = False) -> None:
        self.variant, self.fail = variant, fail
        self.started = self.closed = False
        self.stops: list[float | None] = []
        self.calls: list[dict[str, Any]] = []
        self.status = "Creating"

    def start(self) -> FakeEndpoint:
        if self.fail:
            raise EndpointNotReady(f"variant {self.variant} did not pass the ping health check")
        self.started, self.status = True, "InService"
        return self

    def stop(self, grace_s: float | None = None) -> Any:
        self.stops.append(grace_s)

    def close(self) -> None:
        self.closed = True

    def invoke(self, body: bytes, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Body": body, "InvokedProductionVariant": self.variant}


def make(weights: dict[str, float], failing: frozenset[str] = frozenset(), seed: int = 7) -> VariantEndpoint:
    pairs = [
        ({"VariantName": n, "InitialVariantWeight": w}, cast(Endpoint, FakeEndpoint(n, n in failing)))
        for n, w in weights.items()
    ]
    return VariantEndpoint("ep", pairs, rng=random.Random(seed))


def fake(ep: VariantEndpoint, name: str) -> FakeEndpoint:
    return cast(FakeEndpoint, ep.endpoints[name])


def test_target_variant_routes_to_that_variant_and_passes_the_header_on() -> None:
    ep = make({"a": 1.0, "b": 0.0})
    out = ep.invoke(b"x", content_type="text/csv", target_variant="b")
    assert out["InvokedProductionVariant"] == "b"
    assert fake(ep, "b").calls[0]["target_variant"] == "b"
    assert fake(ep, "a").calls == []


def test_an_unknown_target_variant_is_a_validation_error_naming_the_variants() -> None:
    ep = make({"a": 1.0, "b": 1.0})
    with pytest.raises(ValidationError, match=r"The variant zz was not found for endpoint ep.*\[a, b\]"):
        ep.invoke(b"x", target_variant="zz")


def test_weighted_routing_never_picks_a_weight_of_zero_and_follows_the_weights() -> None:
    ep = make({"a": 3.0, "b": 1.0, "off": 0.0})
    picks = Counter(ep.choose() for _ in range(400))
    assert picks["off"] == 0
    assert picks["a"] > picks["b"] > 0


def test_update_weights_moves_all_traffic_and_describe_shows_it() -> None:
    ep = make({"a": 1.0, "b": 1.0})
    ep.update_weights({"a": 0.0, "b": 2.0}, {"b": 2})
    assert {ep.choose() for _ in range(50)} == {"b"}
    rows = {r["VariantName"]: r for r in ep.describe_variants()}
    assert rows["a"]["CurrentWeight"] == 0.0
    assert rows["a"]["DesiredWeight"] == 0.0
    assert rows["b"]["CurrentWeight"] == 2.0
    assert rows["b"]["CurrentInstanceCount"] == 2


@pytest.mark.parametrize(
    ("desired", "message"),
    [({"zz": 1.0}, r"\[zz\] are not present"), ({"a": 0.0, "b": 0.0}, "weight above 0"), ({"a": -1.0}, "negative")],
)
def test_update_weights_refuses_what_the_platform_refuses(desired: dict[str, float], message: str) -> None:
    ep = make({"a": 1.0, "b": 1.0})
    with pytest.raises(ValidationError, match=message):
        ep.update_weights(desired)
    assert ep.weights == {"a": 1.0, "b": 1.0}


def test_all_weights_zero_or_a_name_twice_is_refused_up_front() -> None:
    with pytest.raises(InvalidSpec, match="weight above 0"):
        make({"a": 0.0, "b": 0.0})
    twice = [({"VariantName": "a"}, cast(Endpoint, FakeEndpoint("a"))) for _ in range(2)]
    with pytest.raises(InvalidSpec, match="used twice"):
        VariantEndpoint("ep", twice)


def test_one_failing_variant_fails_the_start_and_closes_every_variant() -> None:
    ep = make({"a": 1.0, "bad": 1.0, "c": 1.0}, failing=frozenset({"bad"}))
    with pytest.raises(EndpointNotReady, match="variant bad") as info:
        ep.start()
    assert any("production variant bad failed" in n for n in getattr(info.value, "__notes__", []))
    assert all(fake(ep, n).closed for n in ("a", "bad", "c"))
    assert fake(ep, "a").stops == [0]
    assert fake(ep, "c").stops == [0]


def test_describe_variants_before_service_reports_no_instances() -> None:
    ep = make({"a": 1.0})
    assert ep.describe_variants(in_service=False)[0]["CurrentInstanceCount"] == 0
