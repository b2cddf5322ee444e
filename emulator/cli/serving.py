"""CLI subcommands for hosting: ``serve``, ``invoke`` and ``transform`` (registered by emulator.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import errors
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

_MODEL_HELP = "model.tar.gz, model directory, s3:// URI, or a training job's describe JSON (--json output)"


def _cli() -> Any:
    from emulator.cli import app as cli

    return cli


def _model_source(value: str | None) -> Any:
    """A model source; a JSON file with ModelArtifacts (``train --json`` output) means that job's model."""
    if value and value.endswith(".json") and Path(value).is_file():
        try:
            return json.loads(Path(value).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise errors.InvalidSpec(f"{value} is not valid JSON ({exc}); pass a model.tar.gz or a directory") from None
    return value


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", help="serving image (runs 'docker run IMAGE serve')")
    p.add_argument("--model-data", metavar="PATH_OR_S3", help=_MODEL_HELP)
    p.add_argument("--model-spec", metavar="FILE", help="a CreateModel request (YAML/JSON) instead of --image")
    _cli()._add_kv(p, "--env", "KEY=VALUE", "environment variable for the container")
    p.add_argument("--instance-type", help="ml.* type: CPU and memory limits (default: none)")


# -- serve ------------------------------------------------------------------------------------------------
def add_serve(sub: Sub) -> None:
    p = _cli()._add_subcommand(
        sub,
        "serve",
        help="run a real-time endpoint until Ctrl-C",
        description="Run a model behind a local endpoint, like CreateModel + CreateEndpoint: the image's 'serve' "
        "with the model extracted read-only at /opt/ml/model and port 8080 published on a free 127.0.0.1 port.",
        examples="""examples:
  python -m emulator serve --image my-algo:latest --model-data out/job/output/model.tar.gz
  python -m emulator serve --model-spec model.yaml --name my-endpoint --startup-timeout 600
  # in another shell:
  python -m emulator invoke my-endpoint --content-type text/csv --body '5.1,3.5,1.4,0.2'
""",
    )
    _add_model_flags(p)
    p.add_argument("--name", help="endpoint name (for 'invoke NAME')")
    p.add_argument(
        "--startup-timeout",
        type=float,
        metavar="SECONDS",
        help="how long /ping may take to answer 200 (platform default 240)",
    )
    _cli()._add_common(p)
    _cli()._HANDLERS["serve"] = _run_serve


def _endpoint(args: argparse.Namespace, config: EmulatorConfig, **kwargs: Any) -> Any:
    from emulator.serving import Endpoint
    from emulator.spec import load_spec

    common: dict[str, Any] = {"config": config, "log_sink": _cli()._log_sink(args), **kwargs}
    if args.instance_type:
        common["instance_type"] = args.instance_type
    if args.model_spec:
        overrides = {"environment": dict(args.env)} if args.env else {}
        return Endpoint.from_model(load_spec(args.model_spec), **overrides, **common)
    if not args.image:
        raise errors.InvalidSpec("no serving image: pass --image IMAGE (with --model-data) or --model-spec FILE")
    return Endpoint(args.image, model_data=_model_source(args.model_data), environment=dict(args.env), **common)


def _run_serve(args: argparse.Namespace, config: EmulatorConfig) -> int:
    ep = _endpoint(args, config, name=args.name, startup_timeout_s=args.startup_timeout)
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
            return errors.EXIT_OK
        print(
            f"endpoint {ep.name}: the container exited on its own with status {code}; last lines:\n{ep.logs_tail(20)}",
            file=sys.stderr,
        )
        return errors.EXIT_JOB_FAILED


# -- invoke -----------------------------------------------------------------------------------------------
def add_invoke(sub: Sub) -> None:
    p = _cli()._add_subcommand(
        sub,
        "invoke",
        help="call an endpoint (InvokeEndpoint)",
        description="Send one request like sagemaker-runtime InvokeEndpoint: to a running endpoint (by name or "
        "URL), or, with --image, to a one-shot endpoint started for this call. A 4xx/5xx from the container is a "
        "ModelError (exit 1), a body over 6 MiB a ValidationError (exit 2).",
        examples="""examples:
  python -m emulator invoke my-endpoint --content-type text/csv --body '5.1,3.5,1.4,0.2'
  python -m emulator invoke http://127.0.0.1:49153 --content-type text/csv --body-file rows.csv
  python -m emulator invoke --image my-algo:latest --model-data model.tar.gz --content-type text/csv --body '1,2,3,4'
""",
    )
    p.add_argument("endpoint", nargs="?", help="endpoint name or http://127.0.0.1:PORT URL")
    _add_model_flags(p)
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="request body (text)")
    body.add_argument("--body-file", metavar="FILE", help="request body from a file ('-' for stdin)")
    p.add_argument("--content-type", help="Content-Type")
    p.add_argument("--accept", help="Accept")
    p.add_argument("--custom-attributes", help="X-Amzn-SageMaker-Custom-Attributes")
    p.add_argument("--output", metavar="FILE", help="write the response body here instead of stdout")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="invocation timeout (60 s)")
    _cli()._add_common(p)
    _cli()._HANDLERS["invoke"] = _run_invoke


