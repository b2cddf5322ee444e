"""Training checks t01-t12: ``docker run IMAGE train`` against a faithful /opt/ml tree, run by the emulator.

One training job (the ``trained_model`` fixture) serves t01, t02, t04, t05 and t08; the failing job serves
t09/t10, the SIGTERM job t11/t12, and the variant job (odd host names, extra config keys) t06/t07.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any

import pytest

from contract_tests._diagnosis import RootCause
from contract_tests._report import CHECKS, check, judge, skip, violation, warn
from contract_tests._runs import EndpointHandle, Harness, TrainingRun
from emulator.constants import (
    CHECKPOINT_DIR,
    CODE_DIR,
    FAILURE_FILE,
    HYPERPARAMETERS_FILE,
    INPUT_CONFIG_DIR,
    INPUT_DATA_CONFIG_FILE,
    INPUT_DIR,
    MAX_FAILURE_REASON_CHARS,
    MODEL_DIR,
    OPT_ML,
    OUTPUT_DATA_DIR,
    RESOURCE_CONFIG_FILE,
    host_name,
)

logger = logging.getLogger(__name__)
_EMULATOR_DEFAULT_REASON = re.compile(r"^AlgorithmError: (, exit code: |the container ran out of memory)")
_TINI = re.compile(r"(^|/)tini(-static)?(-[a-z0-9]+)?$")
#: Extra keys newer platform versions write (``topology``) and one nobody knows, to show they are ignored.
EXTRA_CONFIG: Mapping[str, Mapping[str, Any]] = {
    RESOURCE_CONFIG_FILE: {"topology": None, "x_contract_suite_unknown_key": {"ignore": "me"}},
    INPUT_DATA_CONFIG_FILE: {"CompressionType": "None", "x_contract_suite_unknown_key": "ignore-me"},
}


#: What SageMaker uploads from a training container, and what it provides; t08 flags files left anywhere else.
_UPLOADED_OR_PROVIDED = (
    INPUT_DIR,
    MODEL_DIR,
    OUTPUT_DATA_DIR,
    FAILURE_FILE,
    CHECKPOINT_DIR,
    CODE_DIR,
)


#: The SIGTERM job is run again (up to this many times) when it ended before the signal, with the data ...
SIGTERM_RETRIES = 2
#: ... this many times bigger each time.
SIGTERM_GROWTH = 8


def _random_hosts(count: int) -> list[str]:
    """Host names like SDK local mode's: algo-1-ab12c."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [f"{host_name(i)}-" + "".join(secrets.choice(alphabet) for _ in range(5)) for i in range(count)]


def _container_hostnames(count: int) -> list[str]:
    """Container hostnames (/etc/hostname) like the platform's, unrelated to the host names: ip-10-0-37-1."""
    subnet = secrets.randbelow(250) + 1
    return [f"ip-10-0-{subnet}-{i + 1}" for i in range(count)]


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def _require_trained(run: TrainingRun | None, check_id: str, harness: Harness) -> TrainingRun:
    """The completed main training job; else ``check_id`` fails (if it owns the root cause) or is blocked by it."""
    __tracebackhide__ = True
    if run is None:  # pragma: no cover - the gate skips these checks when training is not claimed
        skip(check_id, "the image does not claim training")
    judge(harness.training_root(run), check_id, sent=run.sent(), got=run.summary(), logs=run.log_text())
    return run


# -- fixtures of these checks -----------------------------------------------------------------------------
def _failing_job(h: Harness) -> TrainingRun:
    """The job that must fail: training's config with ``training.failing`` applied."""
    f = h.config.training.failing
    request = h.training_request(
        "failing", channels=f.channels, hyperparameters=f.hyperparameters, environment=f.environment
    )
    return h.train("failing", request)


def _sigterm_job(h: Harness) -> TrainingRun:
    """The job that is stopped (SIGTERM, then SIGKILL after --stop-timeout) while it runs."""
    s = h.config.training.sigterm
    channels = s.channels if s.channels is not None else h.config.training.channels
    run: TrainingRun | None = None
    for attempt in range(1 + SIGTERM_RETRIES):
        request = h.training_request("sigterm", channels=channels, hyperparameters=s.hyperparameters)
        run = h.train("sigterm", request, stop_after_log=s.after_log, stop_after_s=s.after_seconds)
        if run.status != "Completed":
            break
        # The job ended before the signal reached it (a loaded machine runs it slower than the log travels):
        # again with SIGTERM_GROWTH times the data, so the signal lands while `train` runs.
        logger.info("the SIGTERM job ended before the signal (attempt %d); again with more data", attempt + 1)
        channels = {n: dataclasses.replace(c, repeat=c.repeat * SIGTERM_GROWTH) for n, c in channels.items()}
    assert run is not None
    return run


