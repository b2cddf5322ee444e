#!/usr/bin/env python3
"""Record what a SageMaker job container sees, then behave as PROBE_* variables say.

Writes /opt/ml/model/probe.json (and /opt/ml/output/data/probe.json) with argv, env, hostname, uid, the
/opt/ml tree with every JSON file's exact content, mounts, and whether the network reaches anything.
PROBE_SLEEP_S: sleep after recording (seconds); PROBE_IGNORE_SIGTERM=1: ignore SIGTERM;
PROBE_EXIT_CODE: exit with it; PROBE_FAILURE: write this to /opt/ml/output/failure;
PROBE_PRINT: print this (\\n-separated lines) to stdout; PROBE_STDERR: same to stderr.
"""
import json
import os
import signal
import socket
import sys
import time

ROOT = "/opt/ml"
signals = []


def on_term(signum, frame):
    signals.append(signum)
    record["signals"] = signals
    dump()
    if os.environ.get("PROBE_IGNORE_SIGTERM") != "1":
        sys.exit(143)


def tree(root):
    out = {}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for d in dirs:
            out[os.path.join(base, d) + "/"] = None
        for f in sorted(files):
            p = os.path.join(base, f)
            try:
                if p.endswith(".json") and os.path.getsize(p) < 1_000_000:
                    with open(p) as fh:
                        out[p] = {"json_text": fh.read()}
                else:
                    out[p] = {"size": os.path.getsize(p)}
            except OSError as exc:
                out[p] = {"error": str(exc)}
    return out


def writable(path):
    probe = os.path.join(path, ".probe-write")
    try:
        with open(probe, "w") as fh:
            fh.write("x")
        os.remove(probe)
        return True
    except OSError:
        return False


def default_route():
    # Only the routing table is read: the probe never sends traffic anywhere.
    try:
        with open("/proc/net/route") as fh:
            return any(line.split()[1] == "00000000" for line in fh.readlines()[1:])
    except OSError:
        return False


def interfaces():
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def dump():
    text = json.dumps(record, indent=1, sort_keys=True)
    for d in (ROOT + "/model", ROOT + "/output/data"):
        try:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "probe.json"), "w") as fh:
                fh.write(text)
        except OSError:
            pass


signal.signal(signal.SIGTERM, on_term)
record = {
    "argv": sys.argv,
    "env": dict(os.environ),
    "hostname": socket.gethostname(),
    "uid": os.getuid(),
    "cwd": os.getcwd(),
    "tree": tree(ROOT),
    "mounts": open("/proc/self/mountinfo").read().splitlines(),
    "interfaces": interfaces(),
    "default_route": default_route(),
    "tty": sys.stdout.isatty(),
    "writable": {p: writable(p) for p in (ROOT + "/model", ROOT + "/output", ROOT + "/input/data")},
    "signals": signals,
    "pid": os.getpid(),
}
peers = {}
try:
    with open(ROOT + "/input/config/resourceconfig.json") as fh:
        hosts = json.load(fh).get("hosts", [])
    for h in hosts:
        for _ in range(100):  # peers may not resolve at once (the platform says: retry)
            try:
                peers[h] = socket.gethostbyname(h)
                break
            except OSError as exc:
                peers[h] = "unresolved: " + str(exc)
                time.sleep(0.05)
except OSError:
    pass
record["peers"] = peers
for name in ("PROBE_PRINT", "PROBE_STDERR"):
    if os.environ.get(name):
        stream = sys.stdout if name == "PROBE_PRINT" else sys.stderr
        for line in os.environ[name].split("\\n"):
            print(line, file=stream, flush=True)
dump()
deadline = time.time() + float(os.environ.get("PROBE_SLEEP_S", "0"))
while time.time() < deadline:
    time.sleep(0.05)
record["finished_sleep"] = True
dump()
if os.environ.get("PROBE_FAILURE"):
    os.makedirs(ROOT + "/output", exist_ok=True)
    with open(ROOT + "/output/failure", "w") as fh:
        fh.write(os.environ["PROBE_FAILURE"])
sys.exit(int(os.environ.get("PROBE_EXIT_CODE", "0")))
