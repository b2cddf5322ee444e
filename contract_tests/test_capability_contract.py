"""Declared-capability checks: t15 multi-host, t16 network isolation, t17 MetricDefinitions, s30 root user, b34
an invocation of the declared MaxPayloadInMB within InvocationsTimeoutInSeconds.

Each runs only when the image claims what it needs (the config's ``capabilities``; t17 also needs
``training.metric_definitions``). They reuse what the other checks run: t15 runs one 2-host job (ahead, in the
background, when selected), t16 judges the main training job and the processing checks' job (both isolated when
``network_isolation`` is claimed) and reruns one with a network only when it failed, to tell a network need from
any other failure (then t16 is blocked by that root cause), t17 reads the main job's log, s30 reads the image's
config, b34 sends one request to the batch container, s29 (only for an image labelled accept-bind-to-port=true,
whose serving container the emulator starts with SAGEMAKER_BIND_TO_PORT) reads the shared endpoint's sockets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from contract_tests import _http
from contract_tests._report import check, http_request, judge, skip, violation
from contract_tests._runs import _KEEP_LINES, EndpointHandle, Harness, ProcessingRun, TrainingRun, require_endpoint
from contract_tests.config import ContractConfig, MetricDefinition
from emulator.constants import (
    BATCH_STRATEGIES,
    BATCH_STRATEGY_ENV,
    CHECKPOINT_DIR,
    DEFAULT_MAX_PAYLOAD_IN_MB,
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    LABEL_ACCEPT_BIND_TO_PORT,
    MAX_METRIC_DEFINITIONS,
    MAX_METRIC_NAME_CHARS,
    MAX_METRIC_REGEX_CHARS,
    MAX_PAYLOAD_IN_MB,
    MODEL_DIR,
    OUTPUT_DATA_DIR,
    RESOURCE_CONFIG_FILE,
    SAFE_PORT_RANGE,
    SERVING_PORT,
    SINGLE_RECORD,
)

#: What a job that needs the network or AWS prints when it has neither (t16 quotes the first such line).
_NETWORK_TROUBLE = re.compile(
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known|NoCredentialsError|"
    r"Unable to locate credentials|Could not connect to the endpoint URL|EndpointConnectionError|urlopen error|"
    r"Max retries exceeded|Connection refused|No route to host|getaddrinfo failed"
)
#: Config.User values that are root (user, optionally ":group").
_ROOT_USERS = ("", "root", "0")


# -- pure judgements (unit-tested in tests/unit/test_contract_capabilities.py) ------------------------------------
def artifact_clashes(files_by_host: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Files under /opt/ml/model or /opt/ml/output/data that more than one host wrote: path -> hosts.

    >>> artifact_clashes({"algo-1": ["/opt/ml/model/m.bin"], "algo-2": ["/opt/ml/model/m.bin", "/opt/ml/x"]})
    {'/opt/ml/model/m.bin': ['algo-1', 'algo-2']}
    """
    writers: dict[str, list[str]] = {}
    for host, files in sorted(files_by_host.items()):
        for path in files:
            if any(path.startswith(root + "/") for root in (MODEL_DIR, OUTPUT_DATA_DIR)):
                writers.setdefault(path, []).append(host)
    return {path: hosts for path, hosts in sorted(writers.items()) if len(hosts) > 1}


def is_root_user(user: str) -> bool:
    """Whether an image's ``Config.User`` runs it as root: unset, ``root`` or ``0``, with any group.

    >>> [is_root_user(u) for u in ("", "root", "0:0", "root:staff", "1000", "model", "nobody:root")]
    [True, True, True, True, False, False, False]
    """
    return user.strip().split(":", 1)[0] in _ROOT_USERS


