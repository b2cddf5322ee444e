#!/usr/bin/env python3
"""Record what a SageMaker job container sees, then behave as PROBE_* variables say.

Writes /opt/ml/model/probe.json (and /opt/ml/output/data/probe.json) with argv, env, hostname, uid, the
/opt/ml tree with every JSON file's exact content, mounts, and whether the network reaches anything.
PROBE_SLEEP_S: sleep after recording (seconds); PROBE_IGNORE_SIGTERM=1: ignore SIGTERM;
PROBE_EXIT_CODE: exit with it; PROBE_FAILURE: write this to /opt/ml/output/failure;
PROBE_PRINT: print this (\\n-separated lines) to stdout; PROBE_STDERR: same to stderr;
PROBE_RESOLVE_S: how long to keep retrying peer host names that do not resolve yet (default 5 s, in total;
0 skips resolving); PROBE_PER_HOST=1: also write probe-<hostname>.json (multi-host jobs merge model dirs).
Also records the cgroup CPU/memory limits ("limits") and whether each channel dir is writable.
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


def read_first(*paths):
    for path in paths:
        try:
            with open(path) as fh:
                return fh.read().strip()
        except OSError:
            continue
    return None


def limits():
    """The container's CPU and memory limits as the kernel sees them (cgroup v2, else v1)."""
    out = {"cpu_quota_us": None, "cpu_period_us": None, "memory_bytes": None}
    cpu_max = read_first("/sys/fs/cgroup/cpu.max")
    if cpu_max:
        quota, _, period = cpu_max.partition(" ")
        out["cpu_quota_us"] = None if quota == "max" else int(quota)
        out["cpu_period_us"] = int(period or 100000)
    else:
        quota = read_first("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")
        period = read_first("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")
        out["cpu_quota_us"] = int(quota) if quota and int(quota) > 0 else None
        out["cpu_period_us"] = int(period) if period else None
    mem = read_first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    out["memory_bytes"] = int(mem) if mem and mem != "max" else None
    return out


def channel_dirs():
    base = ROOT + "/input/data"
    try:
        return sorted(os.path.join(base, d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
    except OSError:
        return []


def interfaces():
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def dump():
    text = json.dumps(record, indent=1, sort_keys=True)
    names = ["probe.json"]
    if os.environ.get("PROBE_PER_HOST") == "1":
        names.append(f"probe-{socket.gethostname()}.json")
    for d in (ROOT + "/model", ROOT + "/output/data"):
        for name in names:
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, name), "w") as fh:
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
    "mounts": (read_first("/proc/self/mountinfo") or "").splitlines(),
    "interfaces": interfaces(),
    "default_route": default_route(),
    "tty": sys.stdout.isatty(),
    "writable": {p: writable(p) for p in (ROOT + "/model", ROOT + "/output", ROOT + "/input/data", *channel_dirs())},
    "limits": limits(),
    "signals": signals,
    "pid": os.getpid(),
}
peers = {}
try:
    with open(ROOT + "/input/config/resourceconfig.json") as fh:
        hosts = json.load(fh).get("hosts", [])
    # Peers may not resolve at once (the platform says: retry); one deadline for all of them.
    resolve_s = float(os.environ.get("PROBE_RESOLVE_S", "5"))
    resolve_deadline = time.time() + resolve_s
    pending = list(hosts) if resolve_s > 0 else []
    while pending:
        for h in list(pending):
            try:
                peers[h] = socket.gethostbyname(h)
                pending.remove(h)
            except OSError as exc:
                peers[h] = "unresolved: " + str(exc)
        if not pending or time.time() >= resolve_deadline:
            break
        time.sleep(0.05)
except (OSError, ValueError):
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
