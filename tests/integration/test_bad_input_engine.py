"""Bad input that needs the engine (issue 12): one line, its exit code, no traceback, nothing left running.

The engine-free cases are the table in tests/unit/test_bad_input.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_PID
from emulator.errors import InvalidSpec
from emulator.serving import Endpoint

pytestmark = pytest.mark.docker


def _docker_ids(label: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout.split()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_EMULATOR_", "AWS_"))}
    env["SM_EMULATOR_WORK_DIR"] = str(tmp_path / "work")
    env["SM_EMULATOR_SERVING_STOP_GRACE_S"] = "2"
    (tmp_path / "work").mkdir()
    return env


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


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def serving(
    recorder_image: str, cli_env: dict[str, str], tmp_path: Path, emulator_pids: set[int]
) -> Iterator[subprocess.Popen[str]]:
    """``serve --name dup-endpoint`` in a subprocess, InService."""
    proc = _spawn(
        ["serve", "--image", recorder_image, "--name", "dup-endpoint", "-q"], cli_env, tmp_path, emulator_pids
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.communicate(timeout=60)[1]
        assert json.loads(line)["EndpointName"] == "dup-endpoint"
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)


def test_a_second_serve_with_the_same_name_is_refused_and_ctrl_c_exits_130(
    serving: subprocess.Popen[str],
    recorder_image: str,
    cli_env: dict[str, str],
    tmp_path: Path,
    emulator_pids: set[int],
) -> None:
    """Points 5 and 11: the second serve exits 2 ("already exists") and starts nothing; Ctrl-C ends the first 130."""
    second = _spawn(
        ["serve", "--image", recorder_image, "--name", "dup-endpoint", "-q"], cli_env, tmp_path, emulator_pids
    )
    out, err = second.communicate(timeout=120)
    assert second.returncode == 2, err
    assert "already exists" in _one_error_line(err)
    assert out == ""
    assert _docker_ids(f"{LABEL_PID}={second.pid}") == []
    assert len(_docker_ids(f"{LABEL_JOB}=dup-endpoint")) == 1  # the first one's, still serving

    serving.send_signal(signal.SIGINT)
    _, err = serving.communicate(timeout=60)
    assert serving.returncode == 130, err
    assert "Traceback" not in err
    assert _docker_ids(f"{LABEL_JOB}=dup-endpoint") == []


def test_an_endpoint_with_unique_name_refuses_a_running_namesake(
    recorder_image: str, fast_config: EmulatorConfig
) -> None:
    config = fast_config.with_(stream_logs=False, serving_stop_grace_s=2)
    with Endpoint(recorder_image, name="api-dup-endpoint", config=config, unique_name=True):
        second = Endpoint(recorder_image, name="api-dup-endpoint", config=config, unique_name=True)
        with pytest.raises(InvalidSpec, match="already exists"):
            second.start()
        assert len(_docker_ids(f"{LABEL_JOB}=api-dup-endpoint")) == 1
    assert _docker_ids(f"{LABEL_JOB}=api-dup-endpoint") == []


def test_a_missing_image_is_one_line_exit_2(
    docker_available: str, cli_env: dict[str, str], tmp_path: Path, emulator_pids: set[int]
) -> None:
    proc = _spawn(
        ["train", "--image", "sagemaker-emulator-test/no-such-image:never", "--output", "out", "-q"],
        cli_env,
        tmp_path,
        emulator_pids,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "not present locally" in _one_error_line(err)
    assert _docker_ids(f"{LABEL_PID}={proc.pid}") == []
    assert list((tmp_path / "work").iterdir()) == []


def test_an_output_that_is_a_file_is_refused_before_any_container(
    sample_image: str, cli_env: dict[str, str], tmp_path: Path, emulator_pids: set[int]
) -> None:
    """Point 2: the model is not trained and then lost; the user's file is unchanged."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("1,2\n")
    (tmp_path / "out").write_text("mine\n")
    proc = _spawn(
        ["train", "--image", sample_image, "--channel", "train=data", "--output", "out", "-q"],
        cli_env,
        tmp_path,
        emulator_pids,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "is a file" in _one_error_line(err)
    assert "starting" not in err  # refused before the job started
    assert (tmp_path / "out").read_text() == "mine\n"
    assert _docker_ids(f"{LABEL_PID}={proc.pid}") == []


def test_ctrl_c_while_the_cli_loads_is_130_without_a_traceback(
    docker_available: str, cli_env: dict[str, str], tmp_path: Path, emulator_pids: set[int]
) -> None:
    """Point 11: Ctrl-C while the modules load or the flags are parsed is 130 and one line, never a traceback.

    (The first ~0.1 s belong to the interpreter itself, before any emulator code runs: not tested.)
    """
    for delay in (0.15, 0.25, 0.35, 0.5):
        proc = _spawn(["cleanup"], cli_env, tmp_path, emulator_pids)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, (delay, err)
        # 0: cleanup was done already; -SIGINT: the interpreter itself ended on the signal (CPython exits by SIGINT
        # when a KeyboardInterrupt lands in its own start-up or finalization, which no package code can catch).
        assert proc.returncode in (130, 0, -signal.SIGINT), (delay, proc.returncode, err)
        if proc.returncode == 130:
            assert err.strip().startswith("interrupted"), err
