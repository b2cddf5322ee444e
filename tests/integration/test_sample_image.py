"""The sample algorithm image, for real: build it, then train / serve / stop containers.

Every container gets the label ``sagemaker-emulator.test=1`` and is removed at the end; the serve
container publishes its port on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.docker

IMAGE = os.environ.get("SAMPLE_IMAGE", "sagemaker-emulator-sample:latest")
TEST_LABEL = "sagemaker-emulator.test=1"
GOOD_ROWS = "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def sample_image(docker_available: str, image_builder: ModuleType) -> str:
    """The sample image as tests/conftest.py builds it, but tagged $SAMPLE_IMAGE when that is set."""
    try:
        image: str = image_builder.ensure_sample_image(IMAGE)
    except image_builder.ImageBuildError as exc:
        pytest.fail(f"cannot build the sample image: {exc}")
    return image


def _user_args() -> list[str]:
    # SageMaker runs the image as root; here, files written to bind mounts should belong to the test user.
    return [] if os.getuid() == 0 else ["--user", f"{os.getuid()}:{os.getgid()}"]


def run_container(
    image: str, *args: str, mounts: dict[Path, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``docker run --rm`` with bind mounts; the container is removed even on a timeout."""
    name = f"sample-test-{uuid.uuid4().hex[:12]}"
    cmd = ["run", "--rm", "--name", name, "--label", TEST_LABEL, "--network", "none", *_user_args()]
    for host, target in mounts.items():
        cmd += ["-v", f"{host}:{target}"]
    try:
        return docker(*cmd, image, *args, timeout=timeout, check=False)
    finally:
        docker("rm", "-f", name, check=False)