def metric_limit_problems(definitions: Sequence[MetricDefinition]) -> list[str]:
    """What CreateTrainingJob would refuse in these MetricDefinitions (count, Name and Regex lengths)."""
    problems = []
    if len(definitions) > MAX_METRIC_DEFINITIONS:
        problems.append(f"{len(definitions)} MetricDefinitions, more than {MAX_METRIC_DEFINITIONS}")
    for d in definitions:
        if len(d.name) > MAX_METRIC_NAME_CHARS:
            problems.append(f"metric {d.name[:40]!r}...: Name is {len(d.name)} characters (> {MAX_METRIC_NAME_CHARS})")
        if len(d.regex) > MAX_METRIC_REGEX_CHARS:
            problems.append(f"metric {d.name!r}: Regex is {len(d.regex)} characters (> {MAX_METRIC_REGEX_CHARS})")
    return problems


def metric_problems(definitions: Sequence[MetricDefinition], lines: Sequence[str]) -> dict[str, str]:
    """Metric name -> why its regex fails on these log lines: no capture group, no match, or a group 1 that is
    not a number (SageMaker publishes the first group of every match as a float).

    >>> metric_problems([MetricDefinition("acc", r"acc=(\\S+)")], ["acc=0.5", "acc=0.9;"])
    {'acc': "matched 'acc=0.9;' but group 1 is '0.9;', not a number"}
    """
    problems: dict[str, str] = {}
    for d in definitions:
        rx = re.compile(d.regex)
        if rx.groups < 1:
            problems[d.name] = "the regex has no capture group: SageMaker publishes group 1 as the value"
            continue
        matched = False
        for line in lines:
            for m in rx.finditer(line):
                matched = True
                value = m.group(1)
                try:
                    float(value if value is not None else "")
                except ValueError:
                    problems[d.name] = f"matched {line.strip()[:200]!r} but group 1 is {value!r}, not a number"
                    break
            if d.name in problems:
                break
        if not matched:
            problems[d.name] = "matched no line of the log"
    return problems


def declared_parameters(status: int | None, body: bytes) -> tuple[int | None, str | None]:
    """(MaxPayloadInMB, BatchStrategy) from a ``GET /execution-parameters`` answer; None for what is not usable.

    >>> declared_parameters(200, b'{"MaxPayloadInMB": 20, "BatchStrategy": "SINGLE_RECORD"}')
    (20, 'SingleRecord')
    >>> declared_parameters(404, b""), declared_parameters(200, b"x")
    ((None, None), (None, None))
    """
    if status != 200:
        return None, None
    try:
        doc = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    value = doc.get("MaxPayloadInMB")
    mb = value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
    strategy = doc.get("BatchStrategy")
    return mb, BATCH_STRATEGIES.get(strategy) if isinstance(strategy, str) else None


def _log_lines(run: TrainingRun) -> list[str]:
    """The job's output lines as the containers printed them (the suite keeps them as ``host | line``)."""
    return [line.split(" | ", 1)[1] if " | " in line else line for line in run.logs.text().splitlines()]


def _require_trained(request: pytest.FixtureRequest, harness: Harness, check_id: str) -> TrainingRun:
    """The completed main training job; else ``check_id`` is blocked by its root cause (or owns it)."""
    __tracebackhide__ = True
    run: TrainingRun = request.getfixturevalue("trained_model")
    judge(harness.training_root(run), check_id, sent=run.sent(), got=run.summary(), logs=run.log_text())
    return run


def _two_hosts_job(h: Harness) -> TrainingRun:
    """The main job on 2 hosts (algo-1, algo-2), each host's /opt/ml tree recorded (t15)."""
    return h.train("two-hosts", h.training_request("two-hosts", instance_count=2), record_tree=True)


def _processing_job(h: Harness) -> ProcessingRun:
    """The config's valid processing job: the same one p35-p38 judge (key "processing"), run once."""
    return h.process("process", h.processing_request("process"))


