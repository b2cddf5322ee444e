"""``transform``: run a batch transform job (CreateTransformJob) and print DescribeTransformJob's outcome."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from emulator import errors
from emulator.cli import options
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers


def add_command(sub: SubParsers) -> None:
    """Register ``transform``."""
    p = options.add_subcommand(
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
    options.add_model_flags(p)
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
    options.add_common(p)
    p.set_defaults(handler=run)


def transform_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateTransformJob request a spec file plus short flags describe."""
    return options.request_from(args.spec, "CreateTransformJob", lambda req: _with_flags(req, args))


def _with_flags(req: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
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


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Run the transform job; 0 Completed, 130 Stopped, 1 otherwise."""
    from emulator.spec import load_spec
    from emulator.transform import ProgressPrinter, TransformJob

    models = None
    if args.model_spec:
        model = load_spec(args.model_spec)
        models = {model.get("ModelName", "model"): model}
    req = transform_request(args)
    if args.env:  # CreateTransformJob's Environment: the container's variables (it was accepted and dropped)
        req["Environment"] = {**(req.get("Environment") or {}), **dict(args.env)}
    if models and "ModelName" not in req:
        req["ModelName"] = next(iter(models))
    if not (args.image or models or req.get("ModelName")):
        raise errors.InvalidSpec("no model: pass --image IMAGE --model-data PATH, or --model-spec FILE")
    job = TransformJob(
        req,
        models=models,
        image=args.image,
        model_data=options.model_source(args.model_data),
        config=config,
        log_sink=options.log_sink(args),
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
        ("duration", options.duration(result.get("TransformStartTime"), result.get("TransformEndTime"))),
    ]
    rows += [(f"failed {f.input}", f.failure) for f in job.files if f.status != "Completed"]
    options.print_result(args, result, rows)
    status = result["TransformJobStatus"]
    if status == "Completed":
        return errors.EXIT_OK
    return errors.EXIT_INTERRUPTED if status == "Stopped" else errors.EXIT_JOB_FAILED
