"""Bake classes.json under /opt/ml/code and make train require it."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = '    train = read_channel(data_dir, "train", required=True)\n'
new = old + '    known_classes = json.loads((root / "code" / "classes.json").read_text(encoding="utf-8"))\n'
new += '    print(f"known classes: {known_classes}", flush=True)\n'
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
baked = Path("/opt/ml/code/classes.json")
baked.parent.mkdir(parents=True)
baked.write_text('["setosa", "versicolor", "virginica"]\n')
