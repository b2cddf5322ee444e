"""The checks' registry and their failure messages: what was sent, expected, got, the log tail and the fix.

Every check has an id (``t01``, ``s19``, ...), a level (MUST/SHOULD), the capability it needs and its source
in the contract (docs/contract-suite.md has the same table). :func:`violation` fails the running test with
the evidence, so a CI reader never needs to rerun anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import pytest

from emulator.constants import (
    CHECKPOINT_DIR,
    EXECUTION_PARAMETERS_PATH,
    FAILURE_FILE,
    INPUT_CONFIG_DIR,
    INPUT_DIR,
    INVOCATION_TIMEOUT_S,
    INVOCATIONS_PATH,
    MAX_CONCURRENT_PAYLOAD_MB,
    MAX_FAILURE_REASON_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_IN_MB,
    MESSAGE_FILE,
    MODEL_DIR,
    OPT_ML,
    OUTPUT_DATA_DIR,
    PING_PATH,
    PING_TIMEOUT_S,
    PROCESSING_CONFIG_DIR,
    PROCESSING_JOB_CONFIG_FILE,
    RESOURCE_CONFIG_FILE,
    SERVING_PORT,
    SERVING_STOP_GRACE_S,
    TRAINING_STOP_GRACE_S,
    host_name,
)

if TYPE_CHECKING:
    from contract_tests._diagnosis import RootCause

#: Lines of container output shown in a failure.
LOG_TAIL_LINES = 40
_BODY_PREVIEW = 120


class ContractWarning(UserWarning):
    """Issued when an image passes a check but does something the platform may punish (e.g. 5xx for bad input)."""


@dataclass(frozen=True)
class Check:
    """One contract check: its id, what it verifies, MUST/SHOULD, the capability it needs, source and fix."""

    id: str
    title: str
    level: str
    capability: str
    item: int
    source: str
    fix: str


_CHECKS = [
    Check(
        "t01",
        "`train` exits 0 on a valid job",
        "MUST",
        "training",
        1,
        "[DG:your-algorithms-training-algo-dockerfile]",
        "make `train` exit 0 when /opt/ml/input holds a valid job (config JSON files and channel data)",
    ),
    Check(
        "t02",
        "`train` / `serve` resolve (exec-form ENTRYPOINT or executables on PATH)",
        "MUST",
        "training",
        2,
        "[DG:your-algorithms-training-algo-dockerfile], [EX:Dockerfile]",
        "put executables named `train` and `serve` on PATH, or use an exec-form ENTRYPOINT that dispatches on "
        "its last argument",
    ),
    Check(
        "t03",
        "ENTRYPOINT, if set, is exec form and not tini",
        "MUST",
        "any",
        3,
        "[DG:your-algorithms-training-algo-dockerfile], [DG:build-your-own-processing-container]",
        'write ENTRYPOINT ["prog", "arg"] (a JSON array), not `ENTRYPOINT prog arg`, and do not use tini',
    ),
    Check(
        "t04",
        f"nothing the image needs is baked under {OPT_ML}",
        "SHOULD",
        "training",
        4,
        "[DG:your-algorithms-training-algo-dockerfile]",
        f"install code and assets outside {OPT_ML} (e.g. /opt/program); SageMaker mounts over {OPT_ML}",
    ),
    Check(
        "t05",
        "training accepts hyperparameters as strings",
        "MUST",
        "training",
        5,
        "[API:HyperParameters]",
        "parse every hyperparameter from its string (int(hp['max_depth'])): SageMaker passes only strings",
    ),
    Check(
        "t06",
        "training tolerates extra keys in resourceconfig.json / inputdataconfig.json",
        "SHOULD",
        "training",
        6,
        "[TTK:test/unit/test_environment.py], contract section 1.5",
        "read only the keys you need from the config JSON files and ignore the others",
    ),
    Check(
        "t07",
        "training reads host names from resourceconfig.json",
        "SHOULD",
        "training",
        7,
        "[DG:your-algorithms-training-algo-running-container]",
        f"take current_host and hosts from {INPUT_CONFIG_DIR}/{RESOURCE_CONFIG_FILE}; do not hard-code {host_name(0)} "
        "or read /etc/hostname",
    ),
    Check(
        "t08",
        f"artifacts are written only to {MODEL_DIR} (and {OUTPUT_DATA_DIR})",
        "MUST",
        "training",
        8,
        "[DG:your-algorithms-training-algo-output]",
        f"write the model to {MODEL_DIR}; SageMaker uploads only {MODEL_DIR} (model.tar.gz) and "
        f"{OUTPUT_DATA_DIR} (output.tar.gz)",
    ),
    Check(
        "t09",
        "a failing job exits non-zero",
        "MUST",
        "training",
        9,
        "[DG:your-algorithms-training-signal-success-failure]",
        "exit with a non-zero status when training cannot succeed (e.g. a required channel is missing)",
    ),
    Check(
        "t10",
        f"a failing job writes {FAILURE_FILE}",
        "SHOULD",
        "training",
        10,
        "[DG:your-algorithms-training-algo-output], [API:FailureReason]",
        f"write a short reason to {FAILURE_FILE} before exiting non-zero (its first {MAX_FAILURE_REASON_CHARS} "
        "characters become FailureReason)",
    ),
    Check(
        "t11",
        "`train` exits within the grace period after SIGTERM",
        "SHOULD",
        "training",
        11,
        "[DG:your-algorithms-training-algo-dockerfile], [API:StoppingCondition]",
        "make `train` PID 1 (exec-form ENTRYPOINT, `exec` in shell scripts) and exit soon after SIGTERM",
    ),
    Check(
        "t12",
        "model files are saved when `train` is stopped",
        "SHOULD",
        "training",
        12,
        "[API:CreateTrainingJob] (StoppingCondition)",
        f"on SIGTERM, save what you have to {MODEL_DIR} before exiting (the platform allows "
        f"{TRAINING_STOP_GRACE_S:g} s)",
    ),
    Check(
        "s19",
        f"`serve` listens on 0.0.0.0:{SERVING_PORT} and accepts connections within 250 ms",
        "MUST",
        "serving",
        19,
        "[DG:your-algorithms-inference-code]",
        f"bind to 0.0.0.0:{SERVING_PORT}, not 127.0.0.1 or another port",
    ),
    Check(
        "s20",
        f"GET {PING_PATH} answers 200 within {PING_TIMEOUT_S:g} s",
        "MUST",
        "serving",
        20,
        "[DG:your-algorithms-inference-code], [API:ProductionVariant]",
        f"answer GET {PING_PATH} with 200 quickly (no heavy work in the handler) once the model is loaded",
    ),
    Check(
        "s21",
        f"POST {INVOCATIONS_PATH} answers the sample requests with 2xx",
        "MUST",
        "serving",
        21,
        "[DG:your-algorithms-inference-code], [RT:InvokeEndpoint]",
        f"answer POST {INVOCATIONS_PATH} with 2xx and the expected body within {INVOCATION_TIMEOUT_S:g} s",
    ),
    Check(
        "s22",
        f"a {MAX_PAYLOAD_BYTES // 2**20} MiB ({MAX_PAYLOAD_BYTES}-byte) request is not refused by the server's limits",
        "SHOULD",
        "serving",
        22,
        "[RT:BodyBlob], [EX:decision_trees/nginx.conf]",
        f"raise the server's request body limit to at least {MAX_PAYLOAD_BYTES} bytes (nginx: client_max_body_size "
        f"{MAX_PAYLOAD_BYTES // 2**20}m)",
    ),
    Check(
        "s23",
        "malformed input gets a 4xx and the server keeps serving",
        "SHOULD",
        "serving",
        23,
        "[RT:ModelError]",
        "validate the request body and answer 400 with a short message; never crash or hang on bad input",
    ),
    Check(
        "s24",
        "unknown request headers are ignored",
        "MUST",
        "serving",
        24,
        "[DG:your-algorithms-inference-code]",
        "ignore request headers you do not know (SageMaker adds its own)",
    ),
    Check(
        "s25",
        "a missing Accept or Accept: */* is handled",
        "SHOULD",
        "serving",
        25,
        "[XGB:src/sagemaker_xgboost_container/algorithm_mode/serve.py]",
        "treat a missing Accept header or Accept: */* as a request for your default content type",
    ),
    Check(
        "s26",
        f"serving works with {MODEL_DIR} read-only",
        "SHOULD",
        "serving",
        26,
        "contract section 2.1 (observed platform behaviour)",
        f"never write into {MODEL_DIR} while serving; write scratch files to /tmp",
    ),
    Check(
        "s27",
        "the model is loaded from the extracted model.tar.gz, offline",
        "MUST",
        "serving",
        27,
        "[DG:your-algorithms-inference-code], [DG:mkt-algo-model-internet-free]",
        f"load the model from {MODEL_DIR} (SageMaker extracts model.tar.gz there); do not download it at startup",
    ),
    Check(
        "s28",
        f"`serve` exits within {SERVING_STOP_GRACE_S:g} s after SIGTERM",
        "SHOULD",
        "serving",
        28,
        "[DG:your-algorithms-inference-code]",
        "make the server PID 1 (exec-form ENTRYPOINT, `exec` in shell scripts) and shut down on SIGTERM",
    ),
    Check(
        "s43",
        f"`serve` does not need {INPUT_DIR}",
        "MUST",
        "serving",
        43,
        "contract sections 1.2 and 2.1 (hosting mounts only the model; the input tree is training's)",
        f"load everything `serve` needs from {MODEL_DIR} or environment variables: endpoints have no {INPUT_DIR}",
    ),
    Check(
        "s44",
        "`serve` loads the model files `train` writes",
        "MUST",
        "serving",
        44,
        "[DG:your-algorithms-inference-code] (model.tar.gz of the training job is extracted into /opt/ml/model)",
        f"load the files `train` saves to {MODEL_DIR} (same names), or save what `serve` loads",
    ),
    Check(
        "b31",
        f"GET {EXECUTION_PARAMETERS_PATH} is absent or well-formed",
        "MUST",
        "batch_transform",
        31,
        "[DG:your-algorithms-batch-code]",
        'answer {"MaxConcurrentTransforms": <int >= 1>, "BatchStrategy": "MULTI_RECORD" | "SINGLE_RECORD", '
        '"MaxPayloadInMB": <int>} or 404',
    ),
    Check(
        "b32",
        f"{EXECUTION_PARAMETERS_PATH} stays within CreateTransformJob's limits",
        "MUST",
        "batch_transform",
        32,
        "[API:CreateTransformJob]",
        f"keep MaxPayloadInMB <= {MAX_PAYLOAD_IN_MB} and MaxConcurrentTransforms x MaxPayloadInMB <= "
        f"{MAX_CONCURRENT_PAYLOAD_MB}",
    ),
    Check(
        "b33",
        "a multi-record request gets one answer per record, in order",
        "SHOULD",
        "batch_transform",
        33,
        "[DG:your-algorithms-batch-code], [DG:batch-transform]",
        "answer a multi-record body with one output record per input record, in input order",
    ),
    Check(
        "p35",
        "processing exits 0 on a valid job and non-zero on a failing one",
        "MUST",
        "processing",
        35,
        "[DG:build-your-own-processing-container]",
        "exit 0 when the job succeeds and non-zero when it fails",
    ),
    Check(
        "p36",
        "processing writes only under the declared output LocalPaths, no symlinks",
        "MUST",
        "processing",
        36,
        "[API:ProcessingS3Input], [API:ProcessingS3Output], [DG:build-your-own-processing-container]",
        "write results only under the declared output LocalPaths, as regular files (symlinks are not uploaded)",
    ),
    Check(
        "p37",
        f"{MESSAGE_FILE}, if written, is UTF-8",
        "SHOULD",
        "processing",
        37,
        "[DG:build-your-own-processing-container]",
        f"write {MESSAGE_FILE} as UTF-8 text",
    ),
    Check(
        "p38",
        f"processing does not need {INPUT_CONFIG_DIR}",
        "SHOULD",
        "processing",
        38,
        "[DG:build-your-own-processing-container]",
        f"read job metadata from {PROCESSING_CONFIG_DIR}/{PROCESSING_JOB_CONFIG_FILE} and {RESOURCE_CONFIG_FILE}",
    ),
    # Items 41 and 42 are the suite's own, beyond section 9 of the contract reference (sources: its 2.1-2.3).
    Check(
        "s41",
        "an unsupported Content-Type gets a 4xx (415 expected)",
        "MUST",
        "serving",
        41,
        "the suite's own item (contract section 2.3: the client's Content-Type reaches the container): "
        "[RT:InvokeEndpointInput], [DG:your-algorithms-inference-code]",
        "check the request's Content-Type and answer 415 Unsupported Media Type for a type you do not parse; "
        "never parse a body as a type it was not sent as",
    ),
    Check(
        "s42",
        f"serving tolerates extra files in {MODEL_DIR}",
        "MUST",
        "serving",
        42,
        f"the suite's own item (contract section 2.1: model.tar.gz, all of it, is extracted into {MODEL_DIR}): "
        "[DG:your-algorithms-inference-code], [API:ContainerDefinition]",
        f"load the files you need from {MODEL_DIR} by name and ignore the rest (README.md, code/, .DS_Store, "
        "nested directories: what real model.tar.gz files hold)",
    ),
    # The declared-capability checks of contract section 9 that the emulator supports (docs/contract-suite.md).
    Check(
        "t15",
        "training on 2 hosts: both exit 0 and their artifacts merge without name clashes",
        "MUST",
        "multi_host",
        15,
        "[DG:your-algorithms-training-algo-output], [DG:your-algorithms-training-algo-running-container]",
        f"write the model on one host only (the first of `hosts` in {RESOURCE_CONFIG_FILE}), or name each host's "
        f"files apart (e.g. prefixed with current_host): SageMaker merges every host's {MODEL_DIR} into one "
        "model.tar.gz",
    ),
    Check(
        "t16",
        "the job succeeds with network isolation (no network, no AWS credentials)",
        "MUST",
        "network_isolation",
        16,
        "[DG:mkt-algo-model-internet-free], [API:CreateTrainingJob], [API:NetworkConfig]",
        "ship what the job needs in the image or pass it as a channel/input; do not download, call AWS or look up "
        "a network address at run time: with EnableNetworkIsolation the container has no network and no credentials",
    ),
    Check(
        "t17",
        "each MetricDefinitions regex matches a log line and its group 1 parses as a number",
        "SHOULD",
        "training",
        17,
        "[API:MetricDefinition], [API:AlgorithmSpecification], [DG:training-metrics]",
        "print each metric on a line of its own (e.g. `train_accuracy=0.97;`) and make the regex's first group "
        "capture only the number (e.g. `train_accuracy=([0-9.]+);`)",
    ),
    Check(
        "s30",
        "the image runs as root (USER unset, root or 0)",
        "SHOULD",
        "serving",
        30,
        '[DG:your-algorithms-inference-code] ("SageMaker AI expects all containers to run with root users")',
        f"remove the USER instruction (or write USER root): SageMaker runs containers as root and mounts {OPT_ML} "
        "for root",
    ),
    Check(
        "b34",
        "an invocation of the declared MaxPayloadInMB completes within InvocationsTimeoutInSeconds",
        "SHOULD",
        "batch_transform",
        34,
        "[API:ModelClientConfig], [API:CreateTransformJob]",
        "handle a mini-batch of MaxPayloadInMB in time: parse and predict in bulk (no per-record work that grows "
        "with the batch), or declare a smaller MaxPayloadInMB in /execution-parameters",
    ),
    Check(
        "t13",
        "training works with every channel in FastFile mode (channel dirs mounted read-only)",
        "MUST",
        "fastfile",
        13,
        "[DG:your-algorithms-training-algo-running-container]",
        f"only read the channel dirs under {INPUT_DIR}/data: in FastFile mode they are mounted read-only (write "
        "caches, indexes and unpacked files to /tmp), or do not claim fastfile",
    ),
    Check(
        "t14",
        "training works with every channel in Pipe mode: <channel>_0 read to EOF, <channel>_1 waited for",
        "MUST",
        "pipe_mode",
        14,
        "[DG:your-algorithms-training-algo-running-container], [DG:model-access-training-data]",
        f"read the FIFO {INPUT_DIR}/data/<channel>_0 to EOF; for more epochs open <channel>_1, _2, ... and retry "
        "while the next one does not exist yet (SageMaker makes it once the previous epoch has been read)",
    ),
    Check(
        "t18",
        f"checkpoints written to {CHECKPOINT_DIR} are picked up again when the job restarts",
        "SHOULD",
        "checkpointing",
        18,
        "[DG:model-checkpoints], [API:CheckpointConfig]",
        f"write checkpoints to CheckpointConfig.LocalPath ({CHECKPOINT_DIR} unless checkpointconfig.json says "
        "otherwise) while training, and at start resume from the newest one found there: SageMaker copies them "
        "back in when a (spot) job restarts",
    ),
    Check(
        "s29",
        "with accept-bind-to-port=true the server listens on SAGEMAKER_BIND_TO_PORT, not 8080; extra ports stay in "
        "SAGEMAKER_SAFE_PORT_RANGE",
        "MUST",
        "serving",
        29,
        "[DG:inference-pipeline-real-time], [DG:multi-container-direct]",
        "read the port from SAGEMAKER_BIND_TO_PORT (8080 only when it is unset) and open any further port inside "
        "SAGEMAKER_SAFE_PORT_RANGE, or drop the com.amazonaws.sagemaker.capabilities.accept-bind-to-port label",
    ),
    Check(
        "m39",
        "with multi-models=true the container serves the /models API: load (409 twice), list, get, invoke and "
        "unload (404 unknown)",
        "MUST",
        "serving",
        39,
        "[DG:mms-container-apis], [DG:build-multi-model-build-container]",
        'with SAGEMAKER_MULTI_MODEL=true answer POST /models {"model_name", "url"} with 200 (409 if loaded), '
        'GET /models with {"models": [{"modelName", "modelUrl"}]}, GET and DELETE /models/<name> and POST '
        "/models/<name>/invoke with 404 for a model that is not loaded, or drop the "
        "com.amazonaws.sagemaker.capabilities.multi-models label",
    ),
    Check(
        "m40",
        "with multi-models=true a load beyond the container's memory answers 507 and the server lives on",
        "SHOULD",
        "serving",
        40,
        "[DG:mms-container-apis]",
        "before loading a model, check the memory left (the cgroup's memory.current against memory.max) and answer "
        "POST /models with 507 when it does not fit, so that SageMaker unloads another model, instead of loading "
        "until the kernel kills the server",
    ),
]

CHECKS: Mapping[str, Check] = {c.id: c for c in _CHECKS}


def check(check_id: str) -> pytest.MarkDecorator:
    """Mark a test as contract check ``check_id`` (the plugin skips it when its capability is not claimed)."""
    if check_id not in CHECKS:
        raise KeyError(f"unknown contract check {check_id!r}")
    return pytest.mark.sagemaker_check(check_id)


def _indent(text: str, prefix: str = "    | ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` non-trailing lines of ``text``."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def body_preview(body: bytes | str | None, limit: int = _BODY_PREVIEW) -> str:
    """``48 bytes: '5.1,3.5,...'``: the size and the first bytes of a body, printable."""
    if body is None:
        return "no body"
    data = body.encode("utf-8") if isinstance(body, str) else body
    head = data[:limit].decode("utf-8", "replace")
    more = "..." if len(data) > limit else ""
    return f"{len(data)} bytes: {head!r}{more}"


def http_request(
    method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes | str | None = None
) -> str:
    """One line describing an HTTP request, for ``sent=``."""
    hdrs = ", ".join(f"{k}: {v}" for k, v in (headers or {}).items()) or "no headers"
    return f"{method} {path} ({hdrs}), body {body_preview(body)}"


def violation(
    check_id: str,
    problem: str,
    *,
    sent: str | None = None,
    expected: str | None = None,
    got: str | None = None,
    logs: str | None = None,
    fix: str | None = None,
) -> NoReturn:
    """Fail the running test with the evidence of a contract violation.

    Args:
        check_id: the check (``t01``); its level, source and default fix come from the registry.
        problem: one line: what went wrong.
        sent: what the suite sent (request or job).
        expected: what the contract expects.
        got: what came back.
        logs: the container's output (its tail is shown).
        fix: the fix in one sentence (default: the check's own).
    """
    __tracebackhide__ = True
    c = CHECKS[check_id]
    lines = [f"[{c.id}] {c.level}: {c.title} -- {problem}"]
    for label, value in (("sent", sent), ("expected", expected), ("got", got)):
        if value:
            lines.append(f"  {label + ':':<10}{value}")
    lines.append(f"  {'fix:':<10}{fix or c.fix}")
    lines.append(f"  {'source:':<10}SageMaker contract item {c.item}: {c.source}")
    if logs is not None:
        shown = tail(logs)
        lines.append(f"  container log (last {LOG_TAIL_LINES} lines):" if shown else "  container log: (empty)")
        if shown:
            lines.append(_indent(shown))
    pytest.fail("\n".join(lines), pytrace=False)


#: --contract-strict (set by the plugin): a SHOULD the image misses fails its check instead of warning.
STRICT = False


def warn(check_id: str, message: str) -> None:
    """Pass the check, but warn (pytest's warnings summary, JUnit); with --contract-strict, fail it."""
    __tracebackhide__ = True
    if STRICT:
        violation(check_id, f"{message} (a SHOULD: fails under --contract-strict)")
    warnings.warn(ContractWarning(f"[{check_id}] {message}"), stacklevel=2)


def blocked(check_id: str, owner: str, problem: str) -> NoReturn:
    """Skip ``check_id``: it cannot be judged because check ``owner`` fails (``[b32] blocked by [b31]: ...``)."""
    __tracebackhide__ = True
    pytest.skip(f"[{check_id}] blocked by [{owner}]: {problem}")


def judge(
    root: RootCause | None,
    check_id: str,
    *,
    sent: str | None = None,
    expected: str | None = None,
    got: str | None = None,
    logs: str | None = None,
) -> None:
    """Nothing when ``root`` is None; fail ``check_id`` when it owns the root cause; else skip it as blocked by it.

    One failure per root cause: the check that owns the rule fails with the problem and that rule's fix, and every
    other check that needed the job is skipped with ``[id] blocked by [owner]: problem``.
    """
    __tracebackhide__ = True
    if root is None:
        return
    if root.check_id == check_id:
        violation(check_id, root.problem, sent=sent, expected=expected, got=got, logs=logs, fix=root.fix)
    pytest.skip(root.blocked(check_id))


def skip(check_id: str, reason: str) -> NoReturn:
    """Skip the check with a reason that tells how to exercise it."""
    __tracebackhide__ = True
    pytest.skip(f"[{check_id}] {reason}")
