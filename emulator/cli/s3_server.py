"""``s3-server``: a moto S3 server on 127.0.0.1 that several emulator commands can share."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers


def add_command(sub: SubParsers) -> None:
    """Register ``s3-server``."""
    p = sub.add_parser(
        "s3-server",
        help="run a moto S3 server on 127.0.0.1 until Ctrl-C",
        description="Run a moto S3 server on 127.0.0.1 so that several emulator commands share "
        "one S3 (pass --s3-endpoint http://127.0.0.1:PORT to them).",
    )
    p.add_argument("--port", type=int, default=4566)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Serve until Ctrl-C (which main turns into exit 130)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print(f"moto S3 server on http://127.0.0.1:{args.port} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()
