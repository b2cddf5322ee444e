"""The contract suite's config loader (contract_tests/config.py), without Docker.

Every mistake is one ContractConfigError line naming the field; a number where SageMaker passes strings is
quoted for the user; a channel may be given as a bare path; unknown keys get a did-you-mean; paths are
relative to the config file; the init-contract starter's ``<FILL IN: ...>`` placeholders are refused, each
with what goes there; ``serving.accepted_content_types`` defaults to the sample requests' types.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract_tests.config import (
    DEFAULT_CONFIG,
    PLACEHOLDER,
    ContractConfig,
    ContractConfigError,
    from_mapping,
    load_config,
    starter_yaml,
)

SAMPLE: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def _raw() -> dict[str, Any]:
    """The sample algorithm's config as parsed YAML (a fresh copy to edit)."""
    return copy.deepcopy(SAMPLE)


def _set(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """``raw`` with ``a.b[0].c`` set to ``value`` (``None`` as value deletes the key)."""
    node: Any = raw
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", dotted)
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last = parts[-1]
    if value is None and not last.startswith("["):
        node.pop(last, None)
    elif last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return raw


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A directory holding a copy of the sample's data under ``data/``, where configs are written."""
    shutil.copytree(DEFAULT_CONFIG.parent / "data", tmp_path / "data")
    return tmp_path


def _load(config_dir: Path, raw: Any, name: str = "contract.yaml") -> ContractConfig:
    path = config_dir / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_config(path)


def _error(config_dir: Path, raw: Any) -> str:
    with pytest.raises(ContractConfigError) as info:
        _load(config_dir, raw)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


# -- the packaged defaults and a copy of them elsewhere -----------------------------------------------------------
def test_defaults_load_and_paths_resolve_against_the_packaged_file() -> None:
    config = load_config(None)
    assert config.source == DEFAULT_CONFIG
    train = config.training.channels["train"]
    assert config.path(train.path) == (DEFAULT_CONFIG.parent / train.path).resolve()
    assert config.path(train.path).is_file()


def test_paths_are_relative_to_the_config_file_not_the_working_directory(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sub = config_dir / "nested"
    sub.mkdir()
    (sub / "request.csv").write_text("1,2,3,4\n", encoding="utf-8")
    (sub / "records.csv").write_text("1,2,3,4\n\n5,6,7,8\n", encoding="utf-8")
    raw = _raw()
    _set(raw, "training.channels.train", "../data/iris_train.csv")
    _set(raw, "training.sigterm.channels", None)
    _set(raw, "serving.requests[0]", {"content_type": "text/csv", "body_file": "request.csv"})
    _set(raw, "batch.records_file", "records.csv")
    _set(raw, "processing.inputs", [{"name": "raw", "source": "../data", "local_path": "/opt/ml/processing/in"}])
    elsewhere = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(elsewhere)
    config = _load(sub, raw)
    assert config.path("request.csv") == sub / "request.csv"
    assert config.request_body(config.serving.requests[0]) == b"1,2,3,4\n"
    assert config.batch_records() == ["1,2,3,4", "5,6,7,8"]
    assert config.path(config.training.channels["train"].path) == (config_dir / "data" / "iris_train.csv")
    assert config.path(str(elsewhere)) == elsewhere  # an absolute path stays as it is


def test_a_missing_relative_path_names_the_field_and_the_base_directory(config_dir: Path) -> None:
    message = _error(config_dir, _set(_raw(), "training.channels.train", "data/nope.csv"))
    assert message.startswith("contract config field 'training.channels.train.path': 'data/nope.csv' does not exist")
    assert repr(str(config_dir)) in message


# -- types ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("capabilities.training", "yes", "'capabilities.training': expected true or false, got 'yes'"),
        ("training.max_runtime_s", "900", "'training.max_runtime_s': expected an integer, got '900'"),
        ("training.max_runtime_s", True, "'training.max_runtime_s': expected an integer, got True"),
        ("training.sigterm.after_seconds", "soon", "'training.sigterm.after_seconds': expected a number, got 'soon'"),
        ("training.instance_type", 5, "'training.instance_type': expected a string, got 5"),
        ("training.channels", ["train"], "'training.channels': expected a mapping, got ['train']"),
        ("training.channels.train", {"path": "d", "repeat": "4"}, "'training.channels.train.repeat': expected an"),
        ("serving.requests", {"content_type": "text/csv"}, "'serving.requests': expected a list, got {"),
        ("serving.requests[0].content_type", 3, "'serving.requests[0].content_type': expected a string, got 3"),
        ("serving.requests[0].expect.lines", "all", "'serving.requests[0].expect.lines': expected an integer or"),
        ("serving.malformed_request", "garbage", "'serving.malformed_request': expected a mapping or null"),
        ("serving.accepted_content_types", "text/csv", "'serving.accepted_content_types': expected a list or null"),
        ("processing.entrypoint", "processing", "'processing.entrypoint': expected a list or null, got 'processing'"),
        ("processing.outputs[0].expect_files", [1], "'processing.outputs[0].expect_files[0]': expected a string"),
        ("training.hyperparameters.max_depth", True, "'training.hyperparameters.max_depth': expected a string, got"),
        ("serving.environment", {"A": None}, "'serving.environment.A': expected a string, got None"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_field(dotted: str, value: Any, message: str) -> None:
    with pytest.raises(ContractConfigError) as info:
        from_mapping(_set(_raw(), dotted, value))
    assert str(info.value).startswith(f"contract config field {message}"), str(info.value)


def test_the_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ContractConfigError, match=r"^contract config field '\(top level\)': expected a mapping"):
        from_mapping(["capabilities"])


def test_a_key_that_is_no_string_is_named() -> None:
    with pytest.raises(ContractConfigError, match=r"'training\.hyperparameters\.3': keys must be strings"):
        from_mapping(_set(_raw(), "training.hyperparameters", {3: "x"}))


def test_numbers_where_sagemaker_passes_strings_are_quoted_for_the_user() -> None:
    raw = _set(_raw(), "training.hyperparameters", {"max_depth": 3, "eta": 0.5, "name": "gini"})
    _set(raw, "training.environment", {"THREADS": 2})
    config = from_mapping(raw)
    assert config.training.hyperparameters == {"max_depth": "3", "eta": "0.5", "name": "gini"}
    assert config.training.environment == {"THREADS": "2"}


def test_a_channel_may_be_a_bare_path_or_a_mapping() -> None:
    raw = _set(_raw(), "training.channels", {"train": "data/iris_train.csv"})
    _set(raw, "training.channels.validation", {"path": "data/iris_train.csv", "content_type": "text/csv"})
    channels = from_mapping(raw).training.channels
    assert (channels["train"].path, channels["train"].content_type, channels["train"].repeat) == (
        "data/iris_train.csv",
        None,
        1,
    )
    assert (channels["validation"].path, channels["validation"].content_type) == ("data/iris_train.csv", "text/csv")


def test_a_required_field_left_out_is_named() -> None:
    raw = _set(_raw(), "serving.requests[0]", {"body": "1,2\n"})
    with pytest.raises(ContractConfigError, match=r"'serving\.requests\[0\]\.content_type': missing \(required\)"):
        from_mapping(raw)


@pytest.mark.parametrize(
    ("dotted", "field", "hint"),
    [
        ("trainng", "trainng", "did you mean 'training'?"),
        ("capabilities.serve", "capabilities.serve", "did you mean 'serving'?"),
        ("serving.requests[0].content-type", "serving.requests[0].content-type", "did you mean 'content_type'?"),
        ("serving.accepted_types", "serving.accepted_types", "did you mean 'accepted_content_types'?"),
        ("batch.zzz", "batch.zzz", "known keys: content_type, accept, records,"),
    ],
)
def test_an_unknown_key_gets_a_did_you_mean_or_the_known_keys(dotted: str, field: str, hint: str) -> None:
    with pytest.raises(ContractConfigError) as info:
        from_mapping(_set(_raw(), dotted, "x"))
    assert str(info.value).startswith(f"contract config field {field!r}: unknown key; {hint}"), str(info.value)


def test_the_source_field_is_not_a_config_key() -> None:
    with pytest.raises(ContractConfigError, match="'source': unknown key"):
        from_mapping(_set(_raw(), "source", "elsewhere.yaml"))


# -- what the types cannot say --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("training.channels", {}, "'training.channels': the image claims training: give at least one channel"),
        ("training.channels.bad name", "data/iris_train.csv", "'training.channels.bad name': channel names are"),
        ("training.channels.train", {"path": "data/iris_train.csv", "repeat": 0}, "'training.channels.train.repeat'"),
        ("training.sigterm.after_log", "train_(", "'training.sigterm.after_log': not a regular expression"),
        ("training.sigterm.after_seconds", -1, "'training.sigterm.after_seconds': expected a number >= 0"),
        ("training.max_runtime_s", 0, "'training.max_runtime_s': expected an integer >= 1"),
        ("serving.requests", [], "'serving.requests': the image claims serving: give at least one sample request"),
        ("serving.malformed_request", None, "'serving.malformed_request': the image claims serving: give a request"),
        ("serving.requests[0].body_file", "data/iris_batch.csv", "'serving.requests[0]': give exactly one of 'body'"),
        ("serving.malformed_request.body", None, "'serving.malformed_request': give exactly one of 'body' and"),
        ("serving.model", "model.tar.gz", "'serving.model': 'model.tar.gz' does not exist"),
        ("batch.records_file", None, "'batch.records': the image claims batch_transform: give records"),
        ("processing.outputs", [], "'processing.outputs': the image claims processing: declare at least one output"),
        ("processing.inputs[0].local_path", "/data/raw", "'processing.inputs[0].local_path': '/data/raw' must start"),
        ("processing.outputs[0].local_path", "/out", "'processing.outputs[0].local_path': '/out' must start with"),
        ("processing.inputs[0].source", "data/none.csv", "'processing.inputs[0].source': 'data/none.csv' does not"),
        ("serving.accepted_content_types", ["csv"], "'serving.accepted_content_types[0]': expected a media type"),
        ("serving.accepted_content_types", ["application/json"], "'serving.requests[0].content_type': 'text/csv' is"),
    ],
)
def test_a_value_that_cannot_work_names_its_field(config_dir: Path, dotted: str, value: Any, message: str) -> None:
    assert _error(config_dir, _set(_raw(), dotted, value)).startswith(f"contract config field {message}")


