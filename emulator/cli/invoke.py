"""``invoke``: send one request like sagemaker-runtime InvokeEndpoint, to a running or a one-shot endpoint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import errors
from emulator.cli import options
from emulator.config import EmulatorConfig
from emulator.constants import INVOCATION_TIMEOUT_S, MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers


def add_command(sub: SubParsers) -> None:
    """Register ``invoke``."""
    p = options.add_subcommand(
        sub,
        "invoke",
        help="call an endpoint (InvokeEndpoint)",
        description="Send one request like sagemaker-runtime InvokeEndpoint: to a running endpoint (by name or "
        "URL), or, with --image, to a one-shot endpoint started for this call. A 4xx/5xx from the container is a "
        f"ModelError (exit 1), a body over {MAX_PAYLOAD_BYTES // 2**20} MiB a ValidationError (exit 2).",
        examples="""examples:
  python -m emulator invoke my-endpoint --content-type text/csv --body '5.1,3.5,1.4,0.2'
  python -m emulator invoke http://127.0.0.1:49153 --content-type text/csv --body-file rows.csv
  python -m emulator invoke --image my-algo:latest --model-data model.tar.gz --content-type text/csv --body '1,2,3,4'
  python -m emulator invoke my-mme-endpoint --target-model iris/a.tar.gz --content-type text/csv --body '1,2,3,4'
  python -m emulator invoke --model-spec pipeline.yaml --content-type text/csv --body '1,2,3,4'
  python -m emulator invoke --model-spec direct.yaml --target-container-hostname second --body '1,2,3,4'
""",
    )
    p.add_argument("endpoint", nargs="?", help="endpoint name or http://127.0.0.1:PORT URL")
    options.add_model_flags(p)
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="request body (text)")
    body.add_argument("--body-file", metavar="FILE", help="request body from a file ('-' for stdin)")
    p.add_argument("--content-type", help="Content-Type")
    p.add_argument("--accept", help="Accept")
    p.add_argument("--custom-attributes", help="X-Amzn-SageMaker-Custom-Attributes")
    p.add_argument(
        "--target-model",
        metavar="KEY",
        help="TargetModel of a multi-model endpoint: a model .tar.gz relative to its ModelDataUrl (a.tar.gz)",
    )
    p.add_argument(
        "--target-container-hostname",
        metavar="NAME",
        help="TargetContainerHostname: the container of a Direct multi-container model (--model-spec) that answers",
    )
    p.add_argument("--output", metavar="FILE", help="write the response body here instead of stdout")
    p.add_argument(
        "--timeout",
        type=float,
        default=INVOCATION_TIMEOUT_S,
        metavar="SECONDS",
        help=f"invocation timeout ({INVOCATION_TIMEOUT_S:g} s)",
    )
    options.add_common(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Send the request and write the response body (stdout or --output)."""
    from emulator.errors import ModelError
    from emulator.serving import invoke_endpoint

    if not args.timeout > 0 or args.timeout == float("inf"):
        raise errors.InvalidSpec(f"--timeout {args.timeout:g}: give a number of seconds over 0")
    if args.body_file:
        data = sys.stdin.buffer.read() if args.body_file == "-" else _read(args.body_file)
    else:
        data = args.body.encode()
    opts: dict[str, Any] = {
        "content_type": args.content_type,
        "accept": args.accept,
        "custom_attributes": args.custom_attributes,
    }
    if args.target_model is not None:
        opts["target_model"] = args.target_model
    if args.target_container_hostname is not None:
        opts["target_container_hostname"] = args.target_container_hostname
    try:
        if args.endpoint:
            out = invoke_endpoint(args.endpoint, data, timeout_s=args.timeout, config=config, **opts)
        elif args.image or args.model_spec:
            args.quiet = True
            with options.endpoint_from_flags(args, config, invocation_timeout_s=args.timeout) as ep:
                out = ep.invoke(data, **opts)
        else:
            raise errors.InvalidSpec("name an endpoint (or URL), or pass --image to start a one-shot endpoint")
    except ModelError as exc:
        if args.json:
            print(json.dumps(exc.to_dict(), indent=2))
        raise
    payload = out["Body"] if isinstance(out["Body"], bytes) else out["Body"].read()
    for key in ("ContentType", "InvokedProductionVariant", "CustomAttributes"):
        if out.get(key):
            print(f"{key}: {out[key]}", file=sys.stderr)
    if args.output:
        Path(args.output).write_bytes(payload)
    else:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
    return errors.EXIT_OK


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise errors.InputNotFound(f"cannot read the body from {path!r}: {exc.strerror}; fix the path") from None
