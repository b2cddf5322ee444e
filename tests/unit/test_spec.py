"""emulator.spec: loading job specs (YAML/JSON) and validating them against botocore's SageMaker model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.model import StructureShape

from emulator import spec as spec_module
from emulator.errors import InvalidSpec
from emulator.spec import is_s3_location_shape, load_spec, operation_model, validate

VALID: dict[str, Any] = {
    "TrainingJobName": "job-1",
    "RoleArn": "arn:aws:iam::000000000000:role/SageMakerEmulator",
    "AlgorithmSpecification": {"TrainingImage": "my-algo:latest", "TrainingInputMode": "File"},
    "HyperParameters": {"epochs": "2", "eta": "0.1"},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train/"}},
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
}


def request(**changes: Any) -> dict[str, Any]:
    req = copy.deepcopy(VALID)
    req.update(changes)
    return req


def errors_of(req: dict[str, Any], operation: str = "CreateTrainingJob") -> list[str]:
    with pytest.raises(InvalidSpec) as info:
        validate(operation, req)
    message = str(info.value)
    assert "\n" not in message, "a spec error must be one line"
    assert message.startswith(f"invalid {operation} request: ")
    return info.value.errors


def test_valid_request_passes() -> None:
    validate("CreateTrainingJob", request())


def test_unknown_field_suggests_the_closest_name() -> None:
    assert errors_of(request(TrainingJobNam="x")) == ["TrainingJobNam: unknown field; did you mean 'TrainingJobName'?"]


def test_unknown_nested_field_names_its_path() -> None:
    req = request()
    req["AlgorithmSpecification"]["TrainingImag"] = "x"
    assert errors_of(req) == ["AlgorithmSpecification.TrainingImag: unknown field; did you mean 'TrainingImage'?"]


def test_unknown_field_without_a_close_match_lists_the_allowed_ones() -> None:
    [error] = errors_of(request(Zzzzzzzz=1))
    assert error.startswith("Zzzzzzzz: unknown field; allowed: AlgorithmSpecification, ")
    assert "TrainingJobName" in error


def test_enum_lists_allowed_values_and_a_suggestion() -> None:
    req = request()
    req["AlgorithmSpecification"]["TrainingInputMode"] = "Files"
    assert errors_of(req) == [
        "AlgorithmSpecification.TrainingInputMode: 'Files' is not one of Pipe, File, FastFile (did you mean 'File'?)"
    ]


def test_missing_required_member() -> None:
    req = request()
    del req["AlgorithmSpecification"]["TrainingInputMode"]
    del req["RoleArn"]
    assert sorted(errors_of(req)) == [
        "AlgorithmSpecification.TrainingInputMode: missing (required)",
        "RoleArn: missing (required)",
    ]


def test_non_string_hyperparameters_say_to_quote_them() -> None:
    errors = errors_of(request(HyperParameters={"epochs": 2, "eta": 0.1, "name": "ok"}))
    assert errors == [
        'HyperParameters.epochs: expected a string, got int 2 (quote it: "2")',
        'HyperParameters.eta: expected a string, got float 0.1 (quote it: "0.1")',
    ]


def test_training_job_name_pattern() -> None:
    [error] = errors_of(request(TrainingJobName="bad_name!"))
    assert error.startswith("TrainingJobName: 'bad_name!' does not match the pattern ")


def test_training_job_name_length() -> None:
    assert "TrainingJobName: 64 characters, at most 63 allowed" in errors_of(request(TrainingJobName="a" * 64))
    validate("CreateTrainingJob", request(TrainingJobName="a" * 63))


@pytest.mark.parametrize("location", ["data/train", "./data/train", "/abs/data", "file:///abs/data", "s3://b/k"])
def test_local_path_accepted_where_an_s3_uri_is_expected(location: str) -> None:
    req = request()
    req["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = location
    req["OutputDataConfig"]["S3OutputPath"] = location
    validate("CreateTrainingJob", req)


def test_s3_location_shapes_are_recognised() -> None:
    shape = operation_model("CreateTrainingJob").input_shape
    assert shape is not None
    output_config = shape.members["OutputDataConfig"]
    assert isinstance(output_config, StructureShape)
    assert is_s3_location_shape(output_config.members["S3OutputPath"])
    assert not is_s3_location_shape(shape.members["TrainingJobName"])


def test_map_size_limit_101_hyperparameters() -> None:
    hps = {f"hp{i}": "1" for i in range(101)}
    assert errors_of(request(HyperParameters=hps)) == ["HyperParameters: 101 entries, at most 100 allowed"]
    del hps["hp100"]
    validate("CreateTrainingJob", request(HyperParameters=hps))


def test_list_size_limits_on_channels() -> None:
    channel = VALID["InputDataConfig"][0]
    many = [{**copy.deepcopy(channel), "ChannelName": f"c{i}"} for i in range(21)]
    assert errors_of(request(InputDataConfig=many)) == ["InputDataConfig: 21 items, at most 20 allowed"]
    assert errors_of(request(InputDataConfig=[])) == ["InputDataConfig: 0 items, at least 1 required"]


def test_map_key_pattern() -> None:
    assert errors_of(request(Environment={"1BAD": "x"})) == [
        "Environment key '1BAD': '1BAD' does not match the pattern [a-zA-Z_][a-zA-Z0-9_]*"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"StoppingCondition": {"MaxRuntimeInSeconds": 0}},
            "StoppingCondition.MaxRuntimeInSeconds: 0 is below the minimum 1",
        ),
        (
            {"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": "2", "VolumeSizeInGB": 1}},
            "ResourceConfig.InstanceCount: expected an integer, got str '2'",
        ),
        ({"EnableNetworkIsolation": "yes"}, "EnableNetworkIsolation: expected true or false, got str 'yes'"),
        ({"AlgorithmSpecification": "img"}, "AlgorithmSpecification: expected a mapping, got str 'img'"),
        ({"InputDataConfig": {"a": 1}}, "InputDataConfig: expected a list, got dict {'a': 1}"),
    ],
)
def test_types_and_ranges(change: dict[str, Any], expected: str) -> None:
    assert errors_of(request(**change)) == [expected]


def test_every_error_is_reported_but_the_message_is_capped() -> None:
    req = request(**{f"Unknown{i}": i for i in range(25)})
    with pytest.raises(InvalidSpec) as info:
        validate("CreateTrainingJob", req)
    assert len(info.value.errors) == 25
    assert str(info.value).endswith("(and 5 more)")


def test_invalid_spec_is_a_value_error_with_exit_code_2() -> None:
    with pytest.raises(ValueError, match="TrainingJobNam") as info:
        validate("CreateTrainingJob", request(TrainingJobNam="x"))
    assert info.value.exit_code == 2  # type: ignore[attr-defined]


# -- files ------------------------------------------------------------------------------------------------


def test_yaml_and_json_files_load_to_the_same_request(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(VALID), encoding="utf-8")
    (tmp_path / "job.yml").write_text(yaml.safe_dump(VALID), encoding="utf-8")
    (tmp_path / "job.json").write_text(json.dumps(VALID), encoding="utf-8")
    loaded = [load_spec(tmp_path / name) for name in ("job.yaml", "job.yml", "job.json")]
    assert loaded == [VALID, VALID, VALID]
    assert load_spec(str(tmp_path / "job.yaml")) == VALID
    for spec in loaded:
        validate("CreateTrainingJob", spec)


def test_yaml_numbers_stay_numbers_so_validation_can_flag_them(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("HyperParameters:\n  epochs: 2\n  eta: '0.1'\n", encoding="utf-8")
    assert load_spec(path) == {"HyperParameters": {"epochs": 2, "eta": "0.1"}}


def test_a_mapping_is_used_as_it_is() -> None:
    assert load_spec(VALID) == VALID
    assert load_spec(VALID) is not VALID


def test_bad_yaml_gives_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("TrainingJobName: a\n  bad: [indent\n", encoding="utf-8")
    with pytest.raises(InvalidSpec) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"spec file {str(path)!r} is not valid YAML: ")


def test_bad_json_gives_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"TrainingJobName": "a",\n}', encoding="utf-8")
    with pytest.raises(InvalidSpec, match=r"is not valid JSON: ") as info:
        load_spec(path)
    assert "\n" not in str(info.value)


def test_a_spec_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(InvalidSpec, match=r"must hold a mapping \(the API request\), not list"):
        load_spec(path)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match=r"does not exist; pass the path of a YAML or JSON request"):
        load_spec(tmp_path / "nope.yaml")


# ---- the trimmed, cached model -----------------------------------------------------------------------------


def _reached(shape: Any, seen: dict[str, Any]) -> dict[str, Any]:
    """botocore's resolution of every shape an input shape reaches: name -> (type, members or None, enum)."""
    if shape.name in seen:
        return seen
    members = sorted(shape.members) if isinstance(shape, StructureShape) else None
    seen[shape.name] = (shape.type_name, members, shape.metadata.get("enum"), shape.metadata.get("pattern"))
    for child in getattr(shape, "members", {}).values():
        _reached(child, seen)
    for attr in ("member", "key", "value"):
        child = getattr(shape, attr, None)
        if child is not None:
            _reached(child, seen)
    return seen