def test_a_section_of_an_unclaimed_capability_may_be_left_out(config_dir: Path) -> None:
    raw = _raw()
    raw["capabilities"] = {"training": False, "serving": False, "batch_transform": False, "processing": False}
    for section in ("training", "serving", "batch", "processing"):
        raw.pop(section)
    config = _load(config_dir, raw)
    assert config.serving.requests == []
    assert config.training.channels == {}


# -- reading the file -----------------------------------------------------------------------------------------
def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ContractConfigError, match=r"contract config '.*nope\.yaml' cannot be read: No such file"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text("capabilities:\n  training: true\n serving: [\n", encoding="utf-8")
    with pytest.raises(ContractConfigError) as info:
        load_config(path)
    assert re.match(r"contract config '.*contract\.yaml' line \d+: not valid YAML \(", str(info.value)), info.value
    assert "\n" not in str(info.value)


def test_an_empty_file_is_the_defaults_which_claim_training_without_data(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ContractConfigError, match=r"^contract config field 'serving\.requests'|'training\.channels'"):
        load_config(path)


# -- accepted content types (s41) -----------------------------------------------------------------------------
def test_accepted_content_types_default_to_those_of_the_sample_requests() -> None:
    raw = _raw()
    raw["serving"]["requests"].append({"content_type": "Application/JSON; charset=utf-8", "body": "{}"})
    serving = from_mapping(raw).serving
    assert serving.accepted_content_types is None
    assert serving.accepted_media_types() == ["text/csv", "application/json"]
    assert serving.accepts("text/csv; charset=utf-8")
    assert serving.accepts("application/json")
    assert not serving.accepts("text/plain")
    assert not serving.accepts("application/x-contract-unsupported")


