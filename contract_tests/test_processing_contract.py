"""Processing checks p35-p38: the image as a processing job (no ``train``/``serve`` argument), run by the emulator.

Two jobs: the valid one from the config and ``processing.failing``. Each records its /opt/ml tree before its
container is removed (``ProcessingJob(record_tree=True)``), so p36 can see what was written outside the declared
outputs.
"""

from __future__ import annotations

import pytest

from contract_tests._report import blocked, check, skip, violation
from contract_tests._runs import Harness, ProcessingRun
from emulator.constants import (
    FAILURE_FILE,
    INPUT_CONFIG_DIR,
    MAX_EXIT_MESSAGE_BYTES,
    MESSAGE_FILE,
    OPT_ML,
    PROCESSING_CONFIG_DIR,
    PROCESSING_JOB_CONFIG_FILE,
    RESOURCE_CONFIG_FILE,
)

_BAD_MESSAGE = f"ClientError: {MESSAGE_FILE} is not valid UTF-8"
_ALLOWED_FILES = (MESSAGE_FILE, FAILURE_FILE)


def _processing_job(h: Harness) -> ProcessingRun:
    """The valid processing job of the config."""
    return h.process("process", h.processing_request("process"))


def _failing_processing_job(h: Harness) -> ProcessingRun:
    """The processing job that must fail (``processing.failing``)."""
    return h.process("process-failing", h.processing_request("process-failing", failing=True))


#: The jobs the plugin may start ahead, in the background, when these checks are selected (Harness.ahead).
AHEAD = {
    "p35": [("processing", _processing_job), ("failing-processing", _failing_processing_job)],
    "p36": [("processing", _processing_job)],
    "p37": [("processing", _processing_job)],
    "p38": [("processing", _processing_job)],
}


@pytest.fixture(scope="module")
def processing_run(contract_harness: Harness) -> ProcessingRun:
    """The valid processing job of the config."""
    return contract_harness.once("processing", lambda: _processing_job(contract_harness))


@pytest.fixture(scope="module")
def failing_processing_run(contract_harness: Harness) -> ProcessingRun:
    """The processing job that must fail (``processing.failing``)."""
    return contract_harness.once("failing-processing", lambda: _failing_processing_job(contract_harness))


def _needs_training_config(run: ProcessingRun) -> bool:
    """Whether a failed processing job's output names the training jobs' config dir (p38's root cause)."""
    text = f"{run.failure_reason}\n{(run.describe or {}).get('ExitMessage', '')}\n{run.log_text()}"
    return INPUT_CONFIG_DIR in text


def _require_completed(run: ProcessingRun, check_id: str) -> None:
    if run.status != "Completed":
        blocked(check_id, "p35", f"the valid processing job ended {run.status} ({run.summary()[:200]})")


@check("p35")
def test_p35_processing_exit_codes(processing_run: ProcessingRun, failing_processing_run: ProcessingRun) -> None:
    ok, bad = processing_run, failing_processing_run
    if ok.status != "Completed" and _needs_training_config(ok):
        blocked("p35", "p38", f"the valid processing job looked for {INPUT_CONFIG_DIR}, which processing does not have")
    if ok.status != "Completed":
        violation(
            "p35",
            f"the valid processing job ended {ok.status}, not Completed",
            sent=ok.sent(),
            expected="the container exits 0",
            got=ok.summary(),
            logs=ok.log_text(),
        )
    if bad.status == "Completed":
        violation(
            "p35",
            "the processing job that cannot succeed ended Completed: the container exited 0",
            sent=bad.sent(),
            expected="a non-zero exit (ProcessingJobStatus Failed)",
            got=bad.summary(),
            logs=bad.log_text(),
        )
    if bad.status == "Error":
        violation(
            "p35",
            "the failing processing job could not run at all",
            sent=bad.sent(),
            expected="the container starts and exits non-zero",
            got=bad.summary(),
            logs=bad.log_text(),
        )


