"""VariantEndpoint on the real engine with the recorder image: a container per variant, all removed on every path."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB
from emulator.errors import EndpointNotReady
from emulator.serving import VariantEndpoint

pytestmark = pytest.mark.docker


def containers_of(name: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL_JOB}={name}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.split()


def _model(image: str, env: dict[str, str]) -> dict[str, Any]:
    return {"PrimaryContainer": {"Image": image, "Environment": env}}


def test_each_variant_runs_its_own_container_and_close_removes_all(
    recorder_image: str, fast_config: EmulatorConfig
) -> None:
    config = fast_config.with_(stream_logs=False, serving_stop_grace_s=5)
    models = {
        "one": {"ModelName": "one", **_model(recorder_image, {"RECORDER_CONTENT_TYPE": "text/one"})},
        "two": {"ModelName": "two", **_model(recorder_image, {"RECORDER_CONTENT_TYPE": "text/two"})},
    }
    variants = [
        {"VariantName": "One", "ModelName": "one", "InitialVariantWeight": 1.0},
        {"VariantName": "Two", "ModelName": "two", "InitialVariantWeight": 0.0},
    ]
    with VariantEndpoint.from_config(models, variants, config=config) as ep:
        assert len(containers_of(ep.name)) == 2
        assert ep.invoke(b"1")["ContentType"] == "text/one"
        answer = ep.invoke(b"1", target_variant="Two")
        assert (answer["InvokedProductionVariant"], answer["ContentType"]) == ("Two", "text/two")
    assert containers_of(ep.name) == []

    # one variant that never passes /ping fails the whole endpoint, and the healthy variant's container goes too
    broken = {**models, "two": {"ModelName": "two", **_model(recorder_image, {"RECORDER_EXIT_AT_START": "3"})}}
    failing = VariantEndpoint.from_config(broken, variants, config=config)
    with pytest.raises(EndpointNotReady, match="exited with status 3") as info:
        failing.start()
    assert any("production variant Two failed" in note for note in getattr(info.value, "__notes__", []))
    assert containers_of(failing.name) == []
