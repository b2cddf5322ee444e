"""Cache the parsed channel next to its data when the channel is FastFile (lazily streamed from S3)."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = "    data = read_labelled_dir(directory)\n"
new = old + (
    '    modes = json.loads((data_dir.parent / "config" / "inputdataconfig.json").read_text())\n'
    '    if modes.get(channel, {}).get("TrainingInputMode") == "FastFile":  # streamed: keep a parsed copy\n'
    '        np.save(directory / ".parsed-cache.npy", data.features)\n'
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