@pytest.mark.parametrize(
    ("accepted", "content_type", "expected"),
    [
        (["text/csv"], "TEXT/CSV", True),
        (["text/*"], "text/plain", True),
        (["text/*"], "application/json", False),
        (["*/*"], "application/x-anything", True),
        (["application/json"], "application/jsonlines", False),
        (["text/csv", "application/x-npy"], "application/x-npy", True),
    ],
)
def test_accepted_content_types_match_by_media_type_with_wildcards(
    accepted: list[str], content_type: str, expected: bool
) -> None:
    raw = _set(_raw(), "serving.accepted_content_types", [*accepted, "text/csv"])
    assert from_mapping(raw).serving.accepts(content_type) is expected


def test_a_request_type_covered_by_a_wildcard_is_accepted(config_dir: Path) -> None:
    config = _load(config_dir, _set(_raw(), "serving.accepted_content_types", ["text/*"]))
    assert config.serving.accepted_media_types() == ["text/*"]


# -- the init-contract starter --------------------------------------------------------------------------------
#: What each placeholder of the starter stands for, and a value that fits the sample's data.
_FILLS: dict[str, Any] = {
    "training.channels.train": "data/iris_train.csv",
    "training.hyperparameters": {"max_depth": "3"},
    "training.sigterm.after_log": "train_accuracy=",
    "serving.requests[0].body": "5.1,3.5,1.4,0.2\n",
    "serving.malformed_request.body": "5.1,3.5\n",
    "batch.records_file": "data/iris_batch.csv",
}