def _checkpoints(h: Harness) -> dict[str, str]:
    """t18's CheckpointConfig: a local S3Uri of this run (the emulator syncs LocalPath there while the job runs and
    seeds it back into a restart)."""
    return {"S3Uri": str(h.workdir / "checkpoints-t18"), "LocalPath": CHECKPOINT_DIR}


def _checkpoint_job(h: Harness) -> TrainingRun:
    """The main job with t18's CheckpointConfig: it starts with an empty checkpoint dir."""
    return h.train("checkpoints", {**h.training_request("checkpoints"), "CheckpointConfig": _checkpoints(h)})


#: The jobs the plugin may start ahead, in the background, when these checks are selected (Harness.ahead).
AHEAD = {
    "t15": [("two-hosts-training", _two_hosts_job)],
    "t18": [("checkpoint-training", _checkpoint_job)],
}


# -- t15 ------------------------------------------------------------------------------------------------------------
@check("t15")
def test_t15_multi_host_training(contract_harness: Harness, request: pytest.FixtureRequest) -> None:
    h = contract_harness
    run = h.once("two-hosts-training", lambda: _two_hosts_job(h))
    if run.status != "Completed":
        _require_trained(request, h, "t15")
        violation(
            "t15",
            f"the job on 2 hosts ended {run.status}, while the same job on 1 host completes (t01)",
            sent=run.sent(),
            expected=f"both hosts exit 0; each reads its own name and the hosts from {RESOURCE_CONFIG_FILE}",
            got=run.summary(),
            logs=run.log_text(),
            fix=f"make `train` work on every host of {RESOURCE_CONFIG_FILE}'s `hosts` (the same image and command "
            "run on each; the peers reach each other by those names) and exit 0 on each",
        )
    clashes = artifact_clashes(run.opt_ml_files)
    if clashes:
        shown = ", ".join(f"{path} ({' and '.join(hosts)})" for path, hosts in list(clashes.items())[:10])
        violation(
            "t15",
            f"the hosts wrote files of the same name, and the merged model.tar.gz keeps only one of each: {shown}",
            sent=run.sent(),
            expected=f"files under {MODEL_DIR} and {OUTPUT_DATA_DIR} written by one host, or named per host",
            got=f"{len(clashes)} file(s) written by more than one host; model.tar.gz holds {run.model_files()[:10]}",
            logs=run.log_text(),
        )


# -- t16 ------------------------------------------------------------------------------------------------------------
def _judge_isolated(isolated: ProcessingRun, with_network: ProcessingRun) -> None:
    """Fail t16: the processing job ``isolated`` failed and ``with_network`` (the same with a network) completed."""
    log = isolated.log_text()
    evidence = next((ln.strip() for ln in log.splitlines() if _NETWORK_TROUBLE.search(ln)), None)
    violation(
        "t16",
        "the processing job fails under EnableNetworkIsolation but completes with a network"
        + (f": {evidence[:200]!r}" if evidence else ""),
        sent=f"{isolated.sent()}, EnableNetworkIsolation true (no network, no AWS credentials)",
        expected="the job completes as it does with a network",
        got=f"isolated: {isolated.summary()}; with a network: {with_network.summary()}",
        logs=log,
    )


