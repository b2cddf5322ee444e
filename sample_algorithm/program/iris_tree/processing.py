"""``processing``: split a raw iris CSV into the train and test CSVs ``train`` reads.

SageMaker runs it as the processing job's ContainerEntrypoint ``["processing"]``, with the job's
ContainerArguments after it::

    processing [--input DIR] [--output DIR] [--test-fraction 0.2] [--seed 0]

Input: the first ``*.csv`` under ``--input`` (default ``/opt/ml/processing/input/raw``, or
``/opt/ml/processing/input`` when that has no ``raw`` directory), with or without a header row.
Output: ``<output>/train/train.csv`` and ``<output>/test/test.csv`` (default output
``/opt/ml/processing/output``), no header, label first. On failure the reason goes to
``/opt/ml/output/message`` and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import numpy as np

from .common import ML_ROOT, AlgorithmError, ConfigurationError, Terminated, fail, sigterm_raises
from .model import LabelledData, csv_files, format_labelled_csv, read_labelled_csv


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


def main(argv: list[str] | None = None, root: str | Path = ML_ROOT) -> int:
    root = Path(root)
    message_path = root / "output" / "message"
    with sigterm_raises():
        try:
            args = build_parser().parse_args(argv)
            input_dir = args.input
            if input_dir is None:
                raw = root / "processing" / "input" / "raw"
                input_dir = raw if raw.is_dir() else root / "processing" / "input"
            output_dir = args.output or root / "processing" / "output"
            run(input_dir, output_dir, args.test_fraction, args.seed)
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
