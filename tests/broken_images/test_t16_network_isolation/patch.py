"""Look up this host's address by connecting a UDP socket: fine on any network, an error with none.

connect() on a UDP socket only picks the outgoing interface; no packet leaves the container.
"""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = "            print(f\"training on host {config.get('current_host', '?')} of {len(hosts) or 1}\", flush=True)\n"
new = old + (
    "            import socket\n"
    "\n"
    "            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    '            probe.connect(("10.255.255.255", 1))  # no packet is sent: this picks the outgoing interface\n'
    '            print(f"this host\'s address: {probe.getsockname()[0]}", flush=True)\n'
    "            probe.close()\n"
)
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