@check("p36")
def test_p36_processing_paths(processing_run: ProcessingRun, contract_harness: Harness) -> None:
    run = processing_run
    _require_completed(run, "p36")
    pr = contract_harness.config.processing
    outputs = [o.local_path.rstrip("/") for o in pr.outputs]
    inputs = [i.local_path.rstrip("/") for i in pr.inputs]

    def under(path: str, roots: list[str]) -> bool:
        return any(path == r or path.startswith(r + "/") for r in roots)

    files = {p: kind for p, kind in run.opt_ml.items() if kind != "dir"}
    stray = sorted(
        p for p in files if not under(p, outputs + inputs + [PROCESSING_CONFIG_DIR]) and p not in _ALLOWED_FILES
    )
    if stray:
        violation(
            "p36",
            f"files were written outside the declared output LocalPaths: {stray[:10]}",
            sent=run.sent(),
            expected=f"results only under {outputs} (nothing else under {OPT_ML} is uploaded)",
            got=f"{len(stray)} stray file(s): {stray[:10]}",
            logs=run.log_text(),
        )
    links = sorted(f"{p} ({k})" for p, k in files.items() if k.startswith("symlink") and under(p, outputs))
    if links:
        violation(
            "p36",
            f"outputs are symlinks, which SageMaker does not upload: {links[:10]}",
            sent=run.sent(),
            expected="regular files under the output LocalPaths",
            got=", ".join(links[:10]),
            logs=run.log_text(),
            fix="copy the files into the output directory instead of linking them",
        )
    for o in pr.outputs:
        root = o.local_path.rstrip("/")
        written = sorted(p[len(root) + 1 :] for p, k in files.items() if k == "file" and p.startswith(root + "/"))
        missing = [f for f in o.expect_files if f not in written]
        if not written or missing:
            violation(
                "p36",
                f"the declared output {o.name!r} ({root}) " + (f"lacks {missing}" if written else "got no file"),
                sent=run.sent(),
                expected=f"files under {root}" + (f", including {o.expect_files}" if o.expect_files else ""),
                got=f"{written[:10] or 'nothing'}",
                logs=run.log_text(),
                fix=f"write the output files to {root} (the LocalPath of output {o.name!r})",
            )


@check("p37")
def test_p37_processing_message_utf8(processing_run: ProcessingRun, failing_processing_run: ProcessingRun) -> None:
    written = False
    for run in (processing_run, failing_processing_run):
        if run.failure_reason.startswith(_BAD_MESSAGE):
            violation(
                "p37",
                f"{MESSAGE_FILE} is not valid UTF-8, which fails the job with ClientError",
                sent=run.sent(),
                expected=f"UTF-8 text in {MESSAGE_FILE} (its first {MAX_EXIT_MESSAGE_BYTES} bytes become ExitMessage)",
                got=run.summary(),
                logs=run.log_text(),
            )
        message = (run.describe or {}).get("ExitMessage")
        written = written or bool(message) or MESSAGE_FILE in run.opt_ml
    if not written:
        skip(
            "p37",
            f"neither processing job wrote {MESSAGE_FILE}, so there is no message to check (writing one is optional)",
        )


@check("p38")
def test_p38_processing_config_dir(processing_run: ProcessingRun) -> None:
    run = processing_run
    if run.status != "Completed" and _needs_training_config(run):
        violation(
            "p38",
            f"the processing job failed looking for {INPUT_CONFIG_DIR}, which exists only in training",
            sent=f"{run.sent()}; {PROCESSING_CONFIG_DIR} holds {PROCESSING_JOB_CONFIG_FILE} and {RESOURCE_CONFIG_FILE}",
            expected=f"the job reads {PROCESSING_CONFIG_DIR} (or nothing) and completes",
            got=run.summary(),
            logs=run.log_text(),
        )
    _require_completed(run, "p38")
