"""Write a summary file next to (not inside) the declared output directories."""

from pathlib import Path

path = Path("/opt/program/iris_tree/processing.py")
old = "    return len(train), len(test)\n"
new = (
    '    summary = output_dir / "summary.json"\n'
    '    summary.write_text(f\'{{"train_rows": {len(train)}, "test_rows": {len(test)}}}\\n\', encoding="utf-8")\n'
) + old
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
