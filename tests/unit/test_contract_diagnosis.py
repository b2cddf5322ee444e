"""The contract suite's root-cause diagnosis, without Docker: which check owns a failure, and what the others say.

The log lines are the ones real broken images print (tests/broken_images/cascade/ and the checks' own broken
images), so a change to the patterns that stops recognising one of them fails here first.
"""

from __future__ import annotations

import pytest

from contract_tests import _report
from contract_tests._diagnosis import RootCause, diagnose_serving, diagnose_training
from contract_tests._report import judge, warn

TRAIN_LOG = "algo-1 | hyperparameters: {'max_depth': 3}\nalgo-1 | training on host algo-1 of 1\nalgo-1 | done"


@pytest.mark.parametrize(
    ("log", "words"),
    [
        ("/usr/bin/env: \u2018python3\\r\u2019: No such file or directory", "CRLF"),
        ("/usr/bin/env: 'python3\r': No such file or directory", "CRLF"),
        ("exec /opt/program/train: exec format error", "#! line"),
        ("exec /opt/program/train: permission denied", "chmod +x"),
    ],
)
def test_train_that_cannot_execute_is_t02_with_the_matching_fix(log: str, words: str) -> None:
    root = diagnose_training(log=log, status="Failed", failure_reason="AlgorithmError: , exit code: 127")
    assert root.check_id == "t02"
    assert words in f"{root.problem} {root.fix}"


def test_train_not_found_is_t02() -> None:
    err = "image 'x' cannot run 'train' (exec: \"train\": executable file not found in $PATH)"
    root = diagnose_training(error=err, status="Error")
    assert root.check_id == "t02"
    assert "PATH" in root.fix


def test_train_that_starts_a_server_is_t02_entrypoint() -> None:
    log = "[2026-12-07 03:37:52 +0000] [1] [INFO] Listening at: http://0.0.0.0:8080 (1)"
    root = diagnose_training(log=log, status="Stopped")
    assert root.check_id == "t02"
    assert "ENTRYPOINT" in root.problem


def test_a_missing_baked_file_is_t04() -> None:
    log = "FileNotFoundError: [Errno 2] No such file or directory: '/opt/ml/code/classes.json'"
    root = diagnose_training(log=log, baked=["/opt/ml/code/classes.json"])
    assert root.check_id == "t04"
    assert "/opt/ml/code/classes.json" in root.problem


def test_a_channel_the_job_does_not_have_is_t01_naming_both() -> None:
    log = "error: channel 'training' is missing: /opt/ml/input/data/training does not exist"
    root = diagnose_training(log=log, channels=["train"])
    assert root.check_id == "t01"
    assert "'training'" in root.problem
    assert "['train']" in root.problem


def test_a_channel_the_job_has_is_not_blamed() -> None:
    root = diagnose_training(log="reading /opt/ml/input/data/train/iris.csv\nValueError: bad row", channels=["train"])
    assert root.check_id == "t01"
    assert "channel" not in root.problem


def test_never_exiting_is_t01_with_the_bound() -> None:
    root = diagnose_training(log=TRAIN_LOG, status="Stopped", timed_out_after_s=30)
    assert root.check_id == "t01"
    assert "30 s" in root.problem
    assert "max_runtime_s" in root.fix


def test_anything_else_is_t01_with_the_failure_reason() -> None:
    root = diagnose_training(failure_reason="ValueError: could not convert string to float: 'setosa'")
    assert root.check_id == "t01"
    assert "could not convert" in root.problem


# -- serving ---------------------------------------------------------------------------------------------------
def test_fail_fast_causes_go_to_s19_and_s20() -> None:
    err = "endpoint e will not pass the /ping health check: nothing listens on port 8080 (3.1s after start); fix: x"
    assert diagnose_serving(error=err, cause="other-port", fix="listen on 8080").check_id == "s19"
    assert diagnose_serving(error=err, cause="loopback-only", fix="bind").check_id == "s19"
    root = diagnose_serving(error="... HTTP 500 ...", cause="ping-status", fix="answer 200")
    assert root.check_id == "s20"
    assert root.fix == "answer 200"


def test_serve_without_shebang_is_t02() -> None:
    root = diagnose_serving(log="exec /opt/program/serve: exec format error", exited=True)
    assert root.check_id == "t02"
    assert "`serve`" in root.problem


