"""Write scikit-learn's bundled iris data set as a raw CSV (with a header).

    python -m iris_tree.dataset OUTFILE

The data ships inside scikit-learn: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from .common import FEATURE_NAMES, LABEL_NAME


def iris_csv() -> str:
    """The 150 iris rows as CSV text: header ``sepal_length,...,petal_width,species``."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FEATURE_NAMES, LABEL_NAME])
    for row, target in zip(iris.data, iris.target, strict=True):
        writer.writerow([*(repr(float(v)) for v in row), str(iris.target_names[target])])
    return out.getvalue()


def write_iris_csv(path: str | Path) -> int:
    """Write the iris CSV to ``path`` (parents created); return the number of data rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = iris_csv()
    path.write_text(text, encoding="utf-8")
    return text.count("\n") - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iris_tree.dataset", description=__doc__.splitlines()[0])
    parser.add_argument("outfile", help="where to write the CSV")
    args = parser.parse_args(argv)
    rows = write_iris_csv(args.outfile)
    print(f"wrote {rows} iris rows to {args.outfile}", file=sys.stderr)  # stdout may be the CSV itself
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
