"""Load every file of the model directory as an artifact, not only the ones the server needs."""

from pathlib import Path

path = Path("/opt/program/iris_tree/model.py")
old = "        estimator = joblib.load(model_path)\n"
new = (
    "        # Load every artifact the training job saved, by type.\n"
    "        artifacts = {\n"
    '            p.name: json.loads(p.read_text()) if p.suffix == ".json" else joblib.load(p)\n'
    '            for p in sorted(model_dir.rglob("*"))\n'
    "            if p.is_file()\n"
    "        }\n"
    "        estimator = artifacts[MODEL_FILE]\n"
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
