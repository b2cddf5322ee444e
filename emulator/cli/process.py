"""``process``: run a processing job (CreateProcessingJob) and print DescribeProcessingJob's outcome."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

from emulator import errors
from emulator.cli import options
from emulator.config import EmulatorConfig
from emulator.constants import OPT_ML, PROCESSING_DIR

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers

_PROCESSING_DIR = PROCESSING_DIR + "/"


def add_command(sub: SubParsers) -> None:
    """Register ``process``."""
    p = options.add_subcommand(
        sub,
        "process",
        help="run a processing job (CreateProcessingJob)",
        description="Run a processing job like SageMaker's CreateProcessingJob and print "
        "DescribeProcessingJob's outcome.",
        examples="""examples:
  python -m emulator process --image my-algo:latest --entrypoint processing \\
      --input raw=data/iris.csv:/opt/ml/processing/input/raw \\
      --output train=/opt/ml/processing/output/train:out/train
  python -m emulator process --spec job.yaml          # a CreateProcessingJob request as YAML or JSON
  python -m emulator process --spec job.yaml --arg=--seed --arg 3 --max-runtime 600

The image runs with no extra argument, as on SageMaker: --entrypoint replaces its ENTRYPOINT (and drops
its CMD), --arg gives the arguments. Inputs and outputs may be local paths or s3:// URIs; their
LocalPath must start with /opt/ml/processing/ (default: /opt/ml/processing/input/NAME and
/opt/ml/processing/output/NAME).
""",
    )
    p.add_argument("--spec", metavar="FILE", help="CreateProcessingJob request (YAML or JSON)")
    p.add_argument("--image", help="AppSpecification.ImageUri")
    p.add_argument("--job-name", help="ProcessingJobName (default: <image>-<timestamp>)")
    p.add_argument(
        "--entrypoint",
        action="append",
        default=[],
        metavar="ARG",
        help="ContainerEntrypoint: repeat for each item, or one shell-like string ('python3 -u run.py')",
    )
    p.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="ARG",
        help="ContainerArguments item (repeatable; write --arg=--flag for values that start with -)",
    )
    options.add_kv(
        p,
        "--input",
        "NAME=SOURCE[:LOCALPATH]",
        "ProcessingInput from a local path or s3:// URI, mounted at LOCALPATH (repeatable)",
    )
    options.add_kv(
        p,
        "--output",
        "NAME=[LOCALPATH:]DESTINATION",
        "ProcessingOutput: LOCALPATH uploaded to a local dir or s3:// URI when the job ends (repeatable)",
    )
    options.add_kv(p, "--env", "KEY=VALUE", "Environment")
    options.add_resource_flags(p, "ClusterConfig")
    options.add_stop_grace(p)
    options.add_common(p)
    p.set_defaults(handler=run)


def processing_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateProcessingJob request that a spec file plus short flags describe."""
    return options.request_from(args.spec, "CreateProcessingJob", lambda req: _with_flags(req, args))


def _with_flags(req: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    app = req.setdefault("AppSpecification", {})
    if args.image:
        app["ImageUri"] = args.image
    if args.entrypoint:
        app["ContainerEntrypoint"] = _entrypoint(args.entrypoint)
    if args.arg:
        app["ContainerArguments"] = list(args.arg)
    if args.job_name:
        req["ProcessingJobName"] = args.job_name
    if args.env:
        req.setdefault("Environment", {}).update(dict(args.env))
    _merge(req.setdefault("ProcessingInputs", []), "InputName", [_input(n, v) for n, v in args.input])
    outputs = req.setdefault("ProcessingOutputConfig", {}).setdefault("Outputs", [])
    _merge(outputs, "OutputName", [_output(n, v) for n, v in args.output])
    if not req["ProcessingInputs"]:
        del req["ProcessingInputs"]
    if not outputs:
        del req["ProcessingOutputConfig"]
    cluster = req.setdefault("ProcessingResources", {}).setdefault("ClusterConfig", {})
    if args.instance_type:
        cluster["InstanceType"] = args.instance_type
    if args.instance_count is not None:
        cluster["InstanceCount"] = args.instance_count
    if args.max_runtime is not None:
        req.setdefault("StoppingCondition", {})["MaxRuntimeInSeconds"] = args.max_runtime
    if args.network_isolation:
        req.setdefault("NetworkConfig", {})["EnableNetworkIsolation"] = True
    if not app.get("ImageUri"):
        raise errors.InvalidSpec("no image: pass --image IMAGE or set AppSpecification.ImageUri in --spec")
    return req


def _entrypoint(values: list[str]) -> list[str]:
    # One value with spaces is a shell-like command line; several values are the list itself.
    if len(values) != 1:
        return list(values)
    try:
        return shlex.split(values[0])
    except ValueError as exc:  # e.g. an unclosed quote
        raise errors.InvalidSpec(
            f"--entrypoint {values[0]!r}: {exc}; quote it as a shell would, or repeat --entrypoint for each item"
        ) from None


def _merge(items: list[dict[str, Any]], key: str, new: list[dict[str, Any]]) -> None:
    for item in new:
        items[:] = [i for i in items if i.get(key) != item[key]] + [item]


def _input(name: str, value: str) -> dict[str, Any]:
    source, sep, local = value.rpartition(":" + _PROCESSING_DIR)
    source, local = (source, _PROCESSING_DIR + local) if sep else (value, f"{_PROCESSING_DIR}input/{name}")
    if not source:
        raise errors.InvalidSpec(f"--input {name}={value}: no source; write NAME=PATH_OR_S3_URI[:LOCALPATH]")
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": source,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _output(name: str, value: str) -> dict[str, Any]:
    if value.startswith(OPT_ML + "/"):
        local, sep, destination = value.partition(":")
        if not sep or not destination:
            raise errors.InvalidSpec(f"--output {name}={value}: no destination; write NAME=LOCALPATH:PATH_OR_S3_URI")
    else:
        local, destination = f"{_PROCESSING_DIR}output/{name}", value
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": destination, "LocalPath": local, "S3UploadMode": "EndOfJob"},
    }


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Run the processing job; 0 when it Completed, 1 otherwise."""
    from emulator.processing import ProcessingJob

    config = options.with_stop_grace(args, config)
    job = ProcessingJob(processing_request(args), config=config, log_sink=options.log_sink(args))
    cluster = job.request["ProcessingResources"]["ClusterConfig"]
    options.echo(
        f"processing job {job.name}: starting on {cluster['InstanceCount']} x {cluster['InstanceType']}", sys.stderr
    )
    result = job.run()
    outputs = result.get("ProcessingOutputConfig", {}).get("Outputs", [])
    options.print_result(
        args,
        result,
        [
            ("status", result["ProcessingJobStatus"]),
            ("exit message", (result.get("ExitMessage") or "").strip()),
            ("reason", result.get("FailureReason")),
            *((f"output {o['OutputName']}", o["S3Output"]["S3Uri"]) for o in outputs if o.get("S3Output")),
            ("duration", options.duration(result.get("ProcessingStartTime"), result.get("ProcessingEndTime"))),
        ],
    )
    # Ctrl-C does not get here: the job raises Interrupted (exit 130) once it has cleaned up.
    return errors.EXIT_OK if result["ProcessingJobStatus"] == "Completed" else errors.EXIT_JOB_FAILED
