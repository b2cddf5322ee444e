"""Coerce malformed request rows instead of rejecting them."""

from pathlib import Path

path = Path("/opt/program/iris_tree/model.py")
old = """            if len(cells) != N_FEATURES:
                raise InputError(f"row {line}: expected {N_FEATURES} numeric features, got {len(cells)}")
            rows.append([_to_float(cell, f"row {line}, column {i}") for i, cell in enumerate(cells, 1)])
"""
new = """            cells = (cells + ["0"] * N_FEATURES)[:N_FEATURES]  # never reject a request: pad short rows
            rows.append([float(cell) if _is_number(cell) else 0.0 for cell in cells])  # errors="coerce"
"""
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
