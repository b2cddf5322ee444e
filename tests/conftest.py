"""Shared fixtures for the project's own tests (unit and ``docker``-marked integration tests).

* ``docker_available`` (session): pings the engine once; tests that need it are skipped with the reason.
* ``probe_image``, ``recorder_image``, ``bindport_image`` (session): ``tests/images/<name>`` built (or reused) as
  ``sagemaker-emulator-test/<name>:latest``; ``sample_image`` (session): ``sample_algorithm/`` as
  ``sagemaker-emulator-sample:latest``; ``base_image``: the Python base they build on. All builds are
  tests/images/build.py's (``image_builder``, session, is that module). ``iris_csv`` (session): the raw iris
  CSV, written by a processing job on the sample image.
* ``fast_config`` (session): an :class:`EmulatorConfig` with short stop grace periods and a private work dir.
* ``emulator_pids`` (session): a set; add the pid of every ``python -m emulator`` subprocess a test starts, so
  the session-end check below also covers what those processes created.
* An autouse session check: at the end, no container or network labelled ``sagemaker-emulator.managed``
  that this session (or a tracked subprocess) created may be left; leftovers are removed and reported
  as an error, because a leak is a real bug in the emulator.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_MANAGED, LABEL_PID, LABEL_SESSION
from emulator.runtime import session as _session

TESTS_DIR = Path(__file__).resolve().parent
#: Seconds between SIGTERM and SIGKILL in tests (the platform's 120 s / 30 s would make stop tests slow).
FAST_STOP_GRACE_S = 2.0
#: Readiness timeout for endpoints in tests: long enough for a slow CI machine, short enough to fail fast.
FAST_STARTUP_TIMEOUT_S = 60.0

_docker_used = False


def _docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@pytest.fixture(scope="session")
def docker_available() -> str:
    """Ping the Docker engine once per session; skip the requesting tests when it does not answer.

    Returns the engine address. Tests that create containers must depend on this fixture (directly or
    through ``probe_image``), which also arms the session-end leak check.
    """
    global _docker_used
    from emulator.errors import DockerUnavailable
    from emulator.runtime.docker import DockerClient

    try:
        DockerClient(EmulatorConfig.from_env())
    except DockerUnavailable as exc:
        pytest.skip(f"Docker daemon not reachable at {_docker_host()}: {exc}")
    _docker_used = True
    return _docker_host()


def _load_image_builder() -> ModuleType:
    """tests/images/build.py, loaded once (tests/broken_images/build.py finds the same module in sys.modules)."""
    name = "_sm_emulator_test_image_build"
    if name not in sys.modules:
        path = TESTS_DIR / "images" / "build.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None or not path.is_file():
            pytest.fail(f"{path} is missing: it builds the images the integration tests run")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def image_builder() -> ModuleType:
    """tests/images/build.py as a module: ``base_image()``, ``build_image(...)``, ``ImageBuildError``, ..."""
    return _load_image_builder()


def _built(what: str, build: Callable[[], str]) -> str:
    try:
        return build()
    except _load_image_builder().ImageBuildError as exc:
        pytest.fail(f"cannot build {what}: {exc}")


@pytest.fixture(scope="session")
def probe_image(docker_available: str, image_builder: ModuleType) -> str:
    """The probe image (tests/images/probe), rebuilt only when its files changed."""
    return _built("the probe image", lambda: image_builder.build_test_image("probe"))


@pytest.fixture(scope="session")
def recorder_image(docker_available: str, image_builder: ModuleType) -> str:
    """The recorder image (tests/images/recorder), rebuilt only when its files changed."""
    return _built("the recorder image", lambda: image_builder.build_test_image("recorder"))


@pytest.fixture(scope="session")
def bindport_image(docker_available: str, image_builder: ModuleType) -> str:
    """The bindport image (tests/images/bindport: labelled accept-bind-to-port=true), rebuilt when its files changed."""
    return _built("the bindport image", lambda: image_builder.build_test_image("bindport"))


@pytest.fixture(scope="session")
def sample_image(docker_available: str, image_builder: ModuleType) -> str:
    """The sample algorithm's image (sagemaker-emulator-sample:latest), rebuilt only when sample_algorithm/ changed."""
    return _built("the sample image", image_builder.ensure_sample_image)


@pytest.fixture(scope="session")
def iris_csv(sample_image: str, fast_config: EmulatorConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw iris CSV, written by a processing job that runs the sample image's own dataset helper."""
    from emulator.processing import ProcessingJob

    out = tmp_path_factory.mktemp("iris")
    req = {
        "AppSpecification": {
            "ImageUri": sample_image,
            "ContainerEntrypoint": ["python", "-m", "iris_tree.dataset", "/opt/ml/processing/output/raw/iris.csv"],
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "raw",
                    "S3Output": {
                        "S3Uri": str(out),
                        "LocalPath": "/opt/ml/processing/output/raw",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }
    result = ProcessingJob(req, config=fast_config.with_(stream_logs=False)).run()
    assert result["ProcessingJobStatus"] == "Completed", result
    return out / "iris.csv"


@pytest.fixture(scope="session")
def base_image(docker_available: str, image_builder: ModuleType) -> str:
    """The Python base image the test images build on (from scripts/ensure_base_image.sh)."""
    return _built("the base image", image_builder.base_image)


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory: pytest.TempPathFactory) -> EmulatorConfig:
    """An EmulatorConfig for tests: 2 s stop grace, a private work dir, never keeps containers.

    DOCKER_HOST and the other ``SM_EMULATOR_*`` settings are still read from the environment, but S3 always
    means a moto server on 127.0.0.1 started on demand (tests send no traffic elsewhere). Derive variants
    with ``fast_config.with_(...)``; the work dir is ``fast_config.work_dir`` (temp dirs of jobs go there).
    """
    work = tmp_path_factory.mktemp("emulator-work")
    return EmulatorConfig.from_env(
        work_dir=str(work),
        keep_containers=False,
        training_stop_grace_s=FAST_STOP_GRACE_S,
        serving_stop_grace_s=FAST_STOP_GRACE_S,
        startup_timeout_s=FAST_STARTUP_TIMEOUT_S,
    ).with_(s3_endpoint_url=None)


@pytest.fixture(scope="session")
def emulator_pids() -> set[int]:
    """Pids of ``python -m emulator`` subprocesses started by tests (their resources carry that pid label)."""
    return _spawned_pids


_spawned_pids: set[int] = set()


def _ours(labels: dict[str, str]) -> bool:
    if labels.get(LABEL_SESSION) == _session.SESSION_ID:
        return True
    pid = labels.get(LABEL_PID, "")
    return pid.isdigit() and int(pid) in _spawned_pids


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_docker_resources() -> Iterator[None]:
    """Session-end safety net: whatever this session's jobs created must be gone (a leak is a bug)."""
    yield
    if not _docker_used:
        return
    from emulator.runtime.docker import DockerClient

    docker = DockerClient(EmulatorConfig.from_env())
    left = [r for r in docker.list_managed(LABEL_MANAGED) if _ours(dict(r.labels))]
    if not left:
        return
    described = [f"{r.kind} {r.id[:12]} {r.name} (job {r.labels.get(LABEL_JOB)}, {r.state})" for r in left]
    for r in left:  # containers come first: a network in use cannot be removed
        (docker.remove if r.kind == "container" else docker.remove_network)(r.id)
    pytest.fail(
        "the emulator left Docker resources behind during this test session (now removed): " + "; ".join(described),
        pytrace=False,
    )
