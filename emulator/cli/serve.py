"""``serve``: run a model behind a local real-time endpoint until Ctrl-C (CreateModel + CreateEndpoint)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from emulator import errors
from emulator.cli import options
from emulator.config import EmulatorConfig
from emulator.constants import MODEL_DIR, PING_PATH, SERVING_PORT, STARTUP_TIMEOUT_S

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers


def add_command(sub: SubParsers) -> None:
    """Register ``serve``."""
    p = options.add_subcommand(
        sub,
        "serve",
        help="run a real-time endpoint until Ctrl-C",
        description="Run a model behind a local endpoint, like CreateModel + CreateEndpoint: the image's 'serve' "
        f"with the model extracted read-only at {MODEL_DIR} and port {SERVING_PORT} published on a free 127.0.0.1 "
        "port.",
        examples="""examples:
  python -m emulator serve --image my-algo:latest --model-data out/job/output/model.tar.gz
  python -m emulator serve --model-spec model.yaml --name my-endpoint --startup-timeout 600
  # a multi-model endpoint: model.yaml says PrimaryContainer.Mode: MultiModel, ModelDataUrl: a dir/prefix of .tar.gz
  python -m emulator serve --model-spec mme.yaml --name my-mme
  # in another shell:
  python -m emulator invoke my-endpoint --content-type text/csv --body '5.1,3.5,1.4,0.2'
  python -m emulator invoke my-mme --target-model iris-a.tar.gz --content-type text/csv --body '5.1,3.5,1.4,0.2'
""",
    )
    options.add_model_flags(p)
    p.add_argument("--name", help="endpoint name (for 'invoke NAME')")
    p.add_argument(
        "--startup-timeout",
        type=float,
        metavar="SECONDS",
        help=f"how long {PING_PATH} may take to answer 200 (platform default {STARTUP_TIMEOUT_S:g})",
    )
    options.add_common(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Serve until Ctrl-C (exit 130, once the endpoint is removed) or until the container exits on its own (exit 1)."""
    if args.startup_timeout is not None:
        options.non_negative("--startup-timeout", args.startup_timeout)
    ep = options.endpoint_from_flags(
        args, config, name=args.name, startup_timeout_s=args.startup_timeout, unique_name=True
    )
    print(f"endpoint {ep.name}: starting {ep.image}", file=sys.stderr)
    with ep:
        print(
            f"endpoint {ep.name} InService at {ep.url} (ready in {ep.ready_after_s:.2f} s); Ctrl-C to stop",
            file=sys.stderr,
        )
        print(json.dumps({"EndpointName": ep.name, "Url": ep.url}), flush=True)
        try:
            code = ep.wait()
        except KeyboardInterrupt:
            print(
                f"endpoint {ep.name}: stopping (SIGTERM, then SIGKILL after {config.serving_stop_grace_s:g} s)",
                file=sys.stderr,
            )
            # Ctrl-C is how a served endpoint ends: the same code as an interrupted job (or start-up), once removed.
            return errors.EXIT_INTERRUPTED
        print(
            f"endpoint {ep.name}: the container exited on its own with status {code}; last lines:\n"
            + ep.failure_tail(20),
            file=sys.stderr,
        )
        return errors.EXIT_JOB_FAILED
