"""Print the accuracy metrics in a friendlier format that the users' MetricDefinitions regexes do not match."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = "    print(f\"train_accuracy={metrics['train_accuracy']:.4f};\", flush=True)\n"
new = "    print(f\"train_accuracy: {metrics['train_accuracy']:.2%}\", flush=True)\n"
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