@check("t16")
def test_t16_network_isolation(contract_harness: Harness, request: pytest.FixtureRequest) -> None:
    h = contract_harness
    caps = h.config.capabilities
    if not (caps.training or caps.processing):
        skip(
            "t16",
            "the image claims neither training nor processing, the jobs that run with no network here (serving's "
            "side is s27: the emulator's endpoints keep a network to publish port 8080)",
        )
    if caps.training:
        run: TrainingRun = request.getfixturevalue("trained_model")
        if not run.request.get("EnableNetworkIsolation"):
            run = h.train("isolated", {**h.training_request("isolated"), "EnableNetworkIsolation": True})
        # The root cause of an isolated job's failure is t16 when the same job with a network completes (the
        # harness tries that only for a failure nothing else explains); t16 is blocked by any other root cause.
        judge(h.training_root(run), "t16", sent=run.sent(), got=run.summary(), logs=run.log_text())
    if caps.processing:
        # The processing checks' own job, isolated since network_isolation is claimed (one run serves both).
        proc = h.once("processing", lambda: _processing_job(h))
        if not proc.request.get("NetworkConfig", {}).get("EnableNetworkIsolation"):
            req = {**h.processing_request("isolated"), "NetworkConfig": {"EnableNetworkIsolation": True}}
            proc = h.process("isolated", req)
        if proc.status != "Completed":
            req = {**h.processing_request("with-network"), "NetworkConfig": {"EnableNetworkIsolation": False}}
            opened_proc = h.process("with-network", req)
            if opened_proc.status != "Completed":
                skip("t16", f"blocked by [p35]: the processing job fails with a network too ({opened_proc.summary()})")
            _judge_isolated(proc, opened_proc)


# -- t17 ------------------------------------------------------------------------------------------------------------
@check("t17")
def test_t17_metric_definitions_match(contract_config: ContractConfig, request: pytest.FixtureRequest) -> None:
    definitions = contract_config.training.metric_definitions
    if not definitions:
        skip(
            "t17",
            "the contract config has no training.metric_definitions; declare the MetricDefinitions your jobs use "
            "(name and regex) to check that the image's log matches them",
        )
    api = [{"Name": d.name, "Regex": d.regex} for d in definitions]
    limits = metric_limit_problems(definitions)
    if limits:
        violation(
            "t17",
            "; ".join(limits),
            sent=f"AlgorithmSpecification.MetricDefinitions = training.metric_definitions ({len(api)} entries)",
            expected=f"at most {MAX_METRIC_DEFINITIONS} entries, Name 1-{MAX_METRIC_NAME_CHARS} and Regex "
            f"1-{MAX_METRIC_REGEX_CHARS} characters (CreateTrainingJob refuses more)",
            got="; ".join(limits),
            fix=f"keep at most {MAX_METRIC_DEFINITIONS} MetricDefinitions with shorter names and regexes",
        )
    h: Harness = request.getfixturevalue("contract_harness")
    run = _require_trained(request, h, "t17")
    lines = _log_lines(run)
    problems = metric_problems(definitions, lines)
    unmatched = [name for name, why in problems.items() if why == "matched no line of the log"]
    if unmatched and len(lines) >= _KEEP_LINES:
        # The suite keeps the last lines only; the emulator's FinalMetricDataList reads the whole log.
        req = h.training_request("metrics")
        req["AlgorithmSpecification"] = {**req["AlgorithmSpecification"], "MetricDefinitions": api}
        full = h.train("metrics", req)
        found = {m["MetricName"] for m in (full.describe or {}).get("FinalMetricDataList", [])}
        problems = {name: why for name, why in problems.items() if name not in found}
    if problems:
        from emulator.training.describe import final_metrics

        final = {m["MetricName"]: m["Value"] for m in final_metrics(api, lines)}
        shown = "; ".join(f"{name} ({next(d.regex for d in definitions if d.name == name)!r}): {why}"
                          for name, why in problems.items())  # fmt: skip
        violation(
            "t17",
            f"{len(problems)} of {len(definitions)} MetricDefinitions do not give a value: {shown}",
            sent=f"{run.sent()}; MetricDefinitions {api}",
            expected="each regex matches at least one line the job prints, and its group 1 parses as a number",
            got=f"FinalMetricDataList from this log: {final or 'empty'}",
            logs=run.log_text(),
        )


# -- s30 ------------------------------------------------------------------------------------------------------------
@check("s30")
def test_s30_runs_as_root(contract_harness: Harness) -> None:
    user = contract_harness.image_info().user
    if not is_root_user(user):
        violation(
            "s30",
            f"the image runs as user {user!r}, not root",
            sent="docker image inspect IMAGE (Config.User)",
            expected="Config.User empty, root or 0: SageMaker expects containers to run as root",
            got=f"Config.User = {user!r}",
        )


