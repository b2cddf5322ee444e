"""The contract suite's declared-capability checks without Docker: config fields, the gate, and the judgements.

t15 (multi-host), t16 (network isolation), t17 (MetricDefinitions), s30 (root user) and b34 (an invocation of
MaxPayloadInMB in time) each judge with a pure function of contract_tests/test_capability_contract.py; the gate
(contract_tests/plugin.py) is run for real in a pytest subprocess with a config that claims nothing, then all.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract_tests.config import ContractConfigError, MetricDefinition, from_mapping, load_config, starter_yaml
from contract_tests.test_capability_contract import (
    artifact_clashes,
    declared_parameters,
    is_root_user,
    metric_limit_problems,
    metric_problems,
)
from emulator.constants import (
    DEFAULT_INVOCATIONS_TIMEOUT_S,
    MAX_INVOCATIONS_TIMEOUT_S,
    MAX_METRIC_DEFINITIONS,
    MAX_METRIC_NAME_CHARS,
    MAX_METRIC_REGEX_CHARS,
    MAX_PAYLOAD_IN_MB,
    MULTI_RECORD,
    SINGLE_RECORD,
)

REPO = Path(__file__).resolve().parents[2]
SINGLE, MULTI = SINGLE_RECORD, MULTI_RECORD
#: Each new check and the capability whose absence the gate names first.
NEW_CHECKS = {
    "t15": "multi_host",
    "t16": "network_isolation",
    "t17": "training",
    "s30": "serving",
    "b34": "batch_transform",
}
NOTHING_CLAIMED = {"training": False, "serving": False, "batch_transform": False, "processing": False}


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


# -- config fields -------------------------------------------------------------------------------------------------
def test_new_fields_default_to_no_claim_and_the_platforms_values() -> None:
    config = from_mapping({})
    assert config.capabilities.multi_host is False
    assert config.capabilities.network_isolation is False
    assert config.training.metric_definitions == []
    assert config.batch.max_payload_mb is None
    assert config.batch.invocations_timeout_s == DEFAULT_INVOCATIONS_TIMEOUT_S


def test_metric_definitions_and_batch_fields_are_read() -> None:
    config = from_mapping(
        {
            "training": {"metric_definitions": [{"name": "loss", "regex": r"loss=(\S+)"}]},
            "batch": {"max_payload_mb": 20, "invocations_timeout_s": 120},
        }
    )
    assert config.training.metric_definitions == [MetricDefinition("loss", r"loss=(\S+)")]
    assert (config.batch.max_payload_mb, config.batch.invocations_timeout_s) == (20, 120)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"training": {"metric_definitions": [{"name": "x"}]}}, "training.metric_definitions[0].regex"),
        ({"training": {"metric_definitions": [{"name": "x", "regx": "a"}]}}, "training.metric_definitions[0].regx"),
        ({"batch": {"max_payload_mb": "6"}}, "batch.max_payload_mb"),
    ],
)
def test_schema_errors_name_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ContractConfigError, match=rf"field {re.escape(repr(field))}"):
        from_mapping(doc)


MD = "training.metric_definitions[0]"
TIMEOUT_RANGE = f"1 to {MAX_INVOCATIONS_TIMEOUT_S}"


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ({"training": {"metric_definitions": [{"name": "x", "regex": "acc=(["}]}}, f"{MD}.regex", "not a regular"),
        ({"training": {"metric_definitions": [{"name": " ", "regex": "a=(1)"}]}}, f"{MD}.name", "non-empty"),
        ({"batch": {"max_payload_mb": MAX_PAYLOAD_IN_MB + 1}}, "batch.max_payload_mb", f"0 to {MAX_PAYLOAD_IN_MB}"),
        ({"batch": {"max_payload_mb": -1}}, "batch.max_payload_mb", f"0 to {MAX_PAYLOAD_IN_MB}"),
        ({"batch": {"invocations_timeout_s": 0}}, "batch.invocations_timeout_s", TIMEOUT_RANGE),
        ({"batch": {"invocations_timeout_s": MAX_INVOCATIONS_TIMEOUT_S + 1}}, "batch.invocations_timeout_s", "1 to"),
        ({"capabilities": {"multi_host": True}}, "capabilities.multi_host", "claim training too"),
    ],
)
def test_semantic_errors_name_the_field(tmp_path: Path, doc: dict[str, Any], field: str, message: str) -> None:
    doc = {**doc, "capabilities": {**NOTHING_CLAIMED, **doc.get("capabilities", {})}}
    with pytest.raises(ContractConfigError, match=rf"field {re.escape(repr(field))}.*{message}"):
        load_config(_write(tmp_path, doc))


def test_limits_of_the_platform_are_the_checks_not_the_loaders(tmp_path: Path) -> None:
    # t17 reports what CreateTrainingJob would refuse, so the loader takes it.
    many = [{"name": f"m{i}", "regex": f"m{i}=([0-9.]+)"} for i in range(MAX_METRIC_DEFINITIONS + 1)]
    config = load_config(_write(tmp_path, {"capabilities": NOTHING_CLAIMED, "training": {"metric_definitions": many}}))
    assert len(config.training.metric_definitions) == MAX_METRIC_DEFINITIONS + 1


def test_the_starter_documents_and_accepts_every_new_field() -> None:
    text = starter_yaml()
    for name in ("multi_host", "network_isolation", "metric_definitions", "max_payload_mb", "invocations_timeout_s"):
        assert name in text, name
    # The commented examples are valid once uncommented.
    uncommented = re.sub(r"(?m)^(\s*)# (metric_definitions:|  - \{name|max_payload_mb:)", r"\1\2", text)
    filled = re.sub(r'"<FILL IN: [^"]*>"', '"x"', uncommented)
    config = from_mapping(yaml.safe_load(filled))
    assert config.training.metric_definitions == [MetricDefinition("train:loss", "loss=([0-9.]+);")]
    assert config.batch.max_payload_mb == 6
    for check_id in NEW_CHECKS:
        assert check_id in text, f"the starter does not say which field serves {check_id}"


def test_the_sample_config_claims_multi_host_and_a_metric_the_sample_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    config = load_config(None)
    assert config.capabilities.multi_host
    assert config.capabilities.network_isolation
    assert config.training.metric_definitions
    # The sample's own `train`, in-process, on the config's channel: its log must satisfy the config's regexes.
    program = str(REPO / "sample_algorithm" / "program")
    sys.path.insert(0, program)
    try:
        from iris_tree import train
    finally:
        sys.path.remove(program)
    root = tmp_path / "ml"
    for name, channel in config.training.channels.items():
        (root / "input" / "data" / name).mkdir(parents=True)
        (root / "input" / "data" / name / "data.csv").write_bytes(config.path(channel.path).read_bytes())
    assert train.main(root=root) == 0
    lines = capsys.readouterr().out.splitlines()
    assert metric_problems(config.training.metric_definitions, lines) == {}


# -- judgements ----------------------------------------------------------------------------------------------------
def test_artifact_clashes_are_files_of_one_name_from_several_hosts_under_model_or_output_data() -> None:
    files = {
        "algo-2": ["/opt/ml/model/model.joblib", "/opt/ml/output/data/report.txt", "/opt/ml/input/data/train/a.csv"],
        "algo-1": ["/opt/ml/model/model.joblib", "/opt/ml/model/algo-1.json", "/opt/ml/input/data/train/a.csv"],
        "algo-3": ["/opt/ml/output/data/report.txt", "/opt/ml/model/algo-3.json"],
    }
    assert artifact_clashes(files) == {
        "/opt/ml/model/model.joblib": ["algo-1", "algo-2"],
        "/opt/ml/output/data/report.txt": ["algo-2", "algo-3"],
    }
    assert artifact_clashes({"algo-1": ["/opt/ml/model/m"], "algo-2": ["/opt/ml/model/n"]}) == {}


@pytest.mark.parametrize(
    ("user", "root"),
    [("", True), ("root", True), ("0", True), ("0:0", True), ("root:users", True), (" root ", True),
     ("1000", False), ("model", False), ("1000:0", False), ("nobody:root", False), ("rootless", False)],
)  # fmt: skip
def test_root_user(user: str, root: bool) -> None:
    assert is_root_user(user) is root


LOG = ["hyperparameters: {}", "train_accuracy=0.9667;", "epoch 1 loss: nan", "epoch 2 loss: 0.25", "done"]


@pytest.mark.parametrize(
    ("regex", "why"),
    [
        (r"train_accuracy=([0-9.]+);", None),
        (r"loss: (\S+)", None),  # "nan" parses as a float, as in Python
        (r"train_accuracy=[0-9.]+;", "no capture group"),
        (r"validation_accuracy=([0-9.]+);", "matched no line"),
        (r"train_accuracy=(\S+)", "group 1 is '0.9667;', not a number"),
        (r"done|(never)", "group 1 is None, not a number"),
    ],
)
def test_metric_problems(regex: str, why: str | None) -> None:
    problems = metric_problems([MetricDefinition("m", regex)], LOG)
    if why is None:
        assert problems == {}
    else:
        assert why in problems["m"]


def test_metric_limit_problems_name_each_limit() -> None:
    ok = [MetricDefinition("a" * MAX_METRIC_NAME_CHARS, "x" * MAX_METRIC_REGEX_CHARS)] * MAX_METRIC_DEFINITIONS
    assert metric_limit_problems(ok) == []
    too_many = metric_limit_problems([MetricDefinition("m", "m=(1)")] * (MAX_METRIC_DEFINITIONS + 1))
    assert too_many == [f"{MAX_METRIC_DEFINITIONS + 1} MetricDefinitions, more than {MAX_METRIC_DEFINITIONS}"]
    long_regex = metric_limit_problems([MetricDefinition("m", "x" * (MAX_METRIC_REGEX_CHARS + 1))])
    assert len(long_regex) == 1
    assert "Regex is" in long_regex[0]
    long_name = metric_limit_problems([MetricDefinition("n" * (MAX_METRIC_NAME_CHARS + 1), "m=(1)")])
    assert len(long_name) == 1
    assert "Name is" in long_name[0]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 20}', (20, MULTI)),
        (200, b'{"BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 0}', (0, SINGLE)),
        (200, b'{"BatchStrategy": "SingleRecord"}', (None, SINGLE)),  # the API's spelling is understood too
        (200, b'{"BatchStrategy": "ONE_BY_ONE", "MaxPayloadInMB": 6}', (6, None)),
        (404, b"", (None, None)),
        (200, b"not json", (None, None)),
        (200, b"[6]", (None, None)),
        (200, b'{"MaxPayloadInMB": "6"}', (None, None)),
        (200, b'{"MaxPayloadInMB": true}', (None, None)),
        (200, b'{"MaxPayloadInMB": -1}', (None, None)),
        (None, b"", (None, None)),
    ],
)
def test_declared_parameters_from_execution_parameters(
    status: int | None, body: bytes, expected: tuple[int | None, str | None]
) -> None:
    assert declared_parameters(status, body) == expected


# -- the gate ------------------------------------------------------------------------------------------------------
_GATE_TESTS = """
from contract_tests._report import check


