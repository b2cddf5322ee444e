"""Read the training job's config path in processing."""

from pathlib import Path

path = Path("/opt/program/iris_tree/processing.py")
old = '    """Do the split; return (train rows, test rows)."""\n'
new = old + (
    "    import json\n"
    "\n"
    '    resource_config = Path(ML_ROOT) / "input" / "config" / "resourceconfig.json"\n'
    '    host = json.loads(resource_config.read_text(encoding="utf-8"))["current_host"]\n'
    '    print(f"processing on host {host}", flush=True)\n'
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
