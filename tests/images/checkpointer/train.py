#!/usr/bin/env python3
"""Train in steps, checkpointing after each one, and resume from the newest checkpoint on a restart.

At the start it reads /opt/ml/input/config/checkpointconfig.json (LocalPath), finds the newest ``step-N.ckpt``
there (its content is N) and goes on from N + 1; it records what it found in /opt/ml/model/resume.json (``files``:
every file there) and prints ``resumed from step N`` (or ``fresh start``). Each step (CKPT_STEP_S seconds, default
0.2) writes ``step-N.ckpt`` and then deletes the previous one, so that the dir holds only the newest. It stops after
step CKPT_UNTIL (default: never, until SIGTERM, on which it exits 0 after the step it is in); CKPT_EXIT_CODE is its
exit code after the last step.
"""

import json
import os
import signal
import sys
import time

CONFIG = "/opt/ml/input/config/checkpointconfig.json"
stopping = []
signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))


def steps_in(path):
    found = {}
    for name in os.listdir(path):
        if name.startswith("step-") and name.endswith(".ckpt"):
            with open(os.path.join(path, name)) as f:
                found[name] = int(f.read())
    return found


def main():
    with open(CONFIG) as f:
        local = json.load(f)["LocalPath"]
    found = steps_in(local)
    start = max(found.values(), default=0)
    print(f"resumed from step {start}" if found else "fresh start", flush=True)
    with open("/opt/ml/model/resume.json", "w") as f:
        every = sorted(os.path.relpath(os.path.join(d, n), local) for d, _, names in os.walk(local) for n in names)
        json.dump({"local_path": local, "found": sorted(found), "files": every, "resumed_from": start}, f)
    until = int(os.environ.get("CKPT_UNTIL", "0")) or None
    step = start
    while not stopping and (until is None or step < until):
        time.sleep(float(os.environ.get("CKPT_STEP_S", "0.2")))
        step += 1
        with open(os.path.join(local, f"step-{step}.ckpt"), "w") as f:
            f.write(str(step))
        if step > 1 and os.path.exists(os.path.join(local, f"step-{step - 1}.ckpt")):
            os.remove(os.path.join(local, f"step-{step - 1}.ckpt"))
        print(f"step {step}", flush=True)
    sys.exit(int(os.environ.get("CKPT_EXIT_CODE", "0")))


main()
