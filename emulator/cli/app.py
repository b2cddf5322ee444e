"""``python -m emulator`` / ``sagemaker-emulator``: a thin shell over the library.

Each subcommand parses flags, builds the SageMaker request and an EmulatorConfig, makes one library call,
prints the result and returns an exit code: 0 success, 1 the job failed or was stopped, 2 bad input,
3 no Docker engine, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from emulator import errors
from emulator.config import EmulatorConfig

logger = logging.getLogger("emulator")

EPILOG = """\
exit codes: 0 success, 1 job failed or stopped, 2 bad input (spec, flags, paths, image),
            3 no Docker engine, 130 interrupted (everything started was removed)
environment: SM_EMULATOR_KEEP_CONTAINERS=1, SM_EMULATOR_WORK_DIR, SM_EMULATOR_S3_ENDPOINT_URL
             (or AWS_ENDPOINT_URL_S3), DOCKER_HOST
docs: README.md and docs/ in the project
"""

Handler = Callable[[argparse.Namespace, EmulatorConfig], int]
_HANDLERS: dict[str, Handler] = {}


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def _add_kv(p: argparse.ArgumentParser, flag: str, metavar: str, help: str) -> None:
    """A repeatable ``flag NAME=VALUE``; its value is the list of (name, value) pairs given."""
    p.add_argument(flag, action="append", type=_kv, default=[], metavar=metavar, help=help)


def _add_subcommand(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, *, help: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help shows ``examples`` as written, then the exit codes and environment (EPILOG)."""
    return sub.add_parser(
        name,
        help=help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=description,
        epilog=examples + EPILOG,
    )


def _add_resource_flags(p: argparse.ArgumentParser, resources: str) -> None:
    """The instance and limit flags of a training or processing job; ``resources`` names the request's block."""
    p.add_argument("--instance-type", help=f"{resources}.InstanceType (default ml.m5.large)")
    p.add_argument("--instance-count", type=int, help=f"{resources}.InstanceCount (hosts algo-1..N)")
    p.add_argument("--max-runtime", type=int, metavar="SECONDS", help="StoppingCondition.MaxRuntimeInSeconds")
    p.add_argument("--network-isolation", action="store_true", default=None, help="EnableNetworkIsolation")


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("emulator options")
    g.add_argument(
        "--keep-containers",
        action="store_true",
        default=None,
        help="leave containers behind after the job, for debugging (remove with 'cleanup')",
    )
    g.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3 endpoint for s3:// locations (default: a moto server started on 127.0.0.1)",
    )
    g.add_argument("--json", action="store_true", help="print the Describe* result as JSON on stdout")
    g.add_argument("-q", "--quiet", action="store_true", help="do not stream container logs")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


# -- train ------------------------------------------------------------------------------------------------
def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _add_subcommand(
        sub,
        "train",
        help="run a training job (CreateTrainingJob)",
        description="Run a training job like SageMaker's CreateTrainingJob and print DescribeTrainingJob's outcome.",
        examples="""examples:
  python -m emulator train --image my-algo:latest --channel train=data/train --hp max_depth=3 --output out
  python -m emulator train --spec job.yaml            # a CreateTrainingJob request as YAML or JSON
  python -m emulator train --spec job.yaml --hp epochs=2 --max-runtime 600   # flags override the spec

Channels and the output may be local paths or s3:// URIs. Hyperparameters reach the container as
strings in /opt/ml/input/config/hyperparameters.json, exactly as on SageMaker.
""",
    )
    p.add_argument("--spec", metavar="FILE", help="CreateTrainingJob request (YAML or JSON)")
    p.add_argument("--image", help="training image (AlgorithmSpecification.TrainingImage)")
    p.add_argument("--job-name", help="TrainingJobName (default: <image>-<timestamp>)")
    _add_kv(p, "--channel", "NAME=PATH", "input channel from a local path or s3:// URI (repeatable)")
    _add_kv(p, "--hp", "KEY=VALUE", "hyperparameter")
    _add_kv(p, "--env", "KEY=VALUE", "environment variable")
    _add_kv(p, "--metric", "NAME=REGEX", "metric definition: first group of REGEX in the logs")
    p.add_argument("--output", metavar="DIR_OR_S3", help="OutputDataConfig.S3OutputPath (default: ./output)")
    _add_resource_flags(p, "ResourceConfig")
    p.add_argument(
        "--stop-grace",
        type=float,
        metavar="SECONDS",
        help="seconds between SIGTERM and SIGKILL when stopping (platform: 120)",
    )
    _add_common(p)
    _HANDLERS["train"] = _run_train


