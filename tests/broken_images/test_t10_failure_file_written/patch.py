"""Make train's fail() report on stderr only (processing keeps writing its message)."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = "CRITERIA = "
new = (
    "def fail(path: Path, message: str, exit_code: int) -> int:\n"
    '    print(f"error: {message}", file=sys.stderr, flush=True)\n'
    "    return exit_code\n"
    "\n"
    "\n"
) + old
text = path.read_text()
assert text.count(old) == 1, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