# -- b34 ------------------------------------------------------------------------------------------------------------
def _declared_payload(config: ContractConfig, handle: EndpointHandle) -> tuple[int, str]:
    """The MaxPayloadInMB a transform job sends (config, else the container's answer, else 6) and where from.

    Skips b34 when only the container declares the batch and it asks for SingleRecord: then every request carries
    one record, never a mini-batch of MaxPayloadInMB.
    """
    if config.batch.max_payload_mb is not None:
        return config.batch.max_payload_mb, "batch.max_payload_mb"
    ep = handle.endpoint
    assert ep is not None
    try:
        status, body = ep.invoker.get(EXECUTION_PARAMETERS_PATH, timeout_s=ep.invocation_timeout_s)
    except Exception:
        status, body = None, b""
    answered, strategy = declared_parameters(status, body)
    if strategy == SINGLE_RECORD:
        skip(
            "b34",
            f"GET {EXECUTION_PARAMETERS_PATH} asks for {BATCH_STRATEGY_ENV[SINGLE_RECORD]}: each request carries one "
            "record, not a mini-batch; set batch.max_payload_mb if your transform jobs use MultiRecord",
        )
    if answered is not None:
        return answered, f"GET {EXECUTION_PARAMETERS_PATH}"
    return DEFAULT_MAX_PAYLOAD_IN_MB, "the platform's default"


@check("b34")
def test_b34_max_payload_within_timeout(
    batch_endpoint: EndpointHandle, contract_config: ContractConfig, pytestconfig: pytest.Config
) -> None:
    from emulator.transform.records import payload_limit

    ep = require_endpoint(batch_endpoint, "b34")
    b = contract_config.batch
    mb, source = _declared_payload(contract_config, batch_endpoint)
    size = payload_limit(mb)
    if size is None:
        skip(
            "b34",
            f"MaxPayloadInMB is 0 ({source}): payloads of any size, sent chunked; set batch.max_payload_mb to "
            "the size your transform jobs use",
        )
    if mb > MAX_PAYLOAD_IN_MB:
        skip("b34", f"blocked by [b32]: MaxPayloadInMB {mb} ({source}) is more than CreateTransformJob allows")
    declared_timeout = b.invocations_timeout_s
    # The suite's own invocation bound, when the user set one (--invocation-timeout; formerly --contract-timeout).
    bound: Any = pytestconfig.getoption("contract_invocation_timeout", None) or pytestconfig.getoption(
        "contract_timeout", None
    )
    timeout = min(float(declared_timeout), float(bound)) if bound else float(declared_timeout)
    body = _http.payload_of_size(contract_config.batch_records(), size)
    headers = {"Content-Type": b.content_type, **({"Accept": b.accept} if b.accept else {})}
    answer = _http.post(ep, body, headers, timeout_s=timeout)
    if not answer.ok:
        limit = f"{timeout:g} s" + (
            f" (the suite's --invocation-timeout; InvocationsTimeoutInSeconds is {declared_timeout} s)"
            if timeout < declared_timeout
            else ""
        )
        violation(
            "b34",
            f"a mini-batch of MaxPayloadInMB {mb} ({source}) did not get a 2xx answer within {limit}",
            sent=http_request("POST", INVOCATIONS_PATH, headers, body),
            expected=f"HTTP 2xx within {limit}, SAGEMAKER_BATCH=true (batch.invocations_timeout_s is "
            "ModelClientConfig.InvocationsTimeoutInSeconds)",
            got=answer.describe(),
            logs=batch_endpoint.log_text(),
        )


