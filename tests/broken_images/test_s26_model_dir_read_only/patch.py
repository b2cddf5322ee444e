"""Write a cache file next to the model when loading it."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = "                self.model = load_model(self.model_dir)\n"
new = old + (
    "                # Cache the class list next to the model for faster restarts.\n"
    '                (self.model_dir / "classes.cache").write_text(",".join(self.model.classes))\n'
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