@pytest.mark.parametrize("operation", ["CreateTrainingJob", "CreateTransformJob", "CreatePipeline"])
def test_trimmed_model_holds_what_botocore_resolves(operation: str) -> None:
    root, shapes = spec_module._input_shapes(operation)
    input_shape = operation_model(operation).input_shape
    assert input_shape is not None
    expected = _reached(input_shape, {})
    got = {
        name: (s["type"], sorted(s["members"]) if s["type"] == "structure" else None, s.get("enum"), s.get("pattern"))
        for name, s in shapes.items()
    }
    assert root == input_shape.name
    assert got == expected


def test_the_trimmed_model_is_written_once_and_then_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_module, "_CACHE_DIR", tmp_path / "models")
    spec_module._input_shapes.cache_clear()
    try:
        spec_module._input_shapes("CreateTrainingJob")
        [cached] = (tmp_path / "models").glob("sagemaker-CreateTrainingJob-*.json")
        data = json.loads(cached.read_text())
        assert len(data["shapes"]) < 400  # of botocore's ~3,400
        # A new process reads the file, not botocore's model: an edit to it shows.
        data["shapes"][data["root"]]["required"].append("TrainingJobName")
        data["shapes"][data["root"]]["required"].append("Tags")
        cached.write_text(json.dumps(data))
        spec_module._input_shapes.cache_clear()
        assert "Tags: missing (required)" in errors_of(request())
    finally:
        spec_module._input_shapes.cache_clear()


def test_an_unwritable_cache_dir_still_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    monkeypatch.setattr(spec_module, "_CACHE_DIR", blocker / "models")
    spec_module._input_shapes.cache_clear()
    try:
        assert errors_of(request(TrainingJobName="bad name!"))
    finally:
        spec_module._input_shapes.cache_clear()