def _variant_job(h: Harness) -> TrainingRun:
    """Host names other than algo-N, container hostnames that are none of them, and extra config keys, in one job
    (split up only if it fails)."""
    count = 2 if h.config.capabilities.multi_host else 1
    request = h.training_request("variant", instance_count=count)
    return h.train(
        "variant",
        request,
        host_names=_random_hosts(count),
        extra_config=EXTRA_CONFIG,
        container_hostnames=_container_hostnames(count),
    )


#: The jobs the plugin may start ahead, in the background, when these checks are selected (Harness.ahead).
AHEAD = {
    "t09": [("failing-training", _failing_job)],
    "t10": [("failing-training", _failing_job)],
    "t11": [("sigterm-training", _sigterm_job)],
    "t12": [("sigterm-training", _sigterm_job)],
    "t06": [("variant-training", _variant_job)],
    "t07": [("variant-training", _variant_job)],
}


@pytest.fixture(scope="module")
def failing_training(contract_harness: Harness) -> TrainingRun:
    """The job that must fail (t09, t10)."""
    return contract_harness.once("failing-training", lambda: _failing_job(contract_harness))


@pytest.fixture(scope="module")
def sigterm_training(contract_harness: Harness) -> TrainingRun:
    """The job that is stopped while it runs (t11, t12)."""
    return contract_harness.once("sigterm-training", lambda: _sigterm_job(contract_harness))


@pytest.fixture(scope="module")
def variant_training(contract_harness: Harness) -> TrainingRun:
    """The job with other host names, container hostnames and extra config keys (t06, t07)."""
    return contract_harness.once("variant-training", lambda: _variant_job(contract_harness))


# -- t01-t05 ------------------------------------------------------------------------------------------------
@check("t01")
def test_t01_train_succeeds(trained_model: TrainingRun | None, contract_harness: Harness) -> None:
    run = trained_model
    assert run is not None
    judge(
        contract_harness.training_root(run),
        "t01",
        sent=run.sent(),
        expected="`train` exits 0 and the job is Completed",
        got=run.summary(),
        logs=run.log_text(),
    )


@check("t02")
def test_t02_command_resolves(contract_harness: Harness, request: pytest.FixtureRequest) -> None:
    caps = contract_harness.config.capabilities
    info = contract_harness.image_info()
    layout = f"ENTRYPOINT {info.entrypoint}" if info.entrypoint else "no ENTRYPOINT (executables on PATH)"
    if caps.training:
        run: TrainingRun = request.getfixturevalue("trained_model")
        root = contract_harness.training_root(run)
        if root is not None and root.check_id == "t02":
            violation(
                "t02",
                root.problem,
                sent=f"docker run IMAGE train ({layout})",
                expected="`train` runs (an executable on PATH, or an exec-form ENTRYPOINT receiving 'train')",
                got=run.summary(),
                logs=run.log_text(),
                fix=root.fix,
            )
    if caps.serving:
        handle: EndpointHandle = request.getfixturevalue("shared_endpoint")
        root = contract_harness.serving_root(handle)
        if root is not None and root.check_id == "t02":
            violation(
                "t02",
                root.problem,
                sent=f"docker run IMAGE serve ({layout})",
                expected="`serve` runs (an executable on PATH, or an exec-form ENTRYPOINT receiving 'serve')",
                got=str(handle.error or "not started"),
                logs=handle.log_text(),
                fix=root.fix,
            )


