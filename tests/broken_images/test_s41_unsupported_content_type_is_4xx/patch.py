"""Parse every request body as CSV, whatever its Content-Type."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = (
    '        content_type = request.headers.get("Content-Type", "").strip()\n'
    "        if content_type and request.mimetype != CSV:\n"
    '            return _text(f"unsupported Content-Type {content_type!r}: send {CSV}", 415)\n'
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, "", 1))
