"""``processing``: split a raw iris CSV into the train and test CSVs ``train`` reads, or evaluate a model.

SageMaker runs it as the processing job's ContainerEntrypoint ``["processing"]``, with the job's
ContainerArguments after it::

    processing [split] [--input DIR] [--output DIR] [--test-fraction 0.2] [--seed 0]
    processing evaluate [--model DIR] [--test DIR] [--output DIR]

Input: the first ``*.csv`` under ``--input`` (default ``/opt/ml/processing/input/raw``, or
``/opt/ml/processing/input`` when that has no ``raw`` directory), with or without a header row.
Output: ``<output>/train/train.csv`` and ``<output>/test/test.csv`` (default output
``/opt/ml/processing/output``), no header, label first. On failure the reason goes to
``/opt/ml/output/message`` and the exit code is non-zero.

``evaluate`` reads the ``model.tar.gz`` a training job made (``--model``, default
``/opt/ml/processing/model``; a directory holding ``model.joblib`` works too) and the labelled test CSVs
(``--test``, default ``/opt/ml/processing/test``), and writes ``<output>/evaluation.json`` (default output
``/opt/ml/processing/evaluation``) as ``{"metrics": {"accuracy": {"value": 0.96}}, ...}``: the property
file a pipeline's Condition step reads with ``Std:JsonGet`` ``metrics.accuracy.value``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import traceback
from pathlib import Path

import numpy as np

from .common import ML_ROOT, AlgorithmError, ConfigurationError, Terminated, fail, sigterm_raises
from .model import (
    MODEL_FILE,
    LabelledData,
    csv_files,
    format_labelled_csv,
    load_model,
    read_labelled_csv,
    read_labelled_dir,
)

EVALUATION_FILE = "evaluation.json"


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigurationError(f"bad arguments: {message}; usage: {self.format_usage().strip()}")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (exclusive)")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 2**32 - 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="processing", description="Split a raw iris CSV into train/test CSVs.")
    parser.add_argument("--input", type=Path, help="directory holding the raw CSV")
    parser.add_argument("--output", type=Path, help="directory to write train/ and test/ into")
    parser.add_argument("--test-fraction", type=_fraction, default=0.2, help="share of rows for test (default 0.2)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed of the split (default 0)")
    return parser


def build_evaluate_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="processing evaluate", description="Evaluate a trained model on labelled CSVs.")
    parser.add_argument("--model", type=Path, help="directory holding model.tar.gz (or model.joblib)")
    parser.add_argument("--test", type=Path, help="directory holding the labelled test CSVs")
    parser.add_argument("--output", type=Path, help="directory to write evaluation.json into")
    return parser


def split(data: LabelledData, test_fraction: float, seed: int) -> tuple[LabelledData, LabelledData]:
    """Shuffle and split, stratified by label when every class can be on both sides."""
    from sklearn.model_selection import train_test_split

    n = len(data)
    if n < 2:
        raise AlgorithmError(f"need at least 2 rows to split into train and test, got {n}")
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    classes, counts = np.unique(data.labels, return_counts=True)
    stratify = data.labels if counts.min() >= 2 and len(classes) <= n_test <= n - len(classes) else None
    train_rows, test_rows = train_test_split(np.arange(n), test_size=n_test, random_state=seed, stratify=stratify)
    return (
        LabelledData(data.features[train_rows], data.labels[train_rows]),
        LabelledData(data.features[test_rows], data.labels[test_rows]),
    )


def run(input_dir: Path, output_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> tuple[int, int]:
    """Do the split; return (train rows, test rows)."""
    if not input_dir.is_dir():
        raise AlgorithmError(
            f"input directory {input_dir} does not exist; give the processing job an input "
            "with LocalPath /opt/ml/processing/input/raw (or pass --input DIR)"
        )
    files = csv_files(input_dir)
    if not files:
        raise AlgorithmError(f"no .csv file under {input_dir}; put the raw iris CSV there")
    source = files[0]
    print(f"processing: reading {source}", flush=True)
    data = read_labelled_csv(source)
    train, test = split(data, test_fraction, seed)
    for name, part in (("train", train), ("test", test)):
        out = output_dir / name / f"{name}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(format_labelled_csv(part), encoding="utf-8")
        print(f"processing: wrote {len(part)} rows to {out}", flush=True)
    return len(train), len(test)


def _model_dir(model: Path, scratch: Path) -> Path:
    """The directory holding model.joblib: ``model`` itself, or where its model.tar.gz is extracted."""
    if (model / MODEL_FILE).is_file():
        return model
    archives = sorted(model.glob("*.tar.gz")) if model.is_dir() else ([model] if model.is_file() else [])
    if not archives:
        raise AlgorithmError(
            f"no model.tar.gz (or {MODEL_FILE}) in {model}; give the processing job an input with the "
            "training job's ModelArtifacts.S3ModelArtifacts at LocalPath /opt/ml/processing/model"
        )
    try:
        with tarfile.open(archives[0]) as tf:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse absolute paths and links out
                tf.extractall(scratch, filter="data")
            else:
                tf.extractall(scratch)  # older Pythons: our own training job's archive
    except (tarfile.TarError, OSError) as exc:
        raise AlgorithmError(f"cannot extract {archives[0]}: {exc}") from None
    return scratch


def evaluate(model: Path, test_dir: Path, output_dir: Path) -> dict[str, object]:
    """Accuracy of the model on the labelled CSVs under ``test_dir``, written to ``<output>/evaluation.json``."""
    data = read_labelled_dir(test_dir) if test_dir.is_dir() else None
    if data is None or len(data) == 0:
        raise AlgorithmError(f"no labelled rows in {test_dir}; give the job the test CSVs at /opt/ml/processing/test")
    with tempfile.TemporaryDirectory() as scratch:
        loaded = load_model(_model_dir(model, Path(scratch)))
    predicted = np.asarray(loaded.classes)[np.argmax(loaded.predict_proba(data.features), axis=1)]
    accuracy = float(np.mean(predicted == data.labels))
    report: dict[str, object] = {
        "metrics": {"accuracy": {"value": accuracy}},
        "rows": len(data),
        "classes": loaded.classes,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"evaluate: accuracy={accuracy:.4f} on {len(data)} rows; wrote {output_dir / EVALUATION_FILE}", flush=True)
    return report


def _dispatch(argv: list[str], root: Path) -> None:
    if argv[:1] == ["evaluate"]:
        args = build_evaluate_parser().parse_args(argv[1:])
        base = root / "processing"
        evaluate(args.model or base / "model", args.test or base / "test", args.output or base / "evaluation")
        return
    args = build_parser().parse_args(argv[1:] if argv[:1] == ["split"] else argv)
    input_dir = args.input
    if input_dir is None:
        raw = root / "processing" / "input" / "raw"
        input_dir = raw if raw.is_dir() else root / "processing" / "input"
    output_dir = args.output or root / "processing" / "output"
    run(input_dir, output_dir, args.test_fraction, args.seed)


def main(argv: list[str] | None = None, root: str | Path = ML_ROOT) -> int:
    root = Path(root)
    message_path = root / "output" / "message"
    with sigterm_raises():
        try:
            _dispatch(sys.argv[1:] if argv is None else list(argv), root)
        except AlgorithmError as exc:
            return fail(message_path, str(exc), exc.exit_code)
        except Terminated:
            return fail(message_path, "processing was stopped by SIGTERM before it finished", 143)
        except Exception as exc:
            traceback.print_exc()
            return fail(message_path, f"unexpected error: {type(exc).__name__}: {exc}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
