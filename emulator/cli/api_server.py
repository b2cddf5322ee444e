"""``api-server``: SageMaker's API on 127.0.0.1, for the SageMaker Python SDK and boto3 unchanged."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

from emulator import errors
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers

DEFAULT_STATE_DIR = "~/.sagemaker-emulator"


def add_command(sub: SubParsers) -> None:
    """Register ``api-server``."""
    from emulator.api import DEFAULT_PORT

    p = sub.add_parser(
        "api-server",
        help="serve SageMaker's API (and S3, STS, CloudWatch Logs) on 127.0.0.1 for the SDK and boto3",
        description="Serve SageMaker's API on 127.0.0.1: training, processing and transform jobs, models, "
        "endpoint configs, endpoints and InvokeEndpoint, pipelines and their executions, tags; S3, STS and "
        "CloudWatch Logs from moto in the same process. Jobs run on the local Docker engine in the "
        "background. Export the variables it prints and run your SageMaker SDK or boto3 code unchanged. "
        "Records live in STATE_DIR/state.sqlite and survive a restart; endpoints that were InService come "
        "back. The console (jobs, endpoints, pipelines, metrics, logs, the contract report) is at "
        "http://127.0.0.1:PORT/ in a browser. Ctrl-C stops everything and removes every container.",
        epilog="example:\n  python -m emulator api-server --port 8765 &\n"
        "  export AWS_ENDPOINT_URL=http://127.0.0.1:8765 AWS_DEFAULT_REGION=us-east-1 \\\n"
        "         AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator \\\n"
        "         SAGEMAKER_USER_CONFIG_OVERRIDE=~/.sagemaker-emulator/sdk-config.yaml\n"
        "  python my_sagemaker_script.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any)")
    p.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=f"where records and the SDK config file live (default {DEFAULT_STATE_DIR})",
    )
    p.add_argument(
        "--contract-report",
        metavar="FILE",
        help="the contract suite's JUnit XML (pytest --junitxml=FILE) the console shows, read again at each view",
    )
    from emulator.cli.options import add_allow_cpu_for_gpu

    add_allow_cpu_for_gpu(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Serve until Ctrl-C or SIGTERM (which main turns into exit 130), then stop everything."""
    from emulator.api.server import ApiServer

    if not 0 <= args.port <= 65535:
        raise errors.InvalidSpec(f"--port {args.port}: give a port number from 0 to 65535")
    try:
        server = ApiServer(args.port, Path(args.state_dir).expanduser(), config, contract_report=args.contract_report)
    except OSError as exc:
        raise errors.EmulatorError(
            f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); pick another --port"
        ) from None
    with server:
        print(f"SageMaker API on {server.url} (Ctrl-C to stop). Point AWS clients at it:", flush=True)
        for key, value in server.environment().items():
            print(f"export {key}={shlex.quote(value)}", flush=True)
        print(f"Console: {server.url}/ (open it in a browser)", flush=True)
        while True:
            time.sleep(3600)
    return errors.EXIT_OK