@pytest.fixture(scope="session")
def iris_splits(sample_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw iris (written by the image's own dataset helper), split by the image's `processing`."""
    root = tmp_path_factory.mktemp("processing")
    (root / "input" / "raw").mkdir(parents=True)
    (root / "output").mkdir()
    made = run_container(
        sample_image,
        "python",
        "-m",
        "iris_tree.dataset",
        "/opt/ml/processing/input/raw/iris.csv",
        mounts={root / "input": "/opt/ml/processing/input"},
    )
    assert made.returncode == 0, made.stderr
    name = f"sample-test-{uuid.uuid4().hex[:12]}"
    try:
        result = docker(
            "run",
            "--rm",
            "--name",
            name,
            "--label",
            TEST_LABEL,
            "--network",
            "none",
            *_user_args(),
            "-v",
            f"{root / 'input'}:/opt/ml/processing/input",
            "-v",
            f"{root / 'output'}:/opt/ml/processing/output",
            "--entrypoint",
            "processing",
            sample_image,
            "--test-fraction",
            "0.2",
            "--seed",
            "1",
            timeout=180,
            check=False,
        )
    finally:
        docker("rm", "-f", name, check=False)
    assert result.returncode == 0, result.stderr
    assert len((root / "output" / "train" / "train.csv").read_text().splitlines()) == 120
    assert len((root / "output" / "test" / "test.csv").read_text().splitlines()) == 30
    return root / "output"


def make_ml_tree(root: Path, splits: Path, hyperparameters: dict[str, str], *, train: bool = True) -> Path:
    for sub in ("input/config", "model", "output", "input/data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (root / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
    )
    channels = {"validation": splits / "test" / "test.csv"}
    if train:
        channels["train"] = splits / "train" / "train.csv"
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({name: {"ContentType": "text/csv", "TrainingInputMode": "File"} for name in channels})
    )
    for name, source in channels.items():
        (root / "input" / "data" / name).mkdir()
        shutil.copy(source, root / "input" / "data" / name / source.name)
    return root


@pytest.fixture(scope="session")
def trained_model(sample_image: str, iris_splits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_ml_tree(tmp_path_factory.mktemp("ml"), iris_splits, {"max_depth": "3", "criterion": "entropy"})
    result = run_container(sample_image, "train", mounts={root: "/opt/ml"})
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "train_accuracy=" in result.stdout
    assert "validation_accuracy=" in result.stdout
    return root / "model"


def test_train_writes_model(trained_model: Path) -> None:
    assert (trained_model / "model.joblib").stat().st_size > 0
    metadata = json.loads((trained_model / "metadata.json").read_text())
    assert metadata["classes"] == ["setosa", "versicolor", "virginica"]
    assert metadata["hyperparameters"]["max_depth"] == 3


def test_train_without_train_channel_fails_readably(sample_image: str, iris_splits: Path, tmp_path: Path) -> None:
    root = make_ml_tree(tmp_path / "ml", iris_splits, {}, train=False)
    result = run_container(sample_image, "train", mounts={root: "/opt/ml"})
    assert result.returncode != 0
    failure = (root / "output" / "failure").read_text(encoding="utf-8")
    assert failure.startswith("channel 'train' is missing")
    assert "channel 'train' is missing" in result.stderr
    assert not (root / "model" / "model.joblib").exists()


def test_train_bad_hyperparameter_exit_2(sample_image: str, iris_splits: Path, tmp_path: Path) -> None:
    root = make_ml_tree(tmp_path / "ml", iris_splits, {"max_depth": "deep"})
    result = run_container(sample_image, "train", mounts={root: "/opt/ml"})
    assert result.returncode == 2
    assert "max_depth" in (root / "output" / "failure").read_text(encoding="utf-8")


@pytest.fixture
def server(sample_image: str, trained_model: Path) -> Iterator[tuple[str, str]]:
    """A running `serve` container on 127.0.0.1:<port chosen by docker>; yields (container id, base URL)."""
    name = f"sample-test-{uuid.uuid4().hex[:12]}"
    started = docker(
        "run",
        "-d",
        "--name",
        name,
        "--label",
        TEST_LABEL,
        "-p",
        "127.0.0.1::8080",
        "-v",
        f"{trained_model}:/opt/ml/model:ro",
        sample_image,
        "serve",
    )
    container = started.stdout.strip()
    try:
        port_line = docker("port", container, "8080/tcp").stdout.strip().splitlines()[0]
        host, _, port = port_line.rpartition(":")
        assert host == "127.0.0.1", port_line
        yield container, f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "-f", container, check=False)


def wait_for_ping(base_url: str, container: str, limit: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/ping", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    logs = docker("logs", container, check=False)
    pytest.fail(f"/ping never answered 200 within {limit:.0f} s; logs:\n{logs.stdout}\n{logs.stderr}")


def test_serve_invocations_and_sigterm(server: tuple[str, str]) -> None:
    import requests

    container, base_url = server
    wait_for_ping(base_url, container)
    response = requests.get(f"{base_url}/ping", timeout=10)
    assert response.status_code == 200
    assert response.content == b""

    response = requests.post(
        f"{base_url}/invocations", data=GOOD_ROWS, headers={"Content-Type": "text/csv"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert len(lines) == 3
    assert all(len(line.split(",")) == 3 for line in lines)

    bad = requests.post(f"{base_url}/invocations", data="5.1,3.5\n", headers={"Content-Type": "text/csv"}, timeout=10)
    assert bad.status_code == 400
    assert "expected 4 numeric features" in bad.text
    again = requests.post(
        f"{base_url}/invocations", data=GOOD_ROWS, headers={"Content-Type": "text/csv; charset=utf-8"}, timeout=10
    )
    assert again.status_code == 200

    assert (
        requests.post(
            f"{base_url}/invocations", data="{}", headers={"Content-Type": "application/json"}, timeout=10
        ).status_code
        == 415
    )
    params = requests.get(f"{base_url}/execution-parameters", timeout=10).json()
    assert params["BatchStrategy"] == "MULTI_RECORD"
    assert params["MaxPayloadInMB"] == 6

    started = time.monotonic()
    docker("stop", "-t", "30", container, timeout=60)
    elapsed = time.monotonic() - started
    state = json.loads(docker("inspect", "-f", "{{json .State}}", container).stdout)
    assert elapsed < 30, f"docker stop took {elapsed:.1f} s"
    assert state["Running"] is False
    assert state["ExitCode"] == 0, state
    assert state["OOMKilled"] is False
