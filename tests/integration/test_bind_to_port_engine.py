"""SAGEMAKER_BIND_TO_PORT on the real engine: a labelled image (tests/images/bindport) is pinged and invoked on
the port the emulator chose, and its extra port stays inside SAGEMAKER_SAFE_PORT_RANGE."""

from __future__ import annotations

import json

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import SAFE_PORT_RANGE, SERVING_PORT
from emulator.serving import Endpoint

pytestmark = pytest.mark.docker


def test_a_labelled_image_serves_on_the_chosen_port_with_extra_ports_in_the_safe_range(
    bindport_image: str, fast_config: EmulatorConfig
) -> None:
    config = fast_config.with_(stream_logs=False, serving_stop_grace_s=5)
    with Endpoint(bindport_image, config=config) as ep:
        assert ep.container_port != SERVING_PORT
        answer = json.loads(ep.invoke(b"{}", content_type="application/json")["Body"])
        assert answer["port"] == ep.container_port
        assert answer["env"]["SAGEMAKER_BIND_TO_PORT"] == str(ep.container_port)
        assert answer["env"]["SAGEMAKER_SAFE_PORT_RANGE"] == f"{SAFE_PORT_RANGE[0]}-{SAFE_PORT_RANGE[1]}"
        ports = {s.port for s in ep.listeners() or []}
        assert ports == {ep.container_port, SAFE_PORT_RANGE[0]}, ports
