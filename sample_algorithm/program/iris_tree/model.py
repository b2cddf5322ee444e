"""CSV parsing, and saving/loading the model artefacts under ``/opt/ml/model``."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .common import FEATURE_NAMES, LABEL_NAME, N_FEATURES, AlgorithmError

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"

# Header names that are taken as the label column when a labelled CSV has a header row.
LABEL_COLUMN_NAMES = (LABEL_NAME, "label", "target", "class", "variety")


class InputError(AlgorithmError):
    """Malformed data (a CSV file or a request body)."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _to_float(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InputError(f"{where}: {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {text!r} is not a finite number")
    return value


# --------------------------------------------------------------------------- labelled CSVs


@dataclass
class LabelledData:
    features: np.ndarray  # shape (n, 4), float64
    labels: np.ndarray  # shape (n,), str

    def __len__(self) -> int:
        return len(self.labels)


def parse_labelled_csv(text: str, source: str) -> LabelledData:
    """Parse labelled iris rows.

    Two layouts are accepted:

    - no header, the label in the first column, then the 4 features (what ``processing`` writes);
    - a header row (every cell non-numeric), e.g. ``sepal_length,...,petal_width,species``: the
      label is the column named ``species`` (or label/target/class/variety), the features are the
      4 named feature columns, or else the 4 other columns in order.
    """
    label_col = 0
    feature_cols = list(range(1, N_FEATURES + 1))
    n_cols = N_FEATURES + 1
    features: list[list[float]] = []
    labels: list[str] = []
    try:
        for line, cells, is_header in _data_rows(text):
            where = f"{source} line {line}"
            if is_header:
                label_col, feature_cols = _columns_from_header(cells, where)
                n_cols = len(cells)
                continue
            if len(cells) != n_cols:
                expected = f"{n_cols} columns (the label and {N_FEATURES} numeric features)"
                raise InputError(f"{where}: expected {expected}, got {len(cells)}")
            label = cells[label_col]
            if not label:
                raise InputError(f"{where}: the label (column {label_col + 1}) is empty")
            features.append([_to_float(cells[c], f"{where}, column {c + 1}") for c in feature_cols])
            labels.append(label)
    except csv.Error as exc:
        raise InputError(f"{source}: not a readable CSV file ({exc})") from None
    return LabelledData(
        features=np.asarray(features, dtype=np.float64).reshape(-1, N_FEATURES),
        labels=np.asarray(labels, dtype=str),
    )


def _data_rows(text: str) -> Iterator[tuple[int, list[str], bool]]:
    """Non-blank CSV rows as (line number, stripped cells, is_header).

    Only the first row can be a header: one whose cells are all non-numeric. Raises ``csv.Error``.
    """
    reader = csv.reader(io.StringIO(text))
    first = True
    for row in reader:
        cells = [cell.strip() for cell in row]
        if any(cells):
            yield reader.line_num, cells, first and not any(_is_number(cell) for cell in cells)
            first = False


def _columns_from_header(cells: list[str], where: str) -> tuple[int, list[int]]:
    names = [cell.lower() for cell in cells]
    label_col = next((names.index(n) for n in LABEL_COLUMN_NAMES if n in names), None)
    if label_col is None:
        raise InputError(
            f"{where}: the header {','.join(cells)!r} has no label column; name it {LABEL_NAME!r} "
            "(or drop the header and put the label in the first column)"
        )
    if all(name in names for name in FEATURE_NAMES):
        return label_col, [names.index(name) for name in FEATURE_NAMES]
    others = [i for i in range(len(cells)) if i != label_col]
    if len(others) != N_FEATURES:
        raise InputError(f"{where}: the header has {len(others)} feature columns, expected {N_FEATURES}")
    return label_col, others


def read_labelled_csv(path: Path) -> LabelledData:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    return parse_labelled_csv(text, str(path))


def csv_files(directory: Path) -> list[Path]:
    """All ``*.csv`` files under ``directory`` (recursively), in a stable order."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() == ".csv")


def read_labelled_dir(directory: Path) -> LabelledData:
    parts = [read_labelled_csv(path) for path in csv_files(directory)]
    if not parts:
        return LabelledData(np.empty((0, N_FEATURES)), np.empty((0,), dtype=str))
    return LabelledData(
        features=np.concatenate([p.features for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
    )


def format_labelled_csv(data: LabelledData) -> str:
    """No header, label first, then the features (the layout ``train`` reads)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for label, row in zip(data.labels, data.features, strict=True):
        writer.writerow([str(label), *(repr(float(v)) for v in row)])
    return out.getvalue()


# --------------------------------------------------------------------------- inference input


def parse_feature_csv(text: str) -> np.ndarray:
    """Parse an inference request body: rows of 4 numeric features, an optional header row.

    Labelled rows (the layout ``train`` reads: a non-numeric label first, then the 4 features) are taken
    too, their label dropped: a batch transform of the test channel's CSV works as it is.

    Raises :class:`InputError` with a short message naming the first problem.
    """
    rows: list[list[float]] = []
    try:
        for line, cells, is_header in _data_rows(text):
            if is_header:
                continue
            if len(cells) == N_FEATURES + 1 and cells[0] and not _is_number(cells[0]):
                cells = cells[1:]  # a labelled row: label first, as in the train and test CSVs
            if len(cells) != N_FEATURES:
                raise InputError(f"row {line}: expected {N_FEATURES} numeric features, got {len(cells)}")
            rows.append([_to_float(cell, f"row {line}, column {i}") for i, cell in enumerate(cells, 1)])
    except csv.Error as exc:
        raise InputError(f"the body is not valid CSV ({exc})") from None
    if not rows:
        raise InputError(f"no data rows: send one or more CSV rows of {N_FEATURES} numeric features")
    return np.asarray(rows, dtype=np.float64)


def format_probabilities(probabilities: np.ndarray) -> str:
    return "".join(",".join(repr(float(p)) for p in row) + "\n" for row in probabilities)


# --------------------------------------------------------------------------- model artefacts


@dataclass
class LoadedModel:
    estimator: Any
    classes: list[str]
    metadata: dict[str, Any]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(features), dtype=np.float64)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_model(model_dir: Path, estimator: Any, metadata: dict[str, Any]) -> None:
    import joblib

    model_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    _atomic_write(model_dir / MODEL_FILE, buffer.getvalue())
    _atomic_write(model_dir / METADATA_FILE, (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())


def load_model(model_dir: Path) -> LoadedModel:
    """Load what ``train`` wrote; raise :class:`AlgorithmError` saying what is missing or wrong."""
    import joblib

    model_path = model_dir / MODEL_FILE
    if not model_path.is_file():
        found = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else None
        detail = "the directory does not exist" if found is None else f"it contains {found or 'nothing'}"
        raise AlgorithmError(f"no model at {model_path} ({detail}); train a model first")
    try:
        estimator = joblib.load(model_path)
    except Exception as exc:
        raise AlgorithmError(f"cannot load {model_path}: {type(exc).__name__}: {exc}") from exc
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        raise AlgorithmError(f"{model_path} does not hold a fitted classifier")
    metadata: dict[str, Any] = {}
    metadata_path = model_dir / METADATA_FILE
    if metadata_path.is_file():
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AlgorithmError(f"cannot read {metadata_path}: {exc}") from exc
    classes = [str(c) for c in estimator.classes_]
    if metadata.get("classes", classes) != classes:
        raise AlgorithmError(f"{metadata_path} lists classes {metadata.get('classes')} but the model has {classes}")
    n_features = getattr(estimator, "n_features_in_", N_FEATURES)
    if n_features != N_FEATURES:
        raise AlgorithmError(f"{model_path} expects {n_features} features, this server sends {N_FEATURES}")
    return LoadedModel(estimator=estimator, classes=classes, metadata=metadata)
