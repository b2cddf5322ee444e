"""SAGEMAKER_BIND_TO_PORT / SAGEMAKER_SAFE_PORT_RANGE: which images get them, and what the container is given."""

from __future__ import annotations

import random
from typing import cast

import pytest
from _fakes import CONFIG, IMAGE, FakeDocker

from emulator.constants import BIND_TO_PORT_RANGE, LABEL_ACCEPT_BIND_TO_PORT, SAFE_PORT_RANGE, SERVING_PORT
from emulator.runtime.docker import DockerSeam, ImageInfo
from emulator.serving import Endpoint
from emulator.serving.endpoint import serving_port


class LabelledDocker(FakeDocker):  # type: ignore[misc]
    """A fake engine whose image carries the given labels."""

    def __init__(self, labels: dict[str, str]) -> None:
        super().__init__()
        self.labels = labels

    def image_info(self, image: str) -> ImageInfo:
        return ImageInfo(id="sha256:fake", entrypoint=None, cmd=None, user="", labels=self.labels, env=[])


@pytest.mark.parametrize("labels", [{}, {LABEL_ACCEPT_BIND_TO_PORT: "false"}, {"other": "true"}])
def test_an_image_without_the_label_keeps_8080_and_gets_neither_variable(labels: dict[str, str]) -> None:
    assert serving_port(labels) == (SERVING_PORT, {})


@pytest.mark.parametrize("value", ["true", "True", " TRUE "])
def test_a_labelled_image_gets_a_port_in_range_that_is_not_8080_and_the_safe_range(value: str) -> None:
    ports = set()
    for seed in range(20):
        port, env = serving_port({LABEL_ACCEPT_BIND_TO_PORT: value}, random.Random(seed))
        low, high = BIND_TO_PORT_RANGE
        assert low <= port <= high
        assert port != SERVING_PORT
        assert env["SAGEMAKER_BIND_TO_PORT"] == str(port)
        safe_low, safe_high = (int(p) for p in env["SAGEMAKER_SAFE_PORT_RANGE"].split("-"))
        assert (safe_low, safe_high) == SAFE_PORT_RANGE
        assert not safe_low <= port <= safe_high  # extra ports never collide with the bind port
        ports.add(port)
    assert len(ports) > 1  # drawn, so an image that hard-codes one port is caught


def test_the_endpoint_publishes_and_pings_the_chosen_port_and_sets_both_variables() -> None:
    docker = LabelledDocker({LABEL_ACCEPT_BIND_TO_PORT: "true"})
    ep = Endpoint(IMAGE, docker=cast(DockerSeam, docker), config=CONFIG, environment={"SAGEMAKER_BIND_TO_PORT": "1"})
    with ep:
        spec = docker.only().spec
        assert spec.publish_port == ep.container_port != SERVING_PORT
        assert spec.environment["SAGEMAKER_BIND_TO_PORT"] == str(ep.container_port)  # the platform's value wins
        assert spec.environment["SAGEMAKER_SAFE_PORT_RANGE"] == f"{SAFE_PORT_RANGE[0]}-{SAFE_PORT_RANGE[1]}"
        assert ep.invoke(b"1")["Body"] == b"1"


def test_an_unlabelled_endpoint_publishes_8080_without_the_variables() -> None:
    docker = FakeDocker()
    with Endpoint(IMAGE, docker=cast(DockerSeam, docker), config=CONFIG) as ep:
        spec = docker.only().spec
        assert (spec.publish_port, ep.container_port) == (SERVING_PORT, SERVING_PORT)
        assert not {"SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_SAFE_PORT_RANGE"} & set(spec.environment)
