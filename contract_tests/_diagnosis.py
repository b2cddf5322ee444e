"""One root cause per failure: which check owns why training or serving did not work, with that rule's fix.

When ``train`` or ``serve`` fails, every check that needs the job fails with it. A user needs one failure that
names the root cause in its first line, from the check that owns the rule, and the others reported as blocked
by it (skipped with that reason). The functions here take what a failed job left (its error, FailureReason and
log) and return that :class:`RootCause`; they work on text only, so they are tested without Docker
(tests/unit/test_contract_diagnosis.py).

Owners, in the order they are tried (the first sign found wins):

* ``t02`` -- ``train``/``serve`` cannot be executed (not found, not executable, no ``#!`` line, CRLF line
  endings) or the ENTRYPOINT ignores its argument (``docker run IMAGE train`` starts a server, ``serve`` trains);
* ``t04`` -- the program needs a file the image bakes under /opt/ml, which SageMaker's mount hides;
* ``s19`` / ``s20`` -- the server listens on 127.0.0.1 or another port / ``/ping`` answers an error or too slowly
  (the emulator's ``fail_fast`` signs, emulator.serving.readiness);
* ``s43`` -- ``serve`` needs /opt/ml/input, which hosting does not have;
* ``s44`` -- ``serve`` looks for a model file that ``train`` did not write;
* ``s26`` -- ``serve`` writes into the read-only /opt/ml/model;
* ``s27`` -- ``serve`` reaches for the network or AWS at start-up;
* ``t01`` / ``s20`` -- anything else: the job failed / the server never became healthy, with what was seen.

>>> diagnose_training(log="/usr/bin/env: 'python3\\r': No such file or directory", status="Failed").check_id
't02'
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from emulator.constants import INPUT_DATA_DIR, INPUT_DIR, MODEL_DIR, OPT_ML, PING_PATH, SERVING_PORT


@dataclass(frozen=True)
class RootCause:
    """Why a job did not work: the check that owns the rule, the problem (one line) and the fix (one sentence)."""

    check_id: str
    problem: str
    fix: str

    def blocked(self, check_id: str) -> str:
        """The skip reason of a check that could not run because of this: ``[s21] blocked by [s19]: ...``."""
        return f"[{check_id}] blocked by [{self.check_id}]: {self.problem}"


# -- signs ---------------------------------------------------------------------------------------------------
#: A shebang with CRLF line endings: env prints the interpreter's name with an escaped or a real CR.
_CRLF = re.compile("(\r|\\\\r)['\u2019]|\\^M|\\$'\\\\r'|bad interpreter: .*\r")
_NO_SHEBANG = re.compile(r"exec format error")
_NOT_EXECUTABLE = re.compile(r"permission denied", re.I)
_NOT_FOUND = re.compile(
    r"executable file not found|cannot run '(train|serve)'|\b(train|serve): not found|exit code: 127\b"
)
#: A server announcing that it listens on the serving port (gunicorn, uvicorn, Flask, waitress, generic).
_SERVER_STARTED = re.compile(
    rf"(Listening at|Running on|running on|Serving on|serving on|listening on|Listening on)\b[^\n]*:{SERVING_PORT}\b"
    r"|Booting worker with pid"
)
_MISSING_FILE = re.compile(
    r"(?:No such file or directory|not found|does not exist|FileNotFoundError)[^\n]*?'?(/opt/ml/[^'\s:,)]+)"
)
_PATH = re.compile(r"(/opt/ml/[\w./-]+)")
_READ_ONLY = re.compile(r"Read-only file system")
_NETWORK = re.compile(
    r"NoCredentialsError|Unable to locate credentials|Could not connect to the endpoint URL|"
    r"Temporary failure in name resolution|Name or service not known|urlopen error|Connection refused|"
    r"Max retries exceeded|EndpointConnectionError"
)
_LOOPBACK = re.compile(
    r"(?i)\b(listen\w*|bind\w*|bound|running|serving|on)\b[^\n]{0,20}?(?<![\d.])(127\.0\.0\.1|localhost):\d+"
)
_LOG_NUMBERS = re.compile(r"\d+(\.\d+)?")


def exec_problem(command: str, text: str) -> RootCause | None:
    """``command`` (train or serve) could not be executed at all: the sign in ``text`` and its fix, or None."""
    run = f"`docker run IMAGE {command}`"
    if _CRLF.search(text):
        return RootCause(
            "t02",
            f"{run} failed: `{command}` has Windows (CRLF) line endings, so its #! line names an interpreter "
            "ending in '\\r'",
            f"convert `{command}` to LF line endings (dos2unix, or `* text eol=lf` in .gitattributes) and rebuild",
        )
    if _NO_SHEBANG.search(text):
        return RootCause(
            "t02",
            f"{run} failed with 'exec format error': `{command}` is a script without a #! line, or a binary "
            "built for another CPU architecture",
            f"start `{command}` with a #! line (e.g. #!/usr/bin/env python3), or build the image for this "
            "machine's architecture",
        )
    if _NOT_EXECUTABLE.search(text) and re.search(r"exec|cannot run|exit code: 126\b", text):
        return RootCause(
            "t02",
            f"{run} failed: `{command}` is not executable (permission denied)",
            f"make it executable in the Dockerfile (RUN chmod +x /path/to/{command})",
        )
    if _NOT_FOUND.search(text):
        return RootCause(
            "t02",
            f"{run} did not find `{command}`",
            f"put an executable named `{command}` on PATH, or use an exec-form ENTRYPOINT that dispatches on its "
            "last argument",
        )
    return None


def _baked_path(text: str, baked: Collection[str]) -> str | None:
    """A path the image bakes under /opt/ml that the text mentions (the program looked for it)."""
    for path in _PATH.findall(text):
        clean = str(path).rstrip(".'\"")
        if clean in baked:
            return clean
    return None


def _baked(baked: Collection[str], path: str) -> RootCause:
    return RootCause(
        "t04",
        f"the program needs {path}, which the image ships under {OPT_ML}; SageMaker mounts over {OPT_ML}, so it "
        "is gone at run time",
        f"install code and assets outside {OPT_ML} (e.g. /opt/program) and read them from there",
    )


def _normalized_head(log: str, lines: int = 3) -> list[str]:
    """The first lines of a log with numbers blanked (timestamps, pids, sizes), to tell which program ran."""
    out = []
    for line in log.splitlines():
        text = line.split(" | ", 1)[-1].strip()  # the suite's LogBuffer prefixes "host | "
        if text:
            out.append(_LOG_NUMBERS.sub("#", text))
        if len(out) == lines:
            break
    return out


# -- training ------------------------------------------------------------------------------------------------
def diagnose_training(
    *,
    log: str = "",
    status: str = "Failed",
    failure_reason: str = "",
    error: str = "",
    timed_out_after_s: float | None = None,
    channels: Sequence[str] = (),
    baked: Collection[str] = (),
) -> RootCause:
    """The root cause of a training job that did not complete (``status`` Failed, Stopped or Error)."""
    text = f"{error}\n{failure_reason}\n{log}"
    found = exec_problem("train", text)
    if found is not None:
        return found
    server = _SERVER_STARTED.search(log)
    if server is not None:
        return RootCause(
            "t02",
            f"`docker run IMAGE train` started an HTTP server ({server.group(0).strip()[:120]!r}): the ENTRYPOINT "
            "runs `serve` whatever argument SageMaker passes",
            "make the ENTRYPOINT dispatch on its last argument (`train` trains, `serve` serves), or drop it and put "
            "executables named `train` and `serve` on PATH",
        )
    path = _baked_path(text, baked)
    if path is not None:
        return _baked(baked, path)
    missing = re.findall(rf"{re.escape(INPUT_DATA_DIR)}/([\w.-]+)", text)
    unknown = sorted({m for m in missing if m not in channels})
    if unknown:
        return RootCause(
            "t01",
            f"`train` looks for channel {unknown[0]!r} ({INPUT_DATA_DIR}/{unknown[0]}) but the job has channels "
            f"{sorted(channels)}",
            f"name the channels in the contract config (training.channels) as the image expects ({unknown[0]!r}), "
            f"or make `train` read the channel names from {INPUT_DIR}/config/inputdataconfig.json",
        )
    if timed_out_after_s is not None:
        return RootCause(
            "t01",
            f"`train` did not exit within {timed_out_after_s:g} s (the contract config's training.max_runtime_s); "
            "the job was stopped",
            "make `train` exit when training is done (no non-daemon threads or child processes left running); "
            "if training really takes longer, raise training.max_runtime_s",
        )
    reason = (failure_reason or error or "no FailureReason").strip().splitlines()[0][:300]
    return RootCause(
        "t01",
        f"the training job ended {status}, not Completed ({reason})",
        f"make `train` exit 0 when {INPUT_DIR} holds a valid job (config JSON files and channel data); the "
        "container log shows where it stopped",
    )


# -- serving -------------------------------------------------------------------------------------------------
def diagnose_serving(
    *,
    log: str = "",
    error: str = "",
    cause: str = "",
    fix: str = "",
    exited: bool = False,
    training_log: str = "",
    baked: Collection[str] = (),
    model_files: Sequence[str] = (),
) -> RootCause:
    """The root cause of a serving container that did not pass /ping.

    ``cause``/``fix``: the emulator's fail-fast sign (``EndpointNotReady.cause``), if any; ``exited``: the
    container exited before it was healthy; ``training_log``: what ``train`` printed (to tell that ``serve`` ran
    the training program); ``model_files``: what /opt/ml/model held.
    """
    # The emulator's message names the published URL (http://127.0.0.1:PORT): not the server's own binding.
    err = re.sub(r"https?://127\.0\.0\.1:\d+", "<published port>", error)
    text = f"{err}\n{log}"
    first_line = err.strip().splitlines()[0][:250] if err.strip() else "it did not become healthy"
    found = exec_problem("serve", text)
    if found is not None:
        return found
    head = _normalized_head(log, 2)
    channel_data = re.search(rf"{re.escape(INPUT_DATA_DIR)}/[\w.-]+", log)
    if (len(head) == 2 and head == _normalized_head(training_log, 2)) or channel_data is not None:
        seen = (
            f"it looked for channel data, {channel_data.group(0)}"
            if channel_data
            else "its output starts like `train`'s"
        )
        return RootCause(
            "t02",
            f"`docker run IMAGE serve` ran the training program ({seen}): the ENTRYPOINT runs `train` whatever "
            "argument SageMaker passes",
            "make the ENTRYPOINT dispatch on its last argument (`train` trains, `serve` serves), or drop it and put "
            "executables named `train` and `serve` on PATH",
        )
    if cause == "other-port" and "SAGEMAKER_BIND_TO_PORT" in fix:  # a labelled image that ignores the variable
        return RootCause("s29", first_line.split("will not pass the /ping health check: ")[-1].split(" (")[0], fix)
    if cause in ("loopback-only", "other-port"):
        return RootCause("s19", first_line.split("will not pass the /ping health check: ")[-1].split(" (")[0], fix)
    if cause in ("ping-status", "ping-slow"):
        return RootCause("s20", first_line.split("will not pass the /ping health check: ")[-1].split(" (")[0], fix)
    path = _baked_path(text, baked)
    if path is not None:
        return _baked(baked, path)
    missing = [m.rstrip(".'\"") for m in _MISSING_FILE.findall(log)]
    needs_input = [p for p in missing + _PATH.findall(log) if p == INPUT_DIR or p.startswith(INPUT_DIR + "/")]
    if needs_input and exited:
        return RootCause(
            "s43",
            f"`serve` needs {needs_input[0]}, but endpoints have no {INPUT_DIR} (only training jobs do)",
            f"load everything `serve` needs from {MODEL_DIR} (put what training knows, e.g. hyperparameters, into "
            f"the model files `train` writes) or from environment variables",
        )
    model_missing = [p for p in missing if p.startswith(MODEL_DIR + "/")]
    if model_missing:
        held = ", ".join(model_files[:8]) or "nothing"
        return RootCause(
            "s44",
            f"`serve` looks for {model_missing[0]}, which `train` did not write ({MODEL_DIR} holds {held})",
            f"load the files `train` saves to {MODEL_DIR} (same names), or save what `serve` loads",
        )
    if _READ_ONLY.search(log):
        return RootCause(
            "s26",
            f"`serve` writes into a read-only directory ({MODEL_DIR} is mounted read-only): {first_line}",
            "never write into /opt/ml/model while serving; write scratch files to /tmp",
        )
    if _NETWORK.search(log):
        return RootCause(
            "s27",
            f"`serve` reaches for the network or AWS at start-up: {first_line}",
            f"load the model from {MODEL_DIR} (SageMaker extracts model.tar.gz there; endpoints may have no network)",
        )
    if _LOOPBACK.search(log):
        return RootCause(
            "s19",
            f"the server seems to listen on 127.0.0.1 inside the container: {first_line}",
            f"bind to 0.0.0.0:{SERVING_PORT}, not 127.0.0.1 or localhost",
        )
    if not exited and re.search(r"last answer: [^)]*(refused|reset|aborted|RemoteDisconnected)", err, re.I):
        return RootCause(
            "s19",
            f"nothing accepted connections on port {SERVING_PORT} before the start-up bound: {first_line}",
            f"start the server at once and bind it to 0.0.0.0:{SERVING_PORT}",
        )
    if exited:
        return RootCause(
            "s20",
            f"`serve` exited before GET {PING_PATH} answered 200: {first_line}",
            "make `serve` start the server and keep running; the container log shows why it stopped",
        )
    return RootCause(
        "s20",
        f"GET {PING_PATH} never answered 200: {first_line}",
        f"answer GET {PING_PATH} with 200 once the model is loaded (503 while it loads); if loading takes longer "
        "than the start-up bound, raise --startup-timeout",
    )