# -- t13, t14 -------------------------------------------------------------------------------------------------------
def _in_input_mode(h: Harness, request: pytest.FixtureRequest, check_id: str, mode: str, expected: str) -> None:
    """The main training job with every channel in ``mode`` must complete as it does in File mode (t01)."""
    label = mode.lower()
    req = h.training_request(label)
    if not req.get("InputDataConfig"):
        skip(check_id, f"the config's training job has no channels, so {mode} mode changes nothing")
    req["InputDataConfig"] = [{**ch, "InputMode": mode} for ch in req["InputDataConfig"]]
    run = h.train(label, req)
    if run.status == "Completed":
        return
    _require_trained(request, h, check_id)  # the File-mode job must complete first, else it owns the cause
    violation(
        check_id,
        f"the training job ended {run.status} with every channel in {mode} mode, while in File mode it completes (t01)",
        sent=f"{run.sent()}, InputMode {mode} on every channel",
        expected=expected,
        got=run.summary(),
        logs=run.log_text(),
    )


@check("t13")
def test_t13_fastfile_read_only(contract_harness: Harness, request: pytest.FixtureRequest) -> None:
    _in_input_mode(
        contract_harness,
        request,
        "t13",
        "FastFile",
        "the job completes reading the channel dirs, which are mounted read-only",
    )


@check("t14")
def test_t14_pipe_mode_fifos(contract_harness: Harness, request: pytest.FixtureRequest) -> None:
    _in_input_mode(
        contract_harness,
        request,
        "t14",
        "Pipe",
        "the job completes reading /opt/ml/input/data/<channel>_0 (a FIFO) to EOF, and waits for <channel>_1 (made "
        "only once epoch 0 has been read) if it reads a second epoch",
    )


# -- t18 ------------------------------------------------------------------------------------------------------------
def _checkpoint_files(location: Path) -> list[str]:
    """The files at a local CheckpointConfig.S3Uri, relative to it."""
    return sorted(p.relative_to(location).as_posix() for p in location.rglob("*") if p.is_file())


def _matching_line(run: TrainingRun, pattern: re.Pattern[str]) -> str | None:
    """The first log line of ``run`` that ``pattern`` matches."""
    return next((line for line in _log_lines(run) if pattern.search(line)), None)


@check("t18")
def test_t18_checkpoints_resumed(contract_harness: Harness, request: pytest.FixtureRequest) -> None:
    h = contract_harness
    regex = h.config.training.checkpointing.resume_log or ""  # required when checkpointing is claimed
    resume = re.compile(regex)
    checkpoints = _checkpoints(h)
    location = Path(checkpoints["S3Uri"])
    first = h.once("checkpoint-training", lambda: _checkpoint_job(h))  # started ahead when t18 is selected
    sent = f"{first.sent()}, CheckpointConfig {checkpoints}"
    if first.status != "Completed":
        _require_trained(request, h, "t18")  # the job without a CheckpointConfig must complete first
        violation(
            "t18",
            f"with a CheckpointConfig the training job ended {first.status}, while without one it completes (t01)",
            sent=sent,
            expected=f"the job completes, writing its checkpoints to {CHECKPOINT_DIR}",
            got=first.summary(),
            logs=first.log_text(),
        )
    written = _checkpoint_files(location)
    if not written:
        violation(
            "t18",
            f"the job wrote no checkpoint: no file under {CHECKPOINT_DIR} reached CheckpointConfig.S3Uri",
            sent=sent,
            expected=f"checkpoint files under {CHECKPOINT_DIR} (checkpointconfig.json's LocalPath)",
            got=f"{first.summary()}; the checkpoint location holds nothing",
            logs=first.log_text(),
        )
    early = _matching_line(first, resume)
    if early is not None:
        violation(
            "t18",
            f"the first job started with an empty {CHECKPOINT_DIR} and still printed a line that resume_log "
            f"{regex!r} matches: {early.strip()[:200]!r}",
            sent=sent,
            expected="the resume line only when checkpoints were found at the start",
            got=first.summary(),
            logs=first.log_text(),
            fix="print the resume line only when a checkpoint was found, or make training.checkpointing.resume_log "
            "match only that line",
        )
    restart = h.train(
        "checkpoints-restart", {**h.training_request("checkpoints-restart"), "CheckpointConfig": checkpoints}
    )
    seeded = f"{CHECKPOINT_DIR} seeded with the first job's checkpoints {written[:10]}"
    if restart.status != "Completed" or _matching_line(restart, resume) is None:
        what = f"ended {restart.status}" if restart.status != "Completed" else f"printed no line matching {regex!r}"
        violation(
            "t18",
            f"the restarted job ({seeded}) {what}: it did not resume from them",
            sent=f"{restart.sent()}, CheckpointConfig {checkpoints} (the same as the first job's)",
            expected=f"the job completes and resumes from the checkpoints in {CHECKPOINT_DIR} (a log line matching "
            f"resume_log {regex!r})",
            got=restart.summary(),
            logs=restart.log_text(),
        )