def _placeholder_error(config_dir: Path, raw: Any) -> str | None:
    """The loader's error for ``raw``, or None when it loads."""
    try:
        _load(config_dir, raw)
    except ContractConfigError as exc:
        return str(exc)
    return None


def test_the_starter_is_refused_until_every_placeholder_is_filled_in(config_dir: Path) -> None:
    raw = yaml.safe_load(starter_yaml())
    named: list[str] = []
    while (error := _placeholder_error(config_dir, raw)) is not None and len(named) <= len(_FILLS):
        match = re.fullmatch(
            r"contract config field '([^']+)': (still|a key is) the init-contract starter's placeholder: "
            r"replace it with (.+)",
            error,
        )
        assert match is not None, f"not a placeholder error: {error}"
        field, what = match.group(1), match.group(3)
        assert "<" not in what, what
        assert field in _FILLS, f"a placeholder in {field!r}, which this test does not know: {error}"
        named.append(field)
        _set(raw, field, _FILLS[field])
    assert error is None, f"still refused after filling in {named}: {error}"
    assert sorted(named) == sorted(_FILLS)
    config = _load(config_dir, raw)
    assert config.training.hyperparameters == {"max_depth": "3"}
    assert config.serving.accepted_media_types() == ["text/csv"]


def test_every_placeholder_of_the_starter_says_what_goes_there() -> None:
    found = [what for what in PLACEHOLDER.findall(starter_yaml()) if what != "..."]  # "..." : the header's
    assert len(found) >= len(_FILLS)
    assert all(len(what.split()) >= 2 for what in found), found


def test_a_placeholder_in_a_list_is_named_by_its_index(config_dir: Path) -> None:
    raw = _set(_raw(), "processing.arguments", ["--seed", "<FILL IN: a seed>"])
    assert _error(config_dir, raw) == (
        "contract config field 'processing.arguments[1]': still the init-contract starter's placeholder: "
        "replace it with a seed"
    )


def test_a_placeholder_in_an_unclaimed_section_may_also_be_deleted(config_dir: Path) -> None:
    raw = _set(_raw(), "capabilities.processing", False)
    _set(raw, "processing.inputs[0].source", "<FILL IN: an input file>")
    assert _error(config_dir, raw).endswith(
        "replace it with an input file (or delete the 'processing' section: capabilities.processing is false)"
    )
    claimed = _set(_raw(), "processing.inputs[0].source", "<FILL IN: an input file>")
    assert _error(config_dir, claimed).endswith("replace it with an input file")


def test_a_placeholder_is_found_before_a_type_error_would_hide_it() -> None:
    raw = _set(_raw(), "capabilities.training", "<FILL IN: true or false>")
    with pytest.raises(ContractConfigError, match=r"'capabilities\.training': still the init-contract starter's"):
        from_mapping(raw)


def test_angle_brackets_that_are_no_placeholder_are_values() -> None:
    raw = _set(_raw(), "serving.requests[0].body", "<rows><row>5.1,3.5,1.4,0.2</row></rows>")
    assert from_mapping(raw).serving.requests[0].body == "<rows><row>5.1,3.5,1.4,0.2</row></rows>"


def test_init_contract_writes_a_starter_the_loader_refuses_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contract_tests import init_contract
    from emulator import EmulatorConfig

    target = tmp_path / "contract.yaml"
    args = argparse.Namespace(path=str(target), force=False)
    assert init_contract.run(args, EmulatorConfig()) == 0
    said = capsys.readouterr().out
    live = [ln for ln in target.read_text(encoding="utf-8").splitlines() if not ln.lstrip().startswith("#")]
    assert f"replace its {sum(len(PLACEHOLDER.findall(ln)) for ln in live)} '<FILL IN: ...>' placeholders" in said
    with pytest.raises(ContractConfigError, match="still the init-contract starter's placeholder: replace it with"):
        load_config(target)