def test_serve_that_runs_the_training_program_is_t02() -> None:
    serve_log = "serve-x | hyperparameters: {'max_depth': 3}\nserve-x | training on host algo-1 of 1\nerror: no channel"
    root = diagnose_serving(log=serve_log, exited=True, training_log=TRAIN_LOG)
    assert root.check_id == "t02"
    assert "ran the training program" in root.problem


def test_serve_that_looks_for_channel_data_is_t02() -> None:
    # The sample's train run as `serve` (ENTRYPOINT ["train"]): its first lines differ from a real training's.
    serve_log = (
        "note: /opt/ml/input/config/hyperparameters.json does not exist; using the default hyperparameters\n"
        "hyperparameters: {'max_depth': None, 'criterion': 'gini'}\n"
        "error: channel 'train' is missing: /opt/ml/input/data/train does not exist; give the job a 'train' channel"
    )
    root = diagnose_serving(log=serve_log, exited=True, training_log=TRAIN_LOG)
    assert root.check_id == "t02"
    assert "/opt/ml/input/data/train" in root.problem


def test_serve_needing_the_input_dir_is_s43() -> None:
    log = "FileNotFoundError: [Errno 2] No such file or directory: '/opt/ml/input/config/hyperparameters.json'"
    root = diagnose_serving(log=log, exited=True, training_log=TRAIN_LOG)
    assert root.check_id == "s43"


def test_serve_loading_a_file_train_did_not_write_is_s44_naming_what_is_there() -> None:
    log = "FileNotFoundError: [Errno 2] No such file or directory: '/opt/ml/model/model.pkl'"
    root = diagnose_serving(log=log, exited=True, model_files=["metadata.json", "model.joblib"])
    assert root.check_id == "s44"
    assert "model.pkl" in root.problem
    assert "model.joblib" in root.problem


@pytest.mark.parametrize(
    ("log", "owner"),
    [
        ("OSError: [Errno 30] Read-only file system: '/opt/ml/model/classes.cache'", "s26"),
        ("urllib.error.URLError: <urlopen error [Errno 111] Connection refused>", "s27"),
        ("Running on http://127.0.0.1:8080", "s19"),
    ],
)
def test_known_start_up_errors_in_the_log(log: str, owner: str) -> None:
    assert diagnose_serving(log=log, error="did not pass the /ping health check (last answer: HTTP 503)").check_id == (
        owner
    )


def test_nothing_accepting_connections_is_s19() -> None:
    err = "endpoint e at http://127.0.0.1:32770 did not pass the /ping health check within 20s (last answer: "
    err += "ConnectionError: Connection refused)"
    root = diagnose_serving(error=err)
    assert root.check_id == "s19"


def test_an_exit_without_a_known_sign_is_s20() -> None:
    root = diagnose_serving(error="serving container exited with status 3", log="boom", exited=True)
    assert root.check_id == "s20"
    assert "exited" in root.problem


# -- judging ---------------------------------------------------------------------------------------------------
ROOT = RootCause("s19", "the server listens on 127.0.0.1:8080 only", "bind to 0.0.0.0:8080")


def test_the_owner_fails_with_the_root_cause_and_its_fix() -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        judge(ROOT, "s19", got="x")
    message = str(info.value)
    assert message.startswith("[s19] MUST:")
    assert "127.0.0.1:8080 only" in message.splitlines()[0]
    assert "fix:      bind to 0.0.0.0:8080" in message


def test_the_others_are_blocked_by_it() -> None:
    with pytest.raises(pytest.skip.Exception) as info:
        judge(ROOT, "s21")
    assert str(info.value) == "[s21] blocked by [s19]: the server listens on 127.0.0.1:8080 only"


def test_no_root_cause_is_no_verdict() -> None:
    judge(None, "s21")


def test_strict_turns_a_should_warning_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(_report.ContractWarning):
        warn("s23", "malformed input got HTTP 500")
    monkeypatch.setattr(_report, "STRICT", True)
    with pytest.raises(pytest.fail.Exception, match=r"\[s23\] SHOULD: .*--contract-strict"):
        warn("s23", "malformed input got HTTP 500")
