"""``train``: run a training job (CreateTrainingJob) and print DescribeTrainingJob's outcome."""

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
    """Register ``train``."""
    p = options.add_subcommand(
        sub,
        "train",
        help="run a training job (CreateTrainingJob)",
        description="Run a training job like SageMaker's CreateTrainingJob and print DescribeTrainingJob's outcome.",
        examples="""examples:
  python -m emulator train --image my-algo:latest --channel train=data/train --hp max_depth=3 --output out
  python -m emulator train --spec job.yaml            # a CreateTrainingJob request as YAML or JSON
  python -m emulator train --spec job.yaml --hp epochs=2 --max-runtime 600   # flags override the spec
  python -m emulator train --image my-algo:latest --channel train=data --input-mode Pipe   # FIFOs train_0, ...

Channels and the output may be local paths or s3:// URIs. Hyperparameters reach the container as
strings in /opt/ml/input/config/hyperparameters.json, exactly as on SageMaker.
""",
    )
    p.add_argument("--spec", metavar="FILE", help="CreateTrainingJob request (YAML or JSON)")
    p.add_argument("--image", help="training image (AlgorithmSpecification.TrainingImage)")
    p.add_argument("--job-name", help="TrainingJobName (default: <image>-<timestamp>)")
    options.add_kv(p, "--channel", "NAME=PATH", "input channel from a local path or s3:// URI (repeatable)")
    options.add_kv(p, "--hp", "KEY=VALUE", "hyperparameter")
    options.add_kv(p, "--env", "KEY=VALUE", "environment variable")
    options.add_kv(p, "--metric", "NAME=REGEX", "metric definition: first group of REGEX in the logs")
    p.add_argument("--output", metavar="DIR_OR_S3", help="OutputDataConfig.S3OutputPath (default: ./output)")
    p.add_argument(
        "--input-mode",
        choices=("File", "FastFile", "Pipe"),
        help="AlgorithmSpecification.TrainingInputMode (default File; a --spec channel's InputMode overrides it)",
    )
    options.add_resource_flags(p, "ResourceConfig")
    options.add_stop_grace(p)
    options.add_common(p)
    p.set_defaults(handler=run)


def training_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateTrainingJob request that a spec file plus short flags describe."""
    return options.request_from(args.spec, "CreateTrainingJob", lambda req: _with_flags(req, args))


def _with_flags(req: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    algo = req.setdefault("AlgorithmSpecification", {})
    if args.image:
        algo["TrainingImage"] = args.image
    if args.job_name:
        req["TrainingJobName"] = args.job_name
    if args.input_mode:
        algo["TrainingInputMode"] = args.input_mode
    if args.hp:
        req.setdefault("HyperParameters", {}).update(dict(args.hp))
    if args.env:
        req.setdefault("Environment", {}).update(dict(args.env))
    if args.metric:
        algo["MetricDefinitions"] = [
            *algo.get("MetricDefinitions", []),
            *({"Name": n, "Regex": r} for n, r in args.metric),
        ]
    spec_channels = req.get("InputDataConfig", [])
    if not isinstance(spec_channels, list) or not all(isinstance(c, dict) for c in spec_channels):
        raise errors.InvalidSpec("InputDataConfig: must be a list of channels (mappings); fix --spec")
    # A spec channel without a name is kept as it is: validation names the missing ChannelName.
    channels: dict[Any, dict[str, Any]] = {c.get("ChannelName", id(c)): c for c in spec_channels}
    given = [name for name, _ in args.channel]
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise errors.InvalidSpec(f"--channel {twice[0]}= is given more than once; give each channel name once")
    for name, location in args.channel:
        channels[name] = {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": location,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    if channels:
        req["InputDataConfig"] = list(channels.values())
    if args.output:
        req.setdefault("OutputDataConfig", {})["S3OutputPath"] = args.output
    if args.instance_type:
        req.setdefault("ResourceConfig", {})["InstanceType"] = args.instance_type
    if args.instance_count is not None:
        req.setdefault("ResourceConfig", {})["InstanceCount"] = args.instance_count
    if args.max_runtime is not None:
        req.setdefault("StoppingCondition", {})["MaxRuntimeInSeconds"] = args.max_runtime
    if args.network_isolation:
        req["EnableNetworkIsolation"] = True
    if not algo.get("TrainingImage"):
        raise errors.InvalidSpec(
            "no training image: pass --image IMAGE or set AlgorithmSpecification.TrainingImage in --spec"
        )
    return req


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Run the training job; 0 when it Completed, 1 otherwise."""
    from emulator.training.defaults import validated

    config = options.with_stop_grace(args, config)
    request = training_request(args)
    validated(request)  # a bad request is refused before the job kind, the runner and docker-py are imported

    from emulator.training import TrainingJob

    job = TrainingJob(request, config=config, log_sink=options.log_sink(args))
    print(f"training job {job.name}: starting on {_cluster(job.request['ResourceConfig'])}", file=sys.stderr)
    result = job.run()
    options.print_result(
        args,
        result,
        [
            ("status", f"{result['TrainingJobStatus']} ({result['SecondaryStatus']})"),
            ("reason", result.get("FailureReason")),
            ("model", result["ModelArtifacts"]["S3ModelArtifacts"]),
            ("metrics", ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in result.get("FinalMetricDataList", []))),
            ("duration", options.duration(result.get("TrainingStartTime"), result.get("TrainingEndTime"))),
        ],
    )
    return errors.EXIT_OK if result["TrainingJobStatus"] == "Completed" else errors.EXIT_JOB_FAILED


def _cluster(resources: dict[str, Any]) -> str:
    """``2 x ml.m5.large``, or for a heterogeneous cluster ``3 hosts (data: 2 x ml.c5.xlarge, dnn: 1 x ...)``."""
    groups = resources.get("InstanceGroups")
    if not groups:
        return f"{resources['InstanceCount']} x {resources['InstanceType']}"
    each = ", ".join(f"{g['InstanceGroupName']}: {g['InstanceCount']} x {g['InstanceType']}" for g in groups)
    return f"{sum(int(g['InstanceCount']) for g in groups)} hosts ({each})"
