"""Preallocate an input buffer per loaded model, without the memory check before a load."""

from pathlib import Path

path = Path("/opt/program/iris_tree/serve.py")
old = (
    "            if memory_nearly_full():\n"
    '                return 507, f"not enough memory to load model {name}: unload another model first"\n'
)
new = "            self.buffers = [*getattr(self, 'buffers', []), bytearray(b'\\x01' * (64 * 2**20))]\n"
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
