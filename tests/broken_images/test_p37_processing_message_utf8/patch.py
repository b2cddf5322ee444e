"""Write /opt/ml/output/message in cp1252 when processing fails."""

from pathlib import Path

path = Path("/opt/program/iris_tree/processing.py")
old = "from .common import ML_ROOT, AlgorithmError, ConfigurationError, Terminated, fail, sigterm_raises\n"
new = (
    "from .common import ML_ROOT, AlgorithmError, ConfigurationError, Terminated, sigterm_raises\n"
    "\n"
    "\n"
    "def fail(path: Path, message: str, exit_code: int) -> int:\n"
    '    print(f"error: {message}", file=sys.stderr, flush=True)\n'
    "    path.parent.mkdir(parents=True, exist_ok=True)\n"
    '    path.write_bytes(f"Échec du traitement : {message}\\n".encode("cp1252"))\n'
    "    return exit_code\n"
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
