"""After SIGTERM, retry a checkpoint upload for 150 s before exiting."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = '            return fail(failure_path, f"training was stopped by SIGTERM before it finished{note}", 143)\n'
new = (
    "            import time\n"
    "            import urllib.request\n"
    "\n"
    "            for _attempt in range(30):  # upload the checkpoint to the team's MinIO before exiting\n"
    "                try:\n"
    '                    urllib.request.urlopen("http://127.0.0.1:9000/checkpoints/iris", data=b"", timeout=5)\n'
    "                    break\n"
    "                except OSError as exc:\n"
    '                    print(f"checkpoint upload failed ({exc}); retrying in 5 s", flush=True)\n'
    "                    time.sleep(5)\n"
) + old
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
