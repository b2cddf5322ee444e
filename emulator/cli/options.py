"""What every command module shares: flag helpers, the model flags, and the output helpers.

A command module registers itself with ``add_command(sub)``: it adds its parser with :func:`add_subcommand`
(or ``sub.add_parser``) and sets ``handler`` (see :data:`Handler`) with ``set_defaults``; ``app.main`` calls
that handler with the parsed flags and the :class:`~emulator.config.EmulatorConfig`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from emulator import errors
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.serving import Endpoint, ModelInstances

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

#: What a command runs: the parsed flags and the config in, the exit code out.
Handler = Callable[[argparse.Namespace, EmulatorConfig], int]

EPILOG = """\
exit codes: 0 success, 1 job failed or stopped, 2 bad input (spec, flags, paths, image),
            3 no Docker engine (or no GPUs for an ml.p*/ml.g* type), 130 interrupted (everything started was
            removed)
environment: SM_EMULATOR_KEEP_CONTAINERS=1, SM_EMULATOR_WORK_DIR, SM_EMULATOR_S3_ENDPOINT_URL
             (or AWS_ENDPOINT_URL_S3), SM_EMULATOR_ALLOW_CPU_FOR_GPU=1, DOCKER_HOST (tcp://, ssh://: a remote
             engine, inputs sent as volumes; SM_EMULATOR_REMOTE_ENGINE=1/0 overrides, docs/remote-engine.md)
