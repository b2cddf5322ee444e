"""Look for the checkpoint to resume from in the wrong directory (a typo): it is never found."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = "    estimator = _resume(checkpoint_dir)\n"
new = '    estimator = _resume(root / "checkpoint")\n'
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
