"""Require Accept: text/csv."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = (
    '    header = request.headers.get("Accept", "").strip()\n'
    "    if not header:\n"
    "        return True\n"
    "    return request.accept_mimetypes.quality(CSV) > 0\n"
)
new = '    header = request.headers.get("Accept", "").strip()\n    return CSV in header\n'
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
