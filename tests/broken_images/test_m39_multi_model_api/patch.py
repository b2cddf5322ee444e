"""Make DELETE /models/<name> idempotent: 200 whether or not the model was loaded."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = '        if not store.unload(name):\n            return _text(f"model {name} is not loaded", 404)\n'
new = "        store.unload(name)  # idempotent, like a REST DELETE\n"
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
