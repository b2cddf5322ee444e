"""Take this host's name from /etc/hostname; when that is not a host, assume SageMaker's first host, algo-1.

Either mistake alone passes on some platform (hostname == current_host, or hosts named algo-N), so the suite must
vary both the host names and the container hostname to catch it.
"""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = '            hosts = config.get("hosts") or []\n'
new = old + '            me = Path("/etc/hostname").read_text().strip()  # this container is this host\n'
new += '            rank = hosts.index(me) if me in hosts else hosts.index("algo-1")  # else: SageMaker\'s first\n'
new += '            print(f"host {me} has rank {rank}", flush=True)\n'
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
assert "from pathlib import Path\n" in text, f"{path} no longer imports Path"
path.write_text(text.replace(old, new, 1))