@check("t15")
def test_t15(): pass


@check("t16")
def test_t16(): pass


@check("t17")
def test_t17(): pass


@check("s30")
def test_s30(): pass


@check("b34")
def test_b34(): pass
"""


def _gate(tmp_path: Path, capabilities: dict[str, bool]) -> dict[str, tuple[str, str]]:
    """Run the five marked (empty) tests through the suite's plugin: test name -> (outcome, skip message)."""
    work = tmp_path / ("_".join(k for k, v in capabilities.items() if v) or "none")
    work.mkdir()
    (work / "test_gate_probe.py").write_text(textwrap.dedent(_GATE_TESTS), encoding="utf-8")
    config = _write(work, {"capabilities": capabilities, "training": {"channels": {"train": "data.csv"}}})
    (work / "data.csv").write_text("1,2\n", encoding="utf-8")
    report = work / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(work / "test_gate_probe.py"), "--image", "probe:latest",
         "--contract-config", str(config), "-p", "no:cacheprovider", f"--junitxml={report}", "-q"],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        skipped = case.find("skipped")
        out[case.get("name", "")] = ("skipped", skipped.get("message", "")) if skipped is not None else ("passed", "")
    return out


def test_the_gate_skips_each_check_whose_capability_is_not_claimed_and_runs_it_when_it_is(tmp_path: Path) -> None:
    none = _gate(tmp_path, {**NOTHING_CLAIMED, "multi_host": False, "network_isolation": False})
    for check_id, capability in NEW_CHECKS.items():
        status, message = none[f"test_{check_id}"]
        assert status == "skipped", (check_id, none)
        assert f"[{check_id}]" in message, message
        assert f"capabilities.{capability} is false" in message, message
    everything = _gate(
        tmp_path,
        {"training": True, "serving": False, "batch_transform": False, "processing": False, "multi_host": True,
         "network_isolation": True},
    )  # fmt: skip
    assert everything == {
        "test_t15": ("passed", ""),
        "test_t16": ("passed", ""),
        "test_t17": ("passed", ""),
        "test_s30": ("skipped", everything["test_s30"][1]),
        "test_b34": ("skipped", everything["test_b34"][1]),
    }
    assert "capabilities.serving is false" in everything["test_s30"][1]
    assert "capabilities.batch_transform is false" in everything["test_b34"][1]