docs: README.md and docs/ in the project
"""

_MODEL_HELP = "model.tar.gz, model directory, s3:// URI, or a training job's describe JSON (--json output)"


# -- flags ------------------------------------------------------------------------------------------------
def kv(text: str) -> tuple[str, str]:
    """Parse ``KEY=VALUE`` (an argparse ``type``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def non_negative(flag: str, value: float) -> float:
    """``value`` if it is a finite number >= 0 (a grace period, a timeout), else a one-line error with the fix."""
    if not (value >= 0 and value != float("inf")):  # also refuses nan
        raise errors.InvalidSpec(f"{flag} {value:g}: give a number of seconds, 0 or more")
    return value


def add_stop_grace(p: argparse.ArgumentParser) -> None:
    """``--stop-grace SECONDS`` of the job commands (apply it with :func:`with_stop_grace`)."""
    from emulator.constants import TRAINING_STOP_GRACE_S

    p.add_argument(
        "--stop-grace",
        type=float,
        metavar="SECONDS",
        help=f"seconds between SIGTERM and SIGKILL when stopping (platform: {TRAINING_STOP_GRACE_S:g})",
    )


def with_stop_grace(args: argparse.Namespace, config: EmulatorConfig) -> EmulatorConfig:
    """``config`` with the job's grace period from ``--stop-grace`` (checked: 0 or more)."""
    if args.stop_grace is None:
        return config
    return config.with_(training_stop_grace_s=non_negative("--stop-grace", args.stop_grace))


def add_kv(p: argparse.ArgumentParser, flag: str, metavar: str, help: str) -> None:
    """A repeatable ``flag NAME=VALUE``; its value is the list of (name, value) pairs given."""
    p.add_argument(flag, action="append", type=kv, default=[], metavar=metavar, help=help)


def add_subcommand(
    sub: SubParsers, name: str, *, help: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help shows ``examples`` as written, then the exit codes and environment (EPILOG)."""
    return sub.add_parser(
        name,
        help=help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=description,
        epilog=examples + EPILOG,
    )


def add_resource_flags(p: argparse.ArgumentParser, resources: str) -> None:
    """The instance and limit flags of a training or processing job; ``resources`` names the request's block."""
    p.add_argument("--instance-type", help=f"{resources}.InstanceType (default ml.m5.large)")
    p.add_argument("--instance-count", type=int, help=f"{resources}.InstanceCount (hosts algo-1..N)")
    p.add_argument("--max-runtime", type=int, metavar="SECONDS", help="StoppingCondition.MaxRuntimeInSeconds")
    p.add_argument("--network-isolation", action="store_true", default=None, help="EnableNetworkIsolation")


def add_common(p: argparse.ArgumentParser) -> None:
    """The emulator options every job command has: --keep-containers, --s3-endpoint, --json, -q, -v."""
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
    add_allow_cpu_for_gpu(g)
    g.add_argument("--json", action="store_true", help="print the Describe* result as JSON on stdout")
    g.add_argument("-q", "--quiet", action="store_true", help="do not stream container logs")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_allow_cpu_for_gpu(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--allow-cpu-for-gpu``: ml.p*/ml.g* types run on the CPU when the engine has no GPUs (else refused)."""
    p.add_argument(
        "--allow-cpu-for-gpu",
        action="store_true",
        default=None,
        help="run GPU instance types (ml.p*, ml.g*) on the CPU when the Docker engine has no GPUs "
        "(default: refused; also SM_EMULATOR_ALLOW_CPU_FOR_GPU=1)",
    )


def request_from(
    spec: str | None, operation: str, with_flags: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """The ``operation`` request that the ``--spec`` file (if any) plus the short flags (``with_flags``) describe.

    A spec whose blocks are not the shapes the flags merge into (a string where a mapping belongs) is refused with
    the model's own words, not a TypeError.
    """
    from emulator.spec import load_spec, validate

    raw: dict[str, Any] = load_spec(spec) if spec else {}
    try:
        return with_flags(copy.deepcopy(raw))
    except (AttributeError, TypeError, KeyError):
        validate(operation, raw)  # names the block that does not fit
        raise errors.InvalidSpec(f"--spec {spec}: a block does not fit {operation}; fix the spec") from None


# -- the model flags (serve, invoke, transform) -----------------------------------------------------------
def add_model_flags(p: argparse.ArgumentParser) -> None:
    """--image, --model-data, --model-spec, --env and --instance-type of a command that hosts a model."""
    p.add_argument("--image", help="serving image (runs 'docker run IMAGE serve')")
    p.add_argument("--model-data", metavar="PATH_OR_S3", help=_MODEL_HELP)
    p.add_argument("--model-spec", metavar="FILE", help="a CreateModel request (YAML/JSON) instead of --image")
    add_kv(p, "--env", "KEY=VALUE", "environment variable for the container")
    p.add_argument("--instance-type", help="ml.* type: CPU and memory limits (default: none)")


def model_source(value: str | None) -> Any:
    """A model source; a JSON file with ModelArtifacts (``train --json`` output) means that job's model."""
    if value and value.endswith(".json") and Path(value).is_file():
        try:
            return json.loads(Path(value).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise errors.InvalidSpec(f"{value} is not valid JSON ({exc}); pass a model.tar.gz or a directory") from None
    return value


def endpoint_from_flags(args: argparse.Namespace, config: EmulatorConfig, **kwargs: Any) -> Endpoint | ModelInstances:
    """The (not yet started) Endpoint that the model flags describe (ModelInstances for a --model-spec with several
    Containers: an inference pipeline); ``kwargs`` go to the Endpoint."""
    from emulator.serving import Endpoint, serving_endpoint
    from emulator.spec import load_spec

    common: dict[str, Any] = {"config": config, "log_sink": log_sink(args), **kwargs}
    if args.instance_type:
        common["instance_type"] = args.instance_type
    if args.model_spec:
        overrides: dict[str, Any] = {"environment": dict(args.env)} if args.env else {}
        return serving_endpoint(load_spec(args.model_spec), **overrides, **common)
    if not args.image:
        raise errors.InvalidSpec("no serving image: pass --image IMAGE (with --model-data) or --model-spec FILE")
    return Endpoint(args.image, model_data=model_source(args.model_data), environment=dict(args.env), **common)


# -- output -----------------------------------------------------------------------------------------------
def echo(text: str, stream: TextIO | None = None) -> None:
    """The CLI's own output, flushed (ruff's T20 allows print under emulator/cli/ only)."""
    print(text, file=stream or sys.stdout, flush=True)


def log_sink(args: argparse.Namespace) -> Callable[[str, str], None] | None:
    """Where container log lines go: stdout as ``host | line``, or nowhere with --quiet."""
    if getattr(args, "quiet", False):
        return lambda host, line: None

    def sink(host: str, line: str) -> None:
        print(f"{host} | {line}", flush=True)

    return sink


def duration(start: Any, end: Any) -> str:
    """``12.3 s`` between two datetimes ("" if either is missing)."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return f"{(end - start).total_seconds():.1f} s"
    return ""


def print_result(args: argparse.Namespace, result: dict[str, Any], rows: list[tuple[str, Any]]) -> None:
    """The Describe* result as JSON (--json), else the non-empty ``rows`` as an aligned table."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=str))
        return
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        if value:
            print(f"{key.ljust(width)}  {value}")
