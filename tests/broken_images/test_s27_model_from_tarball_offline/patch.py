"""Fetch the model over the network instead of reading /opt/ml/model."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = "                self.model = load_model(self.model_dir)\n"
new = (
    "                import urllib.request\n"
    "\n"
    '                url = os.environ.get("MODEL_URL", "http://127.0.0.1:9000/models/iris/model.joblib")\n'
    '                local = Path("/tmp/model")\n'
    "                local.mkdir(exist_ok=True)\n"
    '                urllib.request.urlretrieve(url, local / "model.joblib")\n'
    "                self.model = load_model(local)\n"
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