def training_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateTrainingJob request that a spec file plus short flags describe."""
    from emulator.spec import load_spec

    req: dict[str, Any] = load_spec(args.spec) if args.spec else {}
    algo = req.setdefault("AlgorithmSpecification", {})
    if args.image:
        algo["TrainingImage"] = args.image
    if args.job_name:
        req["TrainingJobName"] = args.job_name
    if args.hp:
        req.setdefault("HyperParameters", {}).update(dict(args.hp))
    if args.env:
        req.setdefault("Environment", {}).update(dict(args.env))
    if args.metric:
        algo["MetricDefinitions"] = [
            *algo.get("MetricDefinitions", []),
            *({"Name": n, "Regex": r} for n, r in args.metric),
        ]
    channels = {c["ChannelName"]: c for c in req.get("InputDataConfig", [])}
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


def _run_train(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from emulator.training import TrainingJob

    if args.stop_grace is not None:
        config = config.with_(training_stop_grace_s=args.stop_grace)
    job = TrainingJob(training_request(args), config=config, log_sink=_log_sink(args))
    print(
        f"training job {job.name}: starting on {job.request['ResourceConfig']['InstanceCount']} x "
        f"{job.request['ResourceConfig']['InstanceType']}",
        file=sys.stderr,
    )
    result = job.run()
    _print_result(
        args,
        result,
        [
            ("status", f"{result['TrainingJobStatus']} ({result['SecondaryStatus']})"),
            ("reason", result.get("FailureReason")),
            ("model", result["ModelArtifacts"]["S3ModelArtifacts"]),
            ("metrics", ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in result.get("FinalMetricDataList", []))),
            ("duration", _duration(result.get("TrainingStartTime"), result.get("TrainingEndTime"))),
        ],
    )
    return errors.EXIT_OK if result["TrainingJobStatus"] == "Completed" else errors.EXIT_JOB_FAILED


# -- cleanup ----------------------------------------------------------------------------------------------
def _add_cleanup(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cleanup",
        help="remove containers and networks the emulator left behind",
        description="Remove containers and networks labelled sagemaker-emulator.managed=true, and "
        "nothing else. Resources of emulator processes still running are kept unless "
        "--all is given.",
    )
    p.add_argument("--all", action="store_true", help="also remove resources of emulator processes still running")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")
    _HANDLERS["cleanup"] = _run_cleanup


def _run_cleanup(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from emulator.runtime.sweep import sweep

    removed = sweep(config, include_running_sessions=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for kind, ident, name in removed:
        print(f"{verb} {kind} {ident[:12]} {name}")
    print(f"{verb} {len(removed)} resource(s)")
    return errors.EXIT_OK


# -- s3-server --------------------------------------------------------------------------------------------
def _add_s3_server(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "s3-server",
        help="run a moto S3 server on 127.0.0.1 until Ctrl-C",
        description="Run a moto S3 server on 127.0.0.1 so that several emulator commands share "
        "one S3 (pass --s3-endpoint http://127.0.0.1:PORT to them).",
    )
    p.add_argument("--port", type=int, default=4566)
    _HANDLERS["s3-server"] = _run_s3_server


def _run_s3_server(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print(f"moto S3 server on http://127.0.0.1:{args.port} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()


# -- init-contract ----------------------------------------------------------------------------------------
def _add_init_contract(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init-contract",
        help="write a commented starter config for the contract suite (pytest --image)",
        description="Write a commented starter contract config (YAML) for the contract suite: "
        "'pytest --image IMAGE --contract-config FILE'. Edit it to describe your image's sample data, "
        "requests and capabilities (docs/contract-suite.md).",
    )
    p.add_argument(
        "path", nargs="?", default="contract.yaml", help="where to write it (default: contract.yaml; '-' for stdout)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    _HANDLERS["init-contract"] = _run_init_contract


def _run_init_contract(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from pathlib import Path

    from contract_tests.config import starter_yaml

    text = starter_yaml()
    if args.path == "-":
        print(text, end="")
        return errors.EXIT_OK
    path = Path(args.path)
    if path.exists() and not args.force:
        raise errors.InvalidSpec(f"{path} exists already; pass --force to overwrite it, or name another file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}; edit it, then run: pytest --image IMAGE --contract-config {path}")
    return errors.EXIT_OK


# -- plumbing ---------------------------------------------------------------------------------------------
def _log_sink(args: argparse.Namespace) -> Callable[[str, str], None] | None:
    if getattr(args, "quiet", False):
        return lambda host, line: None

    def sink(host: str, line: str) -> None:
        print(f"{host} | {line}", flush=True)

    return sink


def _duration(start: Any, end: Any) -> str:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return f"{(end - start).total_seconds():.1f} s"
    return ""


def _print_result(args: argparse.Namespace, result: dict[str, Any], rows: list[tuple[str, Any]]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=str))
        return
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        if value:
            print(f"{key.ljust(width)}  {value}")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (exposed for docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A local SageMaker for bring-your-own-container images: training jobs, endpoints, batch "
        "transform, processing jobs and pipelines on your Docker engine, with SageMaker's own request "
        "and response shapes.",
        epilog=EPILOG + "\nrun 'python -m emulator COMMAND --help' for a command's flags and examples",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _ADDERS:
        add(sub)
    return parser


_ADDERS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_train,
    _add_cleanup,
    _add_s3_server,
    _add_init_contract,
]


def _register_job_commands() -> None:
    from emulator.cli import jobs as _cli_jobs
    from emulator.cli import serving as _cli_serving

    _ADDERS[1:1] = [
        _cli_serving.add_serve,
        _cli_serving.add_invoke,
        _cli_serving.add_transform,
        _cli_jobs.add_process,
        _cli_jobs.add_pipeline,
    ]


_register_job_commands()


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    for noisy in ("urllib3", "docker", "botocore", "boto3", "s3transfer", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        config = EmulatorConfig.from_env(
            keep_containers=getattr(args, "keep_containers", None), s3_endpoint_url=getattr(args, "s3_endpoint", None)
        )
        return _HANDLERS[args.command](args, config)
    except errors.EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):
            print(note, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: everything the emulator started has been removed", file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into `head`: not an error of the job
        sys.stderr.close()
        return errors.EXIT_OK


def threading_main() -> bool:
    """True in the main thread (where signal handlers may be set)."""
    import threading

    return threading.current_thread() is threading.main_thread() and os.name == "posix"


if __name__ == "__main__":
    sys.exit(main())
