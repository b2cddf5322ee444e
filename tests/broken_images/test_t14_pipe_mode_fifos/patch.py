"""Read Pipe channels (instead of refusing them), two epochs, without waiting for <channel>_1 to appear."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
refuse = '                if str(mode).lower() == "pipe":\n'
read_old = "    directory = data_dir / channel\n"
read_new = read_old + (
    '    if (data_dir / f"{channel}_0").exists():  # Pipe mode: one FIFO per epoch\n'
    "        import tempfile\n"
    "\n"
    "        for epoch in range(2):  # every epoch's FIFO assumed to be there already\n"
    '            rows = (data_dir / f"{channel}_{epoch}").read_bytes()\n'
    "        directory = Path(tempfile.mkdtemp())\n"
    '        (directory / "data.csv").write_bytes(rows)\n'
)
text = path.read_text()
assert refuse in text, f"patch does not apply to {path}"
assert read_old in text, f"patch does not apply to {path}"
text = text.replace(refuse, '                if str(mode).lower() == "pipe-unsupported":\n', 1)
path.write_text(text.replace(read_old, read_new, 1))
