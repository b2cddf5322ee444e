"""Unit tests of the sample algorithm (sample_algorithm/program/iris_tree), in-process, without docker."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

pytest.importorskip("sklearn")
pytest.importorskip("flask")

PROGRAM_DIR = Path(__file__).resolve().parents[2] / "sample_algorithm" / "program"
if str(PROGRAM_DIR) not in sys.path:
    sys.path.insert(0, str(PROGRAM_DIR))

from iris_tree import dataset, processing, serve, train  # noqa: E402
from iris_tree.model import METADATA_FILE, MODEL_FILE, InputError, LabelledData, parse_feature_csv  # noqa: E402

CLASSES = ["setosa", "versicolor", "virginica"]
GOOD_ROWS = "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n"


# --------------------------------------------------------------------------- helpers


def make_ml_tree(root: Path, hyperparameters: dict[str, str] | None = None, *, with_validation: bool = True) -> Path:
    """An /opt/ml-like tree with iris train/validation channels made by `processing`."""
    raw = root / "processing" / "input" / "raw" / "iris.csv"
    dataset.write_iris_csv(raw)
    assert processing.main(["--seed", "3"], root=root) == 0
    out = root / "processing" / "output"
    (root / "input" / "data" / "train").mkdir(parents=True)
    (out / "train" / "train.csv").rename(root / "input" / "data" / "train" / "train.csv")
    if with_validation:
        (root / "input" / "data" / "validation").mkdir(parents=True)
        (out / "test" / "test.csv").rename(root / "input" / "data" / "validation" / "test.csv")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters or {}))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0", "extra": 1})
    )
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "X"}})
    )
    return root


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    root = make_ml_tree(tmp_path / "ml", {"max_depth": "3"})
    assert train.main(root=root) == 0
    return root


def csv_post(client: FlaskClient, body: str | bytes, content_type: str = "text/csv", **headers: str) -> TestResponse:
    return client.post("/invocations", data=body, headers={"Content-Type": content_type, **headers})


# --------------------------------------------------------------------------- dataset / processing


def test_dataset_writes_bundled_iris_with_header(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "iris.csv"
    assert dataset.write_iris_csv(path) == 150
    lines = path.read_text().splitlines()
    assert lines[0] == "sepal_length,sepal_width,petal_length,petal_width,species"
    assert len(lines) == 151
    assert lines[1].endswith(",setosa")


def test_dataset_module_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dataset.main([str(tmp_path / "iris.csv")]) == 0
    captured = capsys.readouterr()
    assert "150" in captured.err
    assert captured.out == ""  # stdout may be the CSV itself (`python -m iris_tree.dataset /dev/stdout`)


def test_processing_splits_rows(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    dataset.write_iris_csv(root / "processing" / "input" / "raw" / "iris.csv")
    assert processing.main([], root=root) == 0
    train_lines = (root / "processing" / "output" / "train" / "train.csv").read_text().splitlines()
    test_lines = (root / "processing" / "output" / "test" / "test.csv").read_text().splitlines()
    assert (len(train_lines), len(test_lines)) == (120, 30)
    for line in train_lines + test_lines:
        label, *features = line.split(",")
        assert label in CLASSES
        assert len(features) == 4
        [float(f) for f in features]
    # Stratified: every class on both sides, and no row lost or duplicated.
    assert {line.split(",")[0] for line in test_lines} == set(CLASSES)
    raw = (root / "processing" / "input" / "raw" / "iris.csv").read_text().splitlines()[1:]

    def as_sorted(lines: list[str]) -> list[tuple[str, ...]]:
        return sorted(tuple(sorted(line.split(","))) for line in lines)

    assert as_sorted(train_lines + test_lines) == as_sorted(raw)


def test_processing_args_and_headerless_input(tmp_path: Path) -> None:
    src = tmp_path / "in" / "nested"
    src.mkdir(parents=True)
    (src / "data.csv").write_text("".join(f"{c},{i}.0,1.0,2.0,3.0\n" for i in range(10) for c in ("a", "b")))
    out = tmp_path / "out"
    rc = processing.main(
        ["--input", str(tmp_path / "in"), "--output", str(out), "--test-fraction", "0.5", "--seed", "7"],
        root=tmp_path / "ml",
    )
    assert rc == 0
    assert len((out / "train" / "train.csv").read_text().splitlines()) == 10
    assert len((out / "test" / "test.csv").read_text().splitlines()) == 10


def test_processing_falls_back_to_input_root(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    dataset.write_iris_csv(root / "processing" / "input" / "somewhere" / "iris.csv")
    assert processing.main([], root=root) == 0
    assert (root / "processing" / "output" / "test" / "test.csv").is_file()


@pytest.mark.parametrize(
    ("argv", "setup", "expected"),
    [
        ([], None, "does not exist"),
        ([], "empty", "no .csv file"),
        (["--test-fraction", "1.5"], "iris", "bad arguments"),
        (["--bogus"], "iris", "bad arguments"),
        ([], "bad", "line 3"),
    ],
)
def test_processing_failures_write_message(tmp_path: Path, argv: list[str], setup: str | None, expected: str) -> None:
    root = tmp_path / "ml"
    raw = root / "processing" / "input" / "raw"
    if setup:
        raw.mkdir(parents=True)
    if setup == "iris":
        dataset.write_iris_csv(raw / "iris.csv")
    if setup == "bad":
        (raw / "x.csv").write_text("sepal_length,sepal_width,petal_length,petal_width,species\n1,2,3,4,a\n1,2,x,4,b\n")
    rc = processing.main(argv, root=root)
    assert rc != 0
    message = (root / "output" / "message").read_text(encoding="utf-8")
    assert expected in message


def test_processing_split_subcommand_is_the_default(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    dataset.write_iris_csv(root / "processing" / "input" / "raw" / "iris.csv")
    assert processing.main(["split", "--seed", "2"], root=root) == 0
    assert len((root / "processing" / "output" / "test" / "test.csv").read_text().splitlines()) == 30


def _evaluation_tree(trained: Path, *, as_tarball: bool = True) -> Path:
    """An /opt/ml/processing tree for `processing evaluate`: the model (as model.tar.gz) and the test CSVs."""
    import tarfile

    base = trained / "processing"
    (base / "model").mkdir(parents=True)
    if as_tarball:
        with tarfile.open(base / "model" / "model.tar.gz", "w:gz") as tf:
            for path in (trained / "model").iterdir():
                tf.add(path, arcname=path.name)
    else:
        for path in (trained / "model").iterdir():
            (base / "model" / path.name).write_bytes(path.read_bytes())
    (base / "test").mkdir()
    (base / "test" / "test.csv").write_text((trained / "input" / "data" / "validation" / "test.csv").read_text())
    return base


@pytest.mark.parametrize("as_tarball", [True, False])
def test_processing_evaluate_writes_the_property_file(
    trained: Path, capsys: pytest.CaptureFixture[str], as_tarball: bool
) -> None:
    base = _evaluation_tree(trained, as_tarball=as_tarball)
    assert processing.main(["evaluate"], root=trained) == 0
    report = json.loads((base / "evaluation" / "evaluation.json").read_text())
    accuracy = report["metrics"]["accuracy"]["value"]
    assert 0.8 <= accuracy <= 1.0
    assert report["rows"] == 30
    assert report["classes"] == CLASSES
    assert f"evaluate: accuracy={accuracy:.4f} on 30 rows" in capsys.readouterr().out


def test_processing_evaluate_options(trained: Path, tmp_path: Path) -> None:
    base = _evaluation_tree(trained)
    out = tmp_path / "elsewhere"
    argv = ["evaluate", "--model", str(base / "model"), "--test", str(base / "test"), "--output", str(out)]
    assert processing.main(argv, root=tmp_path / "unused") == 0
    assert json.loads((out / "evaluation.json").read_text())["metrics"]["accuracy"]["value"] > 0.8


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("no-model", "no model.tar.gz (or model.joblib) in"),
        ("no-test", "no labelled rows in"),
        ("bad-tarball", "cannot extract"),
    ],
)
def test_processing_evaluate_failures_write_message(trained: Path, setup: str, expected: str) -> None:
    base = _evaluation_tree(trained)
    if setup == "no-model":
        (base / "model" / "model.tar.gz").unlink()
    elif setup == "no-test":
        (base / "test" / "test.csv").unlink()
    else:
        (base / "model" / "model.tar.gz").write_bytes(b"not a tarball")
    assert processing.main(["evaluate"], root=trained) == 1
    assert expected in (trained / "output" / "message").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- train


def test_train_writes_model_metadata_and_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_ml_tree(tmp_path / "ml", {"max_depth": "3", "criterion": "entropy", "min_samples_leaf": "2"})
    assert train.main(root=root) == 0
    out = capsys.readouterr().out
    assert "train_accuracy=" in out
    assert "validation_accuracy=" in out
    import re

    train_match = re.search(r"train_accuracy=([0-9.]+);", out)
    val_match = re.search(r"validation_accuracy=([0-9.]+);", out)
    assert train_match is not None
    assert val_match is not None
    train_acc = float(train_match.group(1))
    val_acc = float(val_match.group(1))
    assert train_acc > 0.9
    assert val_acc > 0.8
    model_dir = root / "model"
    assert (model_dir / MODEL_FILE).stat().st_size > 0
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    assert metadata["classes"] == CLASSES
    assert metadata["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert metadata["hyperparameters"] == {
        "max_depth": 3,
        "criterion": "entropy",
        "min_samples_leaf": 2,
        "random_state": 0,
    }
    assert not (root / "output" / "failure").exists()
    import joblib

    tree = joblib.load(model_dir / MODEL_FILE)
    assert tree.get_depth() <= 3
    assert tree.criterion == "entropy"


@pytest.mark.parametrize(("current_host", "saves"), [("algo-1-ab12c", True), ("algo-2-cd34e", False)])
def test_train_on_two_hosts_only_the_first_saves(tmp_path: Path, current_host: str, saves: bool) -> None:
    # Every host trains; the hosts' /opt/ml/model are merged into one model.tar.gz, so only hosts[0] writes.
    root = make_ml_tree(tmp_path / "ml", {"max_depth": "3"})
    hosts = ["algo-1-ab12c", "algo-2-cd34e"]
    (root / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": current_host, "hosts": hosts, "network_interface_name": "eth0"})
    )
    assert train.main(root=root) == 0
    written = sorted(p.name for p in (root / "model").iterdir()) if (root / "model").is_dir() else []
    assert written == (sorted([METADATA_FILE, MODEL_FILE]) if saves else [])


def test_train_defaults_and_header_csv(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    dataset.write_iris_csv(root / "input" / "data" / "train" / "iris.csv")  # header form, label last
    assert train.main(root=root) == 0  # no hyperparameters.json at all
    metadata = json.loads((root / "model" / METADATA_FILE).read_text())
    assert metadata["hyperparameters"]["max_depth"] is None
    assert metadata["hyperparameters"]["criterion"] == "gini"
    assert metadata["metrics"]["train_accuracy"] == 1.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, train.Hyperparameters()),
        ({"max_depth": "None"}, train.Hyperparameters(max_depth=None)),
        ({"max_depth": ""}, train.Hyperparameters(max_depth=None)),
        ({"max_depth": "5"}, train.Hyperparameters(max_depth=5)),
        ({"max_depth": "5.0"}, train.Hyperparameters(max_depth=5)),
        ({"criterion": "LOG_LOSS"}, train.Hyperparameters(criterion="log_loss")),
        ({"min_samples_leaf": "4", "random_state": "42"}, train.Hyperparameters(min_samples_leaf=4, random_state=42)),
        ({"unknown": "x"}, train.Hyperparameters()),
    ],
)
def test_hyperparameters_parse_strings(raw: dict[str, str], expected: train.Hyperparameters) -> None:
    assert train.Hyperparameters.from_strings(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"max_depth": "abc"}, "max_depth"),
        ({"max_depth": "0"}, "max_depth"),
        ({"criterion": "mse"}, "criterion"),
        ({"min_samples_leaf": "-1"}, "min_samples_leaf"),
        ({"random_state": "1.5"}, "random_state"),
    ],
)
def test_bad_hyperparameter_fails_with_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: dict[str, str], expected: str
) -> None:
    root = make_ml_tree(tmp_path / "ml", raw)
    rc = train.main(root=root)
    assert rc == 2
    failure = (root / "output" / "failure").read_text(encoding="utf-8")
    assert expected in failure.splitlines()[0]
    assert expected in capsys.readouterr().err
    assert not (root / "model" / MODEL_FILE).exists()


def test_hyperparameters_json_not_an_object(tmp_path: Path) -> None:
    root = make_ml_tree(tmp_path / "ml")
    (root / "input" / "config" / "hyperparameters.json").write_text("[1, 2]")
    assert train.main(root=root) == 2
    assert "JSON object" in (root / "output" / "failure").read_text()


def test_missing_train_channel_fails_with_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text("{}")
    rc = train.main(root=root)
    assert rc == 1
    failure = (root / "output" / "failure").read_text(encoding="utf-8")
    assert failure.startswith("channel 'train' is missing")
    assert "give the job a 'train' channel" in failure
    assert "channel 'train' is missing" in capsys.readouterr().err


def test_empty_channel_and_bad_rows_fail(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    channel = root / "input" / "data" / "train"
    channel.mkdir(parents=True)
    (channel / "readme.txt").write_text("no csv here")
    assert train.main(root=root) == 1
    assert "no .csv file" in (root / "output" / "failure").read_text()
    (channel / "a.csv").write_text("setosa,1,2,3,4\nsetosa,1,2,3\n")
    assert train.main(root=root) == 1
    assert "line 2: expected 5 columns" in (root / "output" / "failure").read_text()


def test_pipe_mode_rejected(tmp_path: Path) -> None:
    root = make_ml_tree(tmp_path / "ml")
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "Pipe"}})
    )
    assert train.main(root=root) == 2
    assert "Pipe" in (root / "output" / "failure").read_text()


def test_sigterm_during_training_saves_and_exits_143(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_ml_tree(tmp_path / "ml")
    real_accuracy: Callable[[Any, LabelledData], float] = train._accuracy

    def accuracy_then_sigterm(estimator: Any, data: LabelledData) -> float:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises at the next bytecode
        return real_accuracy(estimator, data)

    monkeypatch.setattr(train, "_accuracy", accuracy_then_sigterm)
    previous = signal.getsignal(signal.SIGTERM)
    rc = train.main(root=root)
    assert rc == 143
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is restored
    assert "SIGTERM" in (root / "output" / "failure").read_text()
    assert (root / "model" / MODEL_FILE).is_file()  # the fitted tree was saved
    assert json.loads((root / "model" / METADATA_FILE).read_text())["classes"] == CLASSES


# --------------------------------------------------------------------------- serve


def test_ping_503_before_load_then_200(trained: Path, tmp_path: Path) -> None:
    app = serve.create_app(trained / "model", load=False)
    client = app.test_client()
    assert client.get("/ping").status_code == 503
    assert csv_post(client, GOOD_ROWS).status_code == 503
    assert app.extensions["iris_tree"].load()
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.data == b""


def test_ping_503_when_model_missing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = serve.create_app(tmp_path / "nothing-here").test_client()
    response = client.get("/ping")
    assert response.status_code == 503
    assert b"no model" in response.data
    assert "cannot load the model" in caplog.text


def test_invocations_returns_probabilities_per_row(trained: Path) -> None:
    model_dir = trained / "model"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in model_dir.iterdir())
    client = serve.create_app(model_dir).test_client()
    response = csv_post(client, GOOD_ROWS)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 3
    probabilities = [[float(x) for x in line.split(",")] for line in lines]
    for row in probabilities:
        assert len(row) == 3
        assert sum(row) == pytest.approx(1.0)
    # Column order is the metadata's classes: setosa, versicolor, virginica.
    assert [max(range(3), key=row.__getitem__) for row in probabilities] == [0, 2, 1]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in model_dir.iterdir()) == before


def test_invocations_variants_accepted(trained: Path) -> None:
    client = serve.create_app(trained / "model").test_client()
    header = "sepal_length,sepal_width,petal_length,petal_width\n"
    for body, content_type, headers in [
        (header + GOOD_ROWS, "text/csv", {}),
        (GOOD_ROWS.replace("\n", "\r\n"), "text/csv; charset=utf-8", {}),
        (GOOD_ROWS, "text/csv", {"Accept": "*/*"}),
        (GOOD_ROWS, "text/csv", {"Accept": "text/csv"}),
        (GOOD_ROWS, "text/csv", {"Accept": "application/json, text/csv;q=0.5"}),
        (GOOD_ROWS, "text/csv", {"X-Amzn-SageMaker-Custom-Attributes": "a=b", "X-Unknown": "1"}),
        (GOOD_ROWS.rstrip("\n"), "text/csv", {}),
        (" 5.1 , 3.5 ,1.4,0.2\n\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n\n", "text/csv", {}),
    ]:
        response = csv_post(client, body, content_type, **headers)
        assert response.status_code == 200, (body, headers, response.data)
        assert len(response.get_data(as_text=True).splitlines()) == 3


def test_invocations_one_row_and_many_rows(trained: Path) -> None:
    client = serve.create_app(trained / "model").test_client()
    assert len(csv_post(client, "5.1,3.5,1.4,0.2").get_data(as_text=True).splitlines()) == 1
    body = GOOD_ROWS * 2000
    response = csv_post(client, body)
    assert response.status_code == 200
    assert len(response.get_data(as_text=True).splitlines()) == 6000


def test_invocations_unsupported_media_type(trained: Path) -> None:
    client = serve.create_app(trained / "model").test_client()
    response = csv_post(client, '{"instances": [[1, 2, 3, 4]]}', "application/json")
    assert response.status_code == 415
    assert b"text/csv" in response.data
    assert csv_post(client, GOOD_ROWS, "text/csv; charset=klingon").status_code == 415


def test_invocations_not_acceptable(trained: Path) -> None:
    client = serve.create_app(trained / "model").test_client()
    assert csv_post(client, GOOD_ROWS, Accept="application/json").status_code == 406
    assert csv_post(client, GOOD_ROWS, Accept="text/csv;q=0").status_code == 406


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("5.1,3.5,1.4,0.2\n6.7,3.0,5.2\n", "row 2: expected 4 numeric features, got 3"),
        ("5.1,3.5,1.4,0.2,9\n", "row 1: expected 4 numeric features, got 5"),
        ("5.1,3.5,1.4,0.2\n6.7,abc,5.2,2.3\n", "row 2, column 2"),
        ("5.1,3.5,inf,0.2\n", "finite"),
        ("5.1,3.5,nan,0.2\n", "finite"),
        ("", "empty"),
        ("\n\n", "empty"),
        ("a,b,c,d\n", "no data rows"),
        (b"\xff\xfe1,2,3,4", "utf-8"),
        ("1,2,3,\x004\n", ""),
    ],
)
def test_invocations_malformed_is_400_then_server_keeps_serving(
    trained: Path, body: str | bytes, expected: str
) -> None:
    client = serve.create_app(trained / "model").test_client()
    response = csv_post(client, body)
    assert response.status_code == 400, response.data
    assert expected in response.get_data(as_text=True)
    assert csv_post(client, GOOD_ROWS).status_code == 200


def test_invocations_payload_limit(trained: Path) -> None:
    client = serve.create_app(trained / "model").test_client()
    row = "5.1,3.5,1.4,0.2\n"
    body = row * (serve.MAX_PAYLOAD_BYTES // len(row))
    assert len(body) == 6291456  # exactly 6 MiB is accepted
    response = csv_post(client, body)
    assert response.status_code == 200
    assert csv_post(client, body + "1,2,3,4\n").status_code == 413


def test_execution_parameters_and_unknown_routes(trained: Path) -> None:
    client = serve.create_app(trained / "model", workers=3).test_client()
    response = client.get("/execution-parameters")
    assert response.status_code == 200
    assert response.get_json() == {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
    assert client.get("/nope").status_code == 404
    assert client.get("/invocations").status_code == 405


def test_gunicorn_options_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_MODEL_SERVER_WORKERS", "SAGEMAKER_MODEL_SERVER_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    options = serve.gunicorn_options()
    assert options["bind"] == "0.0.0.0:8080"
    assert options["workers"] == (os.cpu_count() or 1)
    assert options["timeout"] == 60
    assert options["graceful_timeout"] <= 10
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9090")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "120")
    options = serve.gunicorn_options()
    assert (options["bind"], options["workers"], options["timeout"]) == ("0.0.0.0:9090", 3, 120)
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "many")
    with pytest.raises(SystemExit, match="SAGEMAKER_MODEL_SERVER_WORKERS"):
        serve.gunicorn_options()


def test_parse_feature_csv_header_only_first_row() -> None:
    assert parse_feature_csv("a,b,c,d\n1,2,3,4\n").shape == (1, 4)
    with pytest.raises(Exception, match="row 2"):
        parse_feature_csv("1,2,3,4\na,b,c,d\n")


def test_entry_scripts_are_executable() -> None:
    for name in ("processing", "train", "serve"):
        path = PROGRAM_DIR / name
        assert os.access(path, os.X_OK), path
        first = path.read_text().splitlines()[0]
        assert first in ("#!/usr/bin/env python3", "#!/opt/venv/bin/python")


def test_parse_feature_csv_drops_the_label_of_labelled_rows() -> None:
    # A batch transform of the test channel's CSV (label first) predicts from the features.
    features = parse_feature_csv("setosa,5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    assert features.tolist() == [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    with pytest.raises(InputError, match="expected 4 numeric features, got 5"):
        parse_feature_csv("5.1,3.5,1.4,0.2,9\n")


# --------------------------------------------------------------------------- checkpoints (contract t18)


def test_train_checkpoints_and_a_restart_resumes_from_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_ml_tree(tmp_path / "ml", {"max_depth": "2"})
    config = {"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://bucket/ckpt"}
    (root / "input" / "config" / "checkpointconfig.json").write_text(json.dumps(config))
    assert train.main(root=root) == 0
    first = capsys.readouterr().out
    assert "resumed from" not in first
    assert (root / "checkpoints" / MODEL_FILE).is_file()  # /opt/ml/checkpoints, under this test's root
    # A restart: the same checkpoint dir, now holding the checkpoint; the hyperparameters differ, and the resumed
    # job keeps the checkpoint's tree (depth 2), which a fresh fit with max_depth 1 could not give.
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"max_depth": "1"}))
    assert train.main(root=root) == 0
    assert f"resumed from the checkpoint in {root / 'checkpoints'}" in capsys.readouterr().out
    assert json.loads((root / "model" / METADATA_FILE).read_text())["hyperparameters"]["max_depth"] == 1
    assert train.load_model(root / "model").estimator.get_depth() == 2


def test_train_without_checkpoint_config_writes_no_checkpoint(trained: Path) -> None:
    assert not (trained / "checkpoints").exists()


# --------------------------------------------------------------------------- serve: multi-model mode


def test_multi_model_api(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    single = csv_post(serve.create_app(trained / "model").test_client(), GOOD_ROWS)  # the single-model answer
    monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", "true")
    monkeypatch.setattr(serve, "memory_nearly_full", lambda: False)
    assert serve.default_workers() == 1
    client = serve.create_app("/nonexistent").test_client()
    assert client.get("/ping").status_code == 200  # nothing to load at start
    url = str(trained / "model")
    assert client.get("/models").get_json() == {"models": []}
    assert client.post("/models", json={"model_name": "a", "url": url}).status_code == 200
    assert client.post("/models", json={"model_name": "a", "url": url}).status_code == 409
    assert client.get("/models").get_json() == {"models": [{"modelName": "a", "modelUrl": url}]}
    assert client.get("/models/a").get_json() == {"modelName": "a", "modelUrl": url}
    assert client.get("/models/b").status_code == 404
    response = client.post("/models/a/invoke", data=GOOD_ROWS, content_type="text/csv")
    assert response.status_code == 200, response.data
    assert response.get_data(as_text=True) == single.get_data(as_text=True)
    assert client.post("/models/b/invoke", data=GOOD_ROWS, content_type="text/csv").status_code == 404
    assert client.delete("/models/a").status_code == 200
    assert client.delete("/models/a").status_code == 404
    assert client.post("/models/a/invoke", data=GOOD_ROWS, content_type="text/csv").status_code == 404


def test_multi_model_load_errors(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", "true")
    client = serve.create_app("/nonexistent").test_client()
    assert client.post("/models", json={"model_name": "x", "url": str(tmp_path)}).status_code == 400
    assert client.post("/models", json={"url": str(tmp_path)}).status_code == 400
    monkeypatch.setattr(serve, "memory_nearly_full", lambda: True)
    response = client.post("/models", json={"model_name": "a", "url": str(trained / "model")})
    assert response.status_code == 507
    assert client.get("/models").get_json() == {"models": []}


def test_memory_nearly_full_reads_the_cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"/sys/fs/cgroup/memory.current": "950\n", "/sys/fs/cgroup/memory.max": "1000\n"}
    real_read_text = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if str(self) in files:
            return files[str(self)]
        if str(self).startswith("/sys/fs/cgroup"):
            raise FileNotFoundError(str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert serve.memory_nearly_full()
    files["/sys/fs/cgroup/memory.current"] = "100\n"
    assert not serve.memory_nearly_full()
    files["/sys/fs/cgroup/memory.max"] = "max\n"
    assert not serve.memory_nearly_full()