# -- s29 ------------------------------------------------------------------------------------------------------------
def port_problems(listening: Sequence[tuple[str, int]], bind_port: int, safe: tuple[int, int]) -> list[str]:
    """What breaks rule 29 in a container's listening sockets ((address, port) pairs), given the port it was told.

    >>> port_problems([("0.0.0.0", 9001), ("0.0.0.0", 9100)], 9001, (9100, 9199))
    []
    >>> port_problems([("0.0.0.0", 9001), ("0.0.0.0", 8080), ("127.0.0.1", 7000)], 9001, (9100, 9199))
    ['it also listens on 8080', 'port 7000 (127.0.0.1) is outside SAGEMAKER_SAFE_PORT_RANGE 9100-9199']
    """
    problems = []
    if not any(port == bind_port and not address.startswith("127.") for address, port in listening):
        problems.append(f"nothing listens on SAGEMAKER_BIND_TO_PORT {bind_port} on all interfaces")
    if any(port == SERVING_PORT for _, port in listening) and bind_port != SERVING_PORT:
        problems.append(f"it also listens on {SERVING_PORT}")
    low, high = safe
    outside = sorted({(p, a) for a, p in listening if p not in (bind_port, SERVING_PORT) and not low <= p <= high})
    problems += [f"port {p} ({a}) is outside SAGEMAKER_SAFE_PORT_RANGE {low}-{high}" for p, a in outside]
    return problems


@check("s29")
def test_s29_bind_to_port_honoured(contract_harness: Harness, sagemaker_endpoint: EndpointHandle) -> None:
    label = contract_harness.image_info().labels.get(LABEL_ACCEPT_BIND_TO_PORT, "")
    if label.strip().lower() != "true":
        skip(
            "s29",
            f"the image does not claim {LABEL_ACCEPT_BIND_TO_PORT}=true (label {label or 'unset'}): SageMaker then "
            f"uses port {SERVING_PORT}; add the label only if `serve` honours SAGEMAKER_BIND_TO_PORT",
        )
    ep = require_endpoint(sagemaker_endpoint, "s29")
    listening = ep.listeners()
    if listening is None:
        skip("s29", "the container's listening sockets could not be read (`cat /proc/net/tcp` failed in it)")
    low, high = SAFE_PORT_RANGE
    problems = port_problems([(x.address, x.port) for x in listening], ep.container_port, SAFE_PORT_RANGE)
    if problems:
        violation(
            "s29",
            "; ".join(problems),
            sent=f"docker run IMAGE serve with SAGEMAKER_BIND_TO_PORT={ep.container_port} and "
            f"SAGEMAKER_SAFE_PORT_RANGE={low}-{high}",
            expected=f"the server listens on {ep.container_port}, not on {SERVING_PORT}; any other port within "
            f"{low}-{high}",
            got="listening: " + ", ".join(sorted(str(x) for x in listening)),
            logs=sagemaker_endpoint.log_text(),
        )