@check("t03")
def test_t03_entrypoint_exec_form(contract_harness: Harness) -> None:
    entry = contract_harness.image_info().entrypoint
    if not entry:
        return  # no ENTRYPOINT: SageMaker's argument is the command itself
    shells = {"sh", "bash", "ash", "dash", "zsh"}
    if len(entry) >= 2 and entry[0].rsplit("/", 1)[-1] in shells and entry[1] == "-c":
        violation(
            "t03",
            "the ENTRYPOINT is in shell form (Docker wraps it in `/bin/sh -c`)",
            sent="docker image inspect IMAGE (Config.Entrypoint)",
            expected='an exec-form ENTRYPOINT such as ["python3", "/opt/program/main.py"]',
            got=f"Config.Entrypoint = {entry}",
            fix='write ENTRYPOINT ["prog", "arg"] (a JSON array): the shell form does not pass `train`/`serve` '
            "on and keeps SIGTERM from reaching your program",
        )
    if _TINI.search(entry[0]) or any(_TINI.search(e) for e in entry[:2]):
        violation(
            "t03",
            "the ENTRYPOINT is tini, which SageMaker's `train`/`serve` arguments confuse",
            sent="docker image inspect IMAGE (Config.Entrypoint)",
            expected="an exec-form ENTRYPOINT that is not tini",
            got=f"Config.Entrypoint = {entry}",
            fix="drop tini; make your program PID 1 and handle SIGTERM itself",
        )


@check("t04")
def test_t04_no_files_baked_under_opt_ml(contract_harness: Harness, request: pytest.FixtureRequest) -> None:
    h = contract_harness
    baked = h.baked()
    if not baked:
        return
    shown = ", ".join(baked[:15]) + (f" and {len(baked) - 15} more" if len(baked) > 15 else "")
    # "Needed": training or serving (with SageMaker's empty /opt/ml) failed for want of one of these files.
    jobs = []
    if h.config.capabilities.training:
        run: TrainingRun = request.getfixturevalue("trained_model")
        jobs.append((h.training_root(run), run.summary(), run.log_text()))
    if h.config.capabilities.serving:
        handle: EndpointHandle = request.getfixturevalue("shared_endpoint")
        jobs.append((h.serving_root(handle), str(handle.error or ""), handle.log_text()))
    for root, got, logs in jobs:
        if root is not None and root.check_id == "t04":
            violation(
                "t04",
                f"{root.problem} (the image ships under {OPT_ML}: {shown})",
                sent=f"{OPT_ML} is a fresh, empty volume, as SageMaker mounts it",
                expected=f"nothing the image needs lives under {OPT_ML}",
                got=got,
                logs=logs,
                fix=root.fix,
            )
    warn(
        "t04",
        f"the image ships files under {OPT_ML} that SageMaker hides at run time: {shown}; training and serving did "
        f"not need them, but move them out of {OPT_ML} (e.g. to /opt/program)",
    )


@check("t05")
def test_t05_string_hyperparameters(trained_model: TrainingRun | None, contract_harness: Harness) -> None:
    run = trained_model
    assert run is not None
    hps = run.request.get("HyperParameters") or {}
    if not hps:
        skip(
            "t05",
            "the contract config has no training.hyperparameters; declare the image's hyperparameters "
            "(as strings) to check that it parses them",
        )
    judge(
        contract_harness.training_root(run),
        "t05",
        sent=f"{HYPERPARAMETERS_FILE} = {hps} (every value a JSON string, as SageMaker writes it)",
        expected='`train` parses the strings (e.g. "3" -> 3) and the job completes',
        got=run.summary(),
        logs=run.log_text(),
    )


# -- t06, t07 (one job; split up only to tell which rule broke) ------------------------------------------------
@check("t06")
def test_t06_tolerates_extra_config_keys(
    variant_training: TrainingRun, contract_harness: Harness, trained_model: TrainingRun | None
) -> None:
    _require_trained(trained_model, "t06", contract_harness)
    run = variant_training
    if run.status == "Completed":
        return
    h = contract_harness
    alone = h.train("extra-keys", h.training_request("extra-keys"), extra_config=EXTRA_CONFIG)
    if alone.status != "Completed":
        violation(
            "t06",
            "training failed when the config files carried extra keys",
            sent=f"{alone.sent()}; extra keys: {RESOURCE_CONFIG_FILE} {dict(EXTRA_CONFIG[RESOURCE_CONFIG_FILE])}, "
            f"each {INPUT_DATA_CONFIG_FILE} channel {dict(EXTRA_CONFIG[INPUT_DATA_CONFIG_FILE])}",
            expected="the job completes, as it does without the extra keys (t01)",
            got=alone.summary(),
            logs=alone.log_text(),
        )


