"""Reject SageMaker headers the server does not know."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = "    def invocations() -> Response:\n"
new = old + (
    '        unknown = [h for h in request.headers.keys() if h.lower().startswith("x-amzn-sagemaker-")]\n'
    "        if unknown:\n"
    '            return _text(f"unsupported headers: {unknown}", 400)\n'
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
