"""Build the parsed rows with list concatenation: each row copies the whole list so far."""

from pathlib import Path

path = Path("/opt/program/iris_tree/model.py")
old = '            rows.append([_to_float(cell, f"row {line}, column {i}") for i, cell in enumerate(cells, 1)])\n'
new = '            rows = rows + [[_to_float(cell, f"row {line}, column {i}") for i, cell in enumerate(cells, 1)]]\n'
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