@check("t07")
def test_t07_hostnames_from_resourceconfig(
    variant_training: TrainingRun, contract_harness: Harness, trained_model: TrainingRun | None
) -> None:
    _require_trained(trained_model, "t07", contract_harness)
    run = variant_training
    if run.status == "Completed":
        return
    h = contract_harness
    count = 2 if h.config.capabilities.multi_host else 1
    hosts = _random_hosts(count)
    names = _container_hostnames(count)
    alone = h.train(
        "hostnames",
        h.training_request("hostnames", instance_count=count),
        host_names=hosts,
        container_hostnames=names,
    )
    if alone.status != "Completed":
        logs = alone.log_text()
        seen = [n for n in names if n in f"{logs}\n{alone.failure_reason}"]
        violation(
            "t07",
            f"training failed when the hosts were named {hosts} instead of {host_name(0)}..N (container hostname "
            f"{names[0]!r}, as on SageMaker where /etc/hostname is not a name in {RESOURCE_CONFIG_FILE})",
            sent=f"{alone.sent()}; {RESOURCE_CONFIG_FILE} current_host {hosts[0]!r}, hosts {sorted(hosts)}; "
            f"container hostname (/etc/hostname, socket.gethostname()) {names}",
            expected=f"the job completes, as it does with {host_name(0)} (t01)",
            got=alone.summary(),
            logs=logs,
            fix=(
                f"the output shows the container hostname {seen[0]!r}: take current_host from "
                f"{INPUT_CONFIG_DIR}/{RESOURCE_CONFIG_FILE}, not from /etc/hostname or socket.gethostname()"
                if seen
                else None
            ),
        )


# -- t08-t10 --------------------------------------------------------------------------------------------------
@check("t08")
def test_t08_artifacts_in_model_dir(trained_model: TrainingRun | None, contract_harness: Harness) -> None:
    run = _require_trained(trained_model, "t08", contract_harness)
    if not run.model_files():
        violation(
            "t08",
            f"the job completed but {MODEL_DIR} was empty (model.tar.gz holds no file)",
            sent=run.sent(),
            expected=f"model files under {MODEL_DIR}, packaged into model.tar.gz",
            got=f"{run.model_tar}: no files",
            logs=run.log_text(),
        )
    stray = sorted({p for files in run.opt_ml_files.values() for p in files if not _under(p, _UPLOADED_OR_PROVIDED)})
    if stray:
        shown = ", ".join(stray[:15]) + (f" and {len(stray) - 15} more" if len(stray) > 15 else "")
        violation(
            "t08",
            f"the job left files under {OPT_ML} that SageMaker never uploads: {shown}",
            sent=run.sent(),
            expected=f"artifacts only under {MODEL_DIR} (and optionally {OUTPUT_DATA_DIR})",
            got=f"model.tar.gz holds {run.model_files()[:10]}; also left in the container: {shown}",
            logs=run.log_text(),
        )


def _blocked_by_exec(trained: TrainingRun | None, harness: Harness, check_id: str) -> None:
    """Skip ``check_id`` when `train` cannot be executed at all (t02): no other training rule can be judged."""
    root = harness.training_root(trained) if trained is not None else None
    if root is not None and root.check_id == "t02":
        pytest.skip(root.blocked(check_id))


@check("t09")
def test_t09_failure_exits_nonzero(
    failing_training: TrainingRun, trained_model: TrainingRun | None, contract_harness: Harness
) -> None:
    _blocked_by_exec(trained_model, contract_harness, "t09")
    run = failing_training
    if run.timed_out_after_s is not None:
        main = contract_harness.training_root(trained_model) if trained_model is not None else None
        if main is not None:
            pytest.skip(main.blocked("t09"))
        violation(
            "t09",
            f"a job that cannot succeed did not exit within {run.timed_out_after_s:g} s (training.max_runtime_s)",
            sent=run.sent(),
            expected="a non-zero exit soon after the failure (TrainingJobStatus Failed)",
            got=run.summary(),
            logs=run.log_text(),
            fix="exit non-zero as soon as training cannot succeed; leave no thread or child process running",
        )
    if run.status == "Completed":
        violation(
            "t09",
            "a job that cannot succeed ended Completed: `train` exited 0",
            sent=run.sent(),
            expected="a non-zero exit (TrainingJobStatus Failed), e.g. for a missing required channel",
            got=run.summary(),
            logs=run.log_text(),
        )
    if run.status == "Error":
        violation(
            "t09",
            "the failing job could not run at all",
            sent=run.sent(),
            expected="`train` starts and exits non-zero",
            got=run.summary(),
            logs=run.log_text(),
        )