def _run_invoke(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from emulator.errors import ModelError
    from emulator.serving import invoke_endpoint

    if args.body_file:
        data = sys.stdin.buffer.read() if args.body_file == "-" else _read(args.body_file)
    else:
        data = args.body.encode()
    opts: dict[str, Any] = {
        "content_type": args.content_type,
        "accept": args.accept,
        "custom_attributes": args.custom_attributes,
    }
    try:
        if args.endpoint:
            out = invoke_endpoint(args.endpoint, data, timeout_s=args.timeout, config=config, **opts)
        elif args.image or args.model_spec:
            args.quiet = True
            with _endpoint(args, config, invocation_timeout_s=args.timeout) as ep:
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


# -- transform --------------------------------------------------------------------------------------------
def add_transform(sub: Sub) -> None:
    p = _cli()._add_subcommand(
        sub,
        "transform",
        help="run a batch transform job (CreateTransformJob)",
        description="Run a batch transform like CreateTransformJob: one <input>.out per input object, written only "
        "when the whole object succeeded; inputs are streamed, so memory stays flat for any input size.",
        examples="""examples:
  python -m emulator transform --image my-algo:latest --model-data model.tar.gz \\
      --input data/test --output out/predictions --content-type text/csv --split-type Line
  python -m emulator transform --spec transform.yaml --model-spec model.yaml
  python -m emulator transform --spec transform.yaml --image my-algo:latest --model-data model.tar.gz
""",
    )
    p.add_argument("--spec", metavar="FILE", help="CreateTransformJob request (YAML or JSON)")
    _add_model_flags(p)
    p.add_argument("--job-name", help="TransformJobName")
    p.add_argument("--input", metavar="PATH_OR_S3", help="TransformInput S3Uri: a file, a directory or s3:// prefix")
    p.add_argument("--output", metavar="DIR_OR_S3", help="TransformOutput.S3OutputPath")
    p.add_argument("--content-type", help="TransformInput.ContentType")
    p.add_argument("--accept", help="TransformOutput.Accept")
    p.add_argument("--split-type", choices=["None", "Line", "RecordIO", "TFRecord"], help="TransformInput.SplitType")
    p.add_argument("--compression", choices=["None", "Gzip"], help="TransformInput.CompressionType")
    p.add_argument("--strategy", choices=["SingleRecord", "MultiRecord"], help="BatchStrategy")
    p.add_argument("--max-payload", type=int, metavar="MB", help="MaxPayloadInMB (0: no limit, sent chunked)")
    p.add_argument("--max-concurrent", type=int, metavar="N", help="MaxConcurrentTransforms")
    p.add_argument("--assemble-with", choices=["None", "Line"], help="TransformOutput.AssembleWith")
    _cli()._add_common(p)
    _cli()._HANDLERS["transform"] = _run_transform


def transform_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateTransformJob request a spec file plus short flags describe."""
    from emulator.spec import load_spec

    req: dict[str, Any] = load_spec(args.spec) if args.spec else {}
    tin = req.setdefault("TransformInput", {})
    tout = req.setdefault("TransformOutput", {})
    if args.input:
        tin["DataSource"] = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": args.input}}
    for flag, target, key in (
        (args.content_type, tin, "ContentType"),
        (args.split_type, tin, "SplitType"),
        (args.compression, tin, "CompressionType"),
        (args.output, tout, "S3OutputPath"),
        (args.accept, tout, "Accept"),
        (args.assemble_with, tout, "AssembleWith"),
        (args.strategy, req, "BatchStrategy"),
        (args.max_payload, req, "MaxPayloadInMB"),
        (args.max_concurrent, req, "MaxConcurrentTransforms"),
        (args.job_name, req, "TransformJobName"),
    ):
        if flag is not None:
            target[key] = flag
    if not tin.get("DataSource"):
        raise errors.InvalidSpec("no input: pass --input PATH_OR_S3 or set TransformInput.DataSource in --spec")
    if not tout.get("S3OutputPath"):
        raise errors.InvalidSpec("no output: pass --output DIR_OR_S3 or set TransformOutput.S3OutputPath in --spec")
    return req


def _run_transform(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from emulator.spec import load_spec
    from emulator.transform import ProgressPrinter, TransformJob

    models = None
    if args.model_spec:
        model = load_spec(args.model_spec)
        models = {model.get("ModelName", "model"): model}
    req = transform_request(args)
    if models and "ModelName" not in req:
        req["ModelName"] = next(iter(models))
    if not (args.image or models or req.get("ModelName")):
        raise errors.InvalidSpec("no model: pass --image IMAGE --model-data PATH, or --model-spec FILE")
    job = TransformJob(
        req,
        models=models,
        image=args.image,
        model_data=_model_source(args.model_data),
        config=config,
        log_sink=_cli()._log_sink(args),
        progress=None if args.quiet else ProgressPrinter(),
    )
    print(f"transform job {job.name}: starting", file=sys.stderr)
    result = job.run()
    done = sum(1 for f in job.files if f.status == "Completed")
    rows: list[tuple[str, Any]] = [
        ("status", result["TransformJobStatus"]),
        ("reason", result.get("FailureReason")),
        (
            "settings",
            f"MaxConcurrentTransforms={result.get('MaxConcurrentTransforms')} "
            f"MaxPayloadInMB={result.get('MaxPayloadInMB')} BatchStrategy={result.get('BatchStrategy')}",
        ),
        ("objects", f"{done}/{len(job.files)} written to {result['TransformOutput']['S3OutputPath']}"),
        ("duration", _cli()._duration(result.get("TransformStartTime"), result.get("TransformEndTime"))),
    ]
    rows += [(f"failed {f.input}", f.failure) for f in job.files if f.status != "Completed"]
    _cli()._print_result(args, result, rows)
    status = result["TransformJobStatus"]
    if status == "Completed":
        return errors.EXIT_OK
    return errors.EXIT_INTERRUPTED if status == "Stopped" else errors.EXIT_JOB_FAILED
