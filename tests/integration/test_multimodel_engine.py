"""Multi-model endpoints on the real engine with a labelled test image (tests/images/multimodel), which records the
requests it gets in order: models staged read-only under /opt/ml/models and loaded on first use, the least recently
used unloaded when the container answers 507, the platform's ValidationErrors; an unlabelled image refused in one
line; the CLI's ``serve --model-spec`` plus ``invoke NAME --target-model`` from another process."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests
import yaml

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_PID
from emulator.errors import InvalidSpec, ValidationError
from emulator.serving import MultiModelEndpoint
from emulator.serving.multimodel import model_name

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def mme_image(docker_available: str, image_builder: ModuleType) -> str:
    """tests/images/multimodel, rebuilt only when its files changed."""
    image: str = image_builder.build_test_image("multimodel")
    return image


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A local ModelDataUrl: a.tar.gz, b.tar.gz, c.tar.gz and nested/d.tar.gz, each with its key in answer.txt."""
    root = tmp_path / "models"
    for key in ("a.tar.gz", "b.tar.gz", "c.tar.gz", "nested/d.tar.gz"):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(root / key, "w:gz") as tf:
            info = tarfile.TarInfo("answer.txt")
            info.size = len(key)
            tf.addfile(info, io.BytesIO(key.encode()))
    return root


def _docker_ids(label: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout.split()


def _requests(url: str) -> list[str]:
    answer: list[str] = requests.get(f"{url}/requests", timeout=5).json()
    return answer


def test_models_load_on_first_use_and_a_507_unloads_the_least_recently_used(
    mme_image: str, prefix: Path, fast_config: EmulatorConfig
) -> None:
    config = fast_config.with_(stream_logs=False)
    env = {"MME_TEST_CAPACITY": "2"}  # the container answers 507 to a third load
    with MultiModelEndpoint(mme_image, model_data=str(prefix), environment=env, config=config) as ep:
        answers = {}
        for key in ("a.tar.gz", "b.tar.gz", "a.tar.gz", "nested/d.tar.gz"):
            out = ep.invoke(b"1,2", content_type="text/csv", custom_attributes="c=1", target_model=key)
            answers[key] = json.loads(out["Body"])
        seen = _requests(ep.url)
        with pytest.raises(ValidationError, match=r"^Request \S+ is missing a target model header\.$"):
            ep.invoke(b"1,2")
        with pytest.raises(ValidationError, match=r"^Failed to download model data\(path: .*nope.tar.gz\)"):
            ep.invoke(b"1,2", target_model="nope.tar.gz")
    a, b, d = (model_name(k) for k in ("a.tar.gz", "b.tar.gz", "nested/d.tar.gz"))
    assert seen == [
        f"POST /models {a}",
        f"POST /models/{a}/invoke",
        f"POST /models {b}",
        f"POST /models/{b}/invoke",
        f"POST /models/{a}/invoke",  # loaded: reused
        f"POST /models {d}",  # 507: full
        f"DELETE /models/{b}",  # the least recently used
        f"POST /models {d}",
        f"POST /models/{d}/invoke",
    ]
    nested = answers["nested/d.tar.gz"]
    assert nested["answer"] == "nested/d.tar.gz"  # its own archive, extracted where the url points
    assert nested["files"] == ["answer.txt"]
    assert nested["writable"] is False  # /opt/ml/models is mounted read-only
    assert nested["env"] == "true"  # SAGEMAKER_MULTI_MODEL
    assert nested["headers"]["X-Amzn-SageMaker-Target-Model"] == "nested/d.tar.gz"
    assert nested["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "c=1"
    assert nested["body"] == "1,2"


def test_an_unlabelled_image_is_refused_in_one_line(
    recorder_image: str, prefix: Path, fast_config: EmulatorConfig
) -> None:
    ep = MultiModelEndpoint(recorder_image, model_data=str(prefix), name="mme-unlabelled", config=fast_config)
    with pytest.raises(InvalidSpec) as err:
        ep.start()
    message = str(err.value)
    assert "\n" not in message
    assert "does not contain required com.amazonaws.sagemaker.capabilities.multi-models=true" in message
    assert _docker_ids(f"{LABEL_JOB}=mme-unlabelled") == []


def _spawn(args: list[str], env: dict[str, str], cwd: Path, pids: set[int]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids.add(proc.pid)
    return proc


@pytest.fixture
def served(
    mme_image: str, prefix: Path, tmp_path: Path, emulator_pids: set[int]
) -> Iterator[tuple[str, dict[str, str]]]:
    """``serve --model-spec`` of a Mode MultiModel CreateModel request in a subprocess: (its URL, the CLI's env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_EMULATOR_", "AWS_"))}
    env["SM_EMULATOR_WORK_DIR"] = str(tmp_path / "work")
    env["SM_EMULATOR_SERVING_STOP_GRACE_S"] = "2"
    (tmp_path / "work").mkdir()
    spec = {
        "ModelName": "mme-cli",
        "PrimaryContainer": {"Image": mme_image, "Mode": "MultiModel", "ModelDataUrl": str(prefix)},
    }
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(spec))
    proc = _spawn(["serve", "--model-spec", "model.yaml", "--name", "mme-cli", "-q"], env, tmp_path, emulator_pids)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.communicate(timeout=60)[1]
        yield json.loads(line)["Url"], env
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
    assert _docker_ids(f"{LABEL_PID}={proc.pid}") == []


def test_cli_invoke_target_model_loads_in_the_serving_process_container(
    served: tuple[str, dict[str, str]], tmp_path: Path, emulator_pids: set[int]
) -> None:
    url, env = served
    args = ["invoke", "mme-cli", "--content-type", "text/csv", "--body", "1,2"]
    outputs = []
    for _ in range(2):
        proc = _spawn([*args, "--target-model", "b.tar.gz"], env, tmp_path, emulator_pids)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert outputs[0]["answer"] == outputs[1]["answer"] == "b.tar.gz"
    b = model_name("b.tar.gz")
    # each invoke process asks what is loaded first; the second finds b loaded and only invokes it
    assert _requests(url) == [
        "GET /models",
        f"POST /models {b}",
        f"POST /models/{b}/invoke",
        "GET /models",
        f"POST /models/{b}/invoke",
    ]

    proc = _spawn(args, env, tmp_path, emulator_pids)  # no --target-model
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, err
    assert errors[0].endswith("is missing a target model header."), err
