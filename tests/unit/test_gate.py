"""sample_algorithm/build_and_push.sh's contract gate, with fake ``python``, ``docker`` and ``aws`` on PATH.

The fakes record how they were called. The fake python plays pytest: it writes a JUnit report (one failed
check, or none) to the ``--junitxml`` path and exits 1 or 0. No engine, no AWS, no network.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "sample_algorithm" / "build_and_push.sh"
REMOTE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/iris-tree:v1"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")

FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "python $*" >> "$FAKE_LOG"
report=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "--junitxml" ]; then report="$arg"; fi
  prev="$arg"
done
head='<?xml version="1.0"?><testsuites><testsuite name="pytest">'
ok='<testcase classname="contract_tests.test_training_contract" name="test_t01_train_succeeds" time="1"/>'
bad='<testcase classname="contract_tests.test_serving_contract" name="test_s20_ping_healthy" time="1">'
bad="$bad<failure message=\"no\">x</failure></testcase>"
if [ "$FAKE_PYTEST" = fail ]; then
  printf '%s%s%s</testsuite></testsuites>' "$head" "$bad" "$ok" > "$report"
  echo "1 failed, 1 passed"
  exit 1
fi
printf '%s%s</testsuite></testsuites>' "$head" "$ok" > "$report"
echo "1 passed"
"""

FAKE_DOCKER = r"""#!/usr/bin/env bash
echo "docker $*" >> "$FAKE_LOG"
[ "$1" = login ] && cat > /dev/null
if [ "$1" = image ] && [ "$2" = inspect ]; then
  if [ "$FAKE_RETAG" = 1 ] && [ "${!#}" != "iris-tree:v1" ]; then echo "sha256:other"; else echo "sha256:tested"; fi
fi
exit 0
"""

FAKE_AWS = r"""#!/usr/bin/env bash
echo "aws $*" >> "$FAKE_LOG"
[ "$1 $2" = "ecr get-login-password" ] && echo "password"
exit 0
"""


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python", FAKE_PYTHON), ("python3", FAKE_PYTHON), ("docker", FAKE_DOCKER), ("aws", FAKE_AWS)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "PYTHON": str(bin_dir / "python"),
        "CONTRACT_REPORT": str(tmp_path / "report.xml"),
    }


def gate(env: dict[str, str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DRY_RUN", "CONTRACT_"))}
    full_env.update(env)
    return subprocess.run(
        ["bash", str(SCRIPT), *args, "--tag", "v1", "iris-tree"],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def calls(env: dict[str, str]) -> str:
    log = Path(env["FAKE_LOG"])
    return log.read_text() if log.exists() else ""


def test_failing_suite_refuses_to_push(fakes: dict[str, str], tmp_path: Path) -> None:
    result = gate({**fakes, "FAKE_PYTEST": "fail"}, "--dry-run", tmp_path=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: contract gate failed (pytest exit 1): test_s20_ping_healthy; report: {fakes['CONTRACT_REPORT']}; "
        "refusing to push iris-tree:v1"
    )
    assert "would run" not in result.stdout
    assert "docker push" not in calls(fakes)
    pytest_call = next(line for line in calls(fakes).splitlines() if line.startswith("python -m pytest"))
    assert "--pyargs contract_tests --image iris-tree:v1 -p no:cacheprovider" in pytest_call
    assert f"--junitxml {fakes['CONTRACT_REPORT']}" in pytest_call


def test_passing_suite_prints_the_push_commands(fakes: dict[str, str], tmp_path: Path) -> None:
    result = gate({**fakes, "FAKE_PYTEST": "pass"}, "--dry-run", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"contract gate passed for iris-tree:v1 (report: {fakes['CONTRACT_REPORT']})" in result.stderr
    assert f"dry-run: would run: docker push {REMOTE}" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == REMOTE
    assert "docker push" not in calls(fakes)  # a dry run pushes nothing


def test_real_run_with_failing_suite_calls_no_aws_and_pushes_nothing(fakes: dict[str, str], tmp_path: Path) -> None:
    env = {**fakes, "FAKE_PYTEST": "fail"}
    result = gate(env, "--region", "us-east-1", "--account", "000000000000", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "refusing to push" in result.stderr
    assert "aws " not in calls(env)
    assert "docker push" not in calls(env)


def test_real_run_with_passing_suite_pushes(fakes: dict[str, str], tmp_path: Path) -> None:
    env = {**fakes, "FAKE_PYTEST": "pass"}
    result = gate(env, "--region", "us-east-1", "--account", "000000000000", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"docker push {REMOTE}" in calls(env)


def test_tag_moved_after_the_tests_is_not_pushed(fakes: dict[str, str], tmp_path: Path) -> None:
    result = gate({**fakes, "FAKE_PYTEST": "pass", "FAKE_RETAG": "1"}, "--dry-run", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "not the tested sha256:tested" in result.stderr
    assert "would run: docker push" not in result.stdout


def test_skip_contract_tests_warns_loudly(fakes: dict[str, str], tmp_path: Path) -> None:
    result = gate({**fakes, "FAKE_PYTEST": "fail"}, "--dry-run", "--skip-contract-tests", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "WARNING: --skip-contract-tests" in result.stderr
    assert "WITHOUT the SageMaker" in result.stderr
    assert not [line for line in calls(fakes).splitlines() if line.startswith("python ")]  # the suite never ran
    assert f"dry-run: would run: docker push {REMOTE}" in result.stdout


def test_contract_config_is_passed_on(fakes: dict[str, str], tmp_path: Path) -> None:
    result = gate({**fakes, "FAKE_PYTEST": "pass"}, "--dry-run", "--contract-config", "my.yaml", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"--contract-config {tmp_path / 'my.yaml'}" in calls(fakes)


def test_pre_commit_hook_is_declared() -> None:
    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "sagemaker-contract")
    assert hook["stages"] == ["pre-push"]
    assert hook["pass_filenames"] is False
    assert hook["language"] in ("system", "python")
