"""At start-up, load every file of the model directory as an artifact, not only the ones the server needs."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = "    if load:\n        state.load()\n"
new = (
    "    if load:\n"
    "        import joblib\n"
    "\n"
    "        # Refuse to serve a half-written model: every artifact must load.\n"
    '        for artifact in sorted(p for p in Path(model_dir).rglob("*") if p.is_file() and p.suffix != ".json"):\n'
    "            joblib.load(artifact)\n"
    "        state.load()\n"
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