@check("t10")
def test_t10_failure_file_written(
    failing_training: TrainingRun, trained_model: TrainingRun | None, contract_harness: Harness
) -> None:
    _blocked_by_exec(trained_model, contract_harness, "t10")
    run = failing_training
    if run.status != "Failed":
        main = contract_harness.training_root(trained_model) if trained_model is not None else None
        owner = main or RootCause("t09", f"the failing job ended {run.status}, not Failed", CHECKS["t09"].fix)
        pytest.skip(owner.blocked("t10"))
    reason = run.failure_reason
    if not reason.strip() or _EMULATOR_DEFAULT_REASON.match(reason):
        violation(
            "t10",
            f"the job failed without writing {FAILURE_FILE}",
            sent=run.sent(),
            expected=f"a non-empty {FAILURE_FILE} explaining the failure (it becomes FailureReason)",
            got=f"FailureReason {reason!r} (the emulator's fallback: no failure file was written)",
            logs=run.log_text(),
        )
    if len(reason) >= MAX_FAILURE_REASON_CHARS:
        warn(
            "t10",
            f"the failure file is {MAX_FAILURE_REASON_CHARS} characters or longer and FailureReason shows only the "
            f"first {MAX_FAILURE_REASON_CHARS}: put "
            "the reason first",
        )


# -- t11, t12: SIGTERM ----------------------------------------------------------------------------------------
def _require_stopped(run: TrainingRun, check_id: str, harness: Harness, trained: TrainingRun | None) -> float:
    """Seconds from the SIGTERM to the exit; skips honestly when the job ended before the signal."""
    if trained is not None:
        root = harness.training_root(trained)
        if root is not None:
            pytest.skip(root.blocked(check_id))
    if run.status == "Error":
        violation(
            check_id,
            "the SIGTERM job could not run at all",
            sent=run.sent(),
            expected="`train` starts",
            got=run.summary(),
            logs=run.log_text(),
        )
    if run.stopped_at is None or run.status != "Stopped":
        why = (
            "the SIGTERM trigger never fired"
            if run.stopped_at is None
            else "the job ended by itself as the signal was sent"
        )
        skip(
            check_id,
            f"training ended {run.status} after {run.seconds:.1f} s before it could be stopped ({why}; "
            f"trigger: {run.trigger or 'none'}). To exercise this check, make training.sigterm a slower job "
            "(more data, e.g. a channel with repeat: 1000) or set training.sigterm.after_log to a line "
            "`train` prints mid-training",
        )
    assert run.describe is not None
    end: float = run.describe["TrainingEndTime"].timestamp()
    return max(0.0, end - run.stopped_at)


@check("t11")
def test_t11_sigterm_exits_in_time(
    sigterm_training: TrainingRun, contract_harness: Harness, trained_model: TrainingRun | None
) -> None:
    grace = contract_harness.options.training_stop_timeout_s
    run = sigterm_training
    took = _require_stopped(run, "t11", contract_harness, trained_model)
    if took >= grace - 0.05:
        violation(
            "t11",
            f"`train` was still running {grace:g} s after SIGTERM and had to be killed",
            sent=f"{run.sent()}; SIGTERM {run.trigger}",
            expected=f"the container exits within {grace:g} s of SIGTERM (the platform then sends SIGKILL)",
            got=f"no exit within {took:.1f} s: SIGKILL",
            logs=run.log_text(),
        )


@check("t12")
def test_t12_model_saved_on_sigterm(
    sigterm_training: TrainingRun, contract_harness: Harness, trained_model: TrainingRun | None
) -> None:
    run = sigterm_training
    took = _require_stopped(run, "t12", contract_harness, trained_model)
    files = run.model_files()
    if files:
        return
    after_log = contract_harness.config.training.sigterm.after_log
    if after_log is None:
        skip(
            "t12",
            f"training was stopped {run.trigger} and left {MODEL_DIR} empty, which is fine if it had "
            "nothing to save yet; set training.sigterm.after_log to a line `train` prints once a model "
            "(or checkpoint) can be saved, so this check knows when to expect one",
        )
    violation(
        "t12",
        f"the job was stopped after the point the config says a model exists, and {MODEL_DIR} was empty",
        sent=f"{run.sent()}; SIGTERM {run.trigger}",
        expected=f"model files in {MODEL_DIR} after the stop",
        got=f"model.tar.gz holds no file ({run.status}, exited {took:.1f} s after SIGTERM)",
        logs=run.log_text(),
    )
