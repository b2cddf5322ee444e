#!/usr/bin/env python3
"""A training image for the input modes: records, per channel, what it read into /opt/ml/model/seen.json.

Pipe channels: epochs 0..PIPE_EPOCHS-1 (default 2), each FIFO opened (retried until it exists, as the platform
advises), read to EOF; recorded: whether it was a FIFO, whether epoch N+1's FIFO existed before epoch N was
opened, and the bytes read (hex). PIPE_CLOSE_EARLY=1: epoch 0 is closed after its first byte. File and FastFile
channels: the files (relative path -> hex) and whether writing into the channel dir failed with EROFS.
"""

import errno
import json
import os
import stat
import sys
import time

DATA = "/opt/ml/input/data"


def wait_for(path: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"{path} never appeared")
        time.sleep(0.05)


def read_pipe(channel: str, epochs: int, close_early: bool) -> dict:
    seen: dict = {"epochs": [], "next_existed_before_open": []}
    for epoch in range(epochs):
        path = f"{DATA}/{channel}_{epoch}"
        wait_for(path)
        seen["next_existed_before_open"].append(os.path.exists(f"{DATA}/{channel}_{epoch + 1}"))
        is_fifo = stat.S_ISFIFO(os.stat(path).st_mode)
        with open(path, "rb") as f:
            data = f.read(1) if close_early and epoch == 0 else f.read()
        seen["epochs"].append({"fifo": is_fifo, "hex": data.hex()})
    return seen


def read_dir(channel: str) -> dict:
    root = f"{DATA}/{channel}"
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = f.read().hex()
    try:
        with open(f"{root}/.written", "w") as f:
            f.write("x")
        write = "ok"
    except OSError as exc:
        write = "EROFS" if exc.errno == errno.EROFS else str(exc)
    return {"files": files, "write": write}


def main() -> None:
    with open("/opt/ml/input/config/inputdataconfig.json") as f:
        channels = json.load(f)
    epochs = int(os.environ.get("PIPE_EPOCHS", "2"))
    close_early = os.environ.get("PIPE_CLOSE_EARLY") == "1"
    seen = {"inputdataconfig": channels, "uid": os.getuid()}
    for name, entry in channels.items():
        if entry["TrainingInputMode"] == "Pipe":
            seen[name] = read_pipe(name, epochs, close_early)
        else:
            seen[name] = read_dir(name)
    with open("/opt/ml/model/seen.json", "w") as f:
        json.dump(seen, f)
    print("pipe_reader done")


if __name__ == "__main__":
    main()
