"""The contract suite run for real on the sample image, as a user runs it (pytest in a subprocess).

* ``pytest --image sagemaker-emulator-sample:latest`` in the checkout (no paths: the suite replaces the
  project's testpaths) passes every check, and the JUnit XML names each check id;
* ``pytest --pyargs contract_tests --image ...`` from another directory works through the pytest11 entry point;
* without ``--image`` every check is skipped with the reason, a bad config is a one-line usage error, and
  the project's own test run never collects the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK_IDS = [
    "test_t01_train_succeeds",
    "test_t02_command_resolves",
    "test_t03_entrypoint_exec_form",
    "test_t04_no_files_baked_under_opt_ml",
    "test_t05_string_hyperparameters",
    "test_t06_tolerates_extra_config_keys",
    "test_t07_hostnames_from_resourceconfig",
    "test_t08_artifacts_in_model_dir",
    "test_t09_failure_exits_nonzero",
    "test_t10_failure_file_written",
    "test_t11_sigterm_exits_in_time",
    "test_t12_model_saved_on_sigterm",
    "test_s19_listens_on_all_interfaces_8080",
    "test_s20_ping_healthy",
    "test_s21_invocations_answer",
    "test_s22_6mib_payload_accepted",
    "test_s23_malformed_input_is_4xx",
    "test_s24_unknown_headers_ignored",
    "test_s25_missing_accept_handled",
    "test_s26_model_dir_read_only",
    "test_s27_model_from_tarball_offline",
    "test_s28_sigterm_exits_in_time",
    "test_b31_execution_parameters_schema",
    "test_b32_execution_parameters_limits",
    "test_b33_multirecord_order",
    "test_p35_processing_exit_codes",
    "test_p36_processing_paths",
    "test_p37_processing_message_utf8",
    "test_p38_processing_config_dir",
    "test_s41_unsupported_content_type_is_4xx",
    "test_s42_extra_model_files_tolerated",
    "test_s43_serving_needs_no_input_dir",
    "test_s44_serving_loads_what_training_wrote",
    "test_t15_multi_host_training",
    "test_t16_network_isolation",
    "test_t17_metric_definitions_match",
    "test_s30_runs_as_root",
    "test_b34_max_payload_within_timeout",
    "test_t13_fastfile_read_only",
    "test_t14_pipe_mode_fifos",
    "test_t18_checkpoints_resumed",
    "test_s29_bind_to_port_honoured",
    "test_m39_multi_model_api",
    "test_m40_out_of_memory_is_507",
]
SUITE_TIMEOUT_S = 900


@dataclass
class Outcome:
    """One test case of a JUnit XML report."""

    name: str
    classname: str
    outcome: str  # passed | failed | error | skipped
    message: str


@dataclass
class SuiteRun:
    """A finished ``pytest`` subprocess: exit code, output and the JUnit cases by test name."""

    returncode: int
    output: str
    cases: dict[str, Outcome]


def _junit(path: Path) -> dict[str, Outcome]:
    cases: dict[str, Outcome] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = child.get("message", "") or (child.text or "")
                break
        cases[case.get("name", "")] = Outcome(case.get("name", ""), case.get("classname", ""), outcome, message)
    return cases


def _run_pytest(
    args: list[str],
    *,
    cwd: Path,
    junit: Path | None,
    pids: set[int] | None = None,
    timeout: float = SUITE_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> SuiteRun:
    cmd = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"]
    if junit is not None:
        cmd.append(f"--junitxml={junit}")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if pids is not None:
        pids.add(proc.pid)  # its containers carry this pid: the session-end leak check covers them
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"pytest {' '.join(args)} did not finish within {timeout:g} s:\n{out[-5000:]}")
    cases = _junit(junit) if junit is not None and junit.is_file() else {}
    return SuiteRun(proc.returncode, out, cases)


@pytest.fixture(scope="module")
def suite_run(sample_image: str, tmp_path_factory: pytest.TempPathFactory, emulator_pids: set[int]) -> SuiteRun:
    """``pytest --image <sample>`` in the checkout, with no paths: what a user types."""
    junit = tmp_path_factory.mktemp("contract-suite") / "junit.xml"
    return _run_pytest(["--image", sample_image, "-rs"], cwd=REPO, junit=junit, pids=emulator_pids)


# -- the suite on the sample image ------------------------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.slow
def test_every_check_passes_on_the_sample_image(suite_run: SuiteRun) -> None:
    failed = {n: c.message for n, c in suite_run.cases.items() if c.outcome in ("failed", "error")}
    assert not failed, f"checks failed on the sample image: {failed}\n{suite_run.output[-8000:]}"
    skipped = {n: c.message for n, c in suite_run.cases.items() if c.outcome == "skipped"}
    not_capability = {n: m for n, m in skipped.items() if "does not claim" not in m}
    assert not not_capability, f"checks skipped for another reason than an unclaimed capability: {not_capability}"
    assert suite_run.returncode == 0, suite_run.output[-8000:]


@pytest.mark.docker
@pytest.mark.slow
def test_junit_report_names_every_check(suite_run: SuiteRun) -> None:
    assert sorted(suite_run.cases) == sorted(CHECK_IDS), suite_run.output[-4000:]
    # Only the contract suite ran: `pytest --image` replaced the project's testpaths.
    assert {c.classname.split(".")[0] for c in suite_run.cases.values()} == {"contract_tests"}
    assert "sagemaker contract: image sagemaker-emulator-sample:latest" in suite_run.output


@pytest.mark.docker
@pytest.mark.slow
def test_pyargs_runs_the_installed_suite(sample_image: str, tmp_path: Path, emulator_pids: set[int]) -> None:
    # From a directory without the checkout's conftest.py: the plugin comes from the pytest11 entry point.
    # PYTHONPATH: an editable install made before the packages had an __init__.py maps them as namespace
    # packages, which --pyargs cannot collect; a regular install (or a fresh editable one) needs no help.
    junit = tmp_path / "junit.xml"
    run = _run_pytest(
        ["--pyargs", "contract_tests", "--image", sample_image, "-k", "t01 or t03 or s20"],
        cwd=tmp_path,
        junit=junit,
        pids=emulator_pids,
        env={"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)},
    )
    assert "contract_tests.plugin" in run.output or "sagemaker-emulator" in run.output, run.output[-3000:]
    assert run.returncode == 0, run.output[-6000:]
    outcomes = {n: c.outcome for n, c in run.cases.items()}
    assert outcomes == {
        "test_t01_train_succeeds": "passed",
        "test_t03_entrypoint_exec_form": "passed",
        "test_s20_ping_healthy": "passed",
    }, run.output[-6000:]


# -- without Docker ------------------------------------------------------------------------------------------------
def test_without_image_every_check_is_skipped_with_the_reason(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    run = _run_pytest([str(REPO / "contract_tests"), "-rs"], cwd=REPO, junit=junit, timeout=300)
    assert run.returncode == 0, run.output[-4000:]
    assert sorted(run.cases) == sorted(CHECK_IDS)
    reasons = {c.message for c in run.cases.values()}
    assert all(c.outcome == "skipped" for c in run.cases.values()), run.output[-4000:]
    assert reasons == {"pass --image IMAGE to run the SageMaker contract suite"}, reasons


def test_bad_contract_config_is_a_one_line_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "contract.yaml"
    config.write_text("capabilities:\n  trainig: true\n", encoding="utf-8")
    run = _run_pytest(
        ["--image", "whatever:latest", "--contract-config", str(config)], cwd=REPO, junit=None, timeout=300
    )
    assert run.returncode == 4, run.output
    assert "contract config field 'capabilities.trainig': unknown key; did you mean 'training'?" in run.output


def test_project_test_run_does_not_collect_the_suite() -> None:
    run = _run_pytest(["--collect-only", "-q", "tests/unit"], cwd=REPO, junit=None, timeout=300)
    assert "contract_tests/" not in run.output, run.output[-4000:]
