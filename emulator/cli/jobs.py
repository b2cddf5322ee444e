"""The ``process`` and ``pipeline`` subcommands of ``python -m emulator`` (listed in emulator/cli.py's ``_ADDERS``).

Same conventions as the other subcommands: parse flags, build the SageMaker request, make one library
call, print the result, return an exit code (0 success, 1 failed or stopped, 2 bad input, 3 no Docker,
130 interrupted). ``emulator.cli`` is imported inside the functions because cli.py imports this module.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from emulator import errors
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.pipelines import PipelineExecution, StepState

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

_PROCESSING_DIR = "/opt/ml/processing/"
_PARAM_HELP = "parameter override, typed by the parameter's Type (repeatable)"


def _echo(text: str, stream: TextIO | None = None) -> None:
    """The CLI's own output (ruff's T20 allows print in cli.py only; this module is part of the CLI)."""
    print(text, file=stream or sys.stdout, flush=True)


# -- process ------------------------------------------------------------------------------------------------
def add_process(sub: SubParsers) -> None:
    """Register ``process``: run a processing job (CreateProcessingJob)."""
    from emulator.cli import app as cli

    p = cli._add_subcommand(
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
    cli._add_kv(
        p,
        "--input",
        "NAME=SOURCE[:LOCALPATH]",
        "ProcessingInput from a local path or s3:// URI, mounted at LOCALPATH (repeatable)",
    )
    cli._add_kv(
        p,
        "--output",
        "NAME=[LOCALPATH:]DESTINATION",
        "ProcessingOutput: LOCALPATH uploaded to a local dir or s3:// URI when the job ends (repeatable)",
    )
    cli._add_kv(p, "--env", "KEY=VALUE", "Environment")
    cli._add_resource_flags(p, "ClusterConfig")
    p.add_argument("--stop-grace", type=float, metavar="SECONDS", help="seconds between SIGTERM and SIGKILL")
    cli._add_common(p)
    cli._HANDLERS["process"] = _run_process


def processing_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateProcessingJob request that a spec file plus short flags describe."""
    from emulator.spec import load_spec

    req: dict[str, Any] = load_spec(args.spec) if args.spec else {}
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
    return shlex.split(values[0]) if len(values) == 1 else list(values)


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
    if value.startswith("/opt/ml/"):
        local, sep, destination = value.partition(":")
        if not sep or not destination:
            raise errors.InvalidSpec(f"--output {name}={value}: no destination; write NAME=LOCALPATH:PATH_OR_S3_URI")
    else:
        local, destination = f"{_PROCESSING_DIR}output/{name}", value
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": destination, "LocalPath": local, "S3UploadMode": "EndOfJob"},
    }


def _run_process(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from emulator.cli import app as cli
    from emulator.processing import ProcessingJob

    if args.stop_grace is not None:
        config = config.with_(training_stop_grace_s=args.stop_grace)
    job = ProcessingJob(processing_request(args), config=config, log_sink=cli._log_sink(args))
    cluster = job.request["ProcessingResources"]["ClusterConfig"]
    _echo(f"processing job {job.name}: starting on {cluster['InstanceCount']} x {cluster['InstanceType']}", sys.stderr)
    result = job.run()
    outputs = result.get("ProcessingOutputConfig", {}).get("Outputs", [])
    cli._print_result(
        args,
        result,
        [
            ("status", result["ProcessingJobStatus"]),
            ("exit message", (result.get("ExitMessage") or "").strip()),
            ("reason", result.get("FailureReason")),
            *((f"output {o['OutputName']}", o["S3Output"]["S3Uri"]) for o in outputs if o.get("S3Output")),
            ("duration", cli._duration(result.get("ProcessingStartTime"), result.get("ProcessingEndTime"))),
        ],
    )
    # Ctrl-C does not get here: the job raises Interrupted (exit 130) once it has cleaned up.
    return errors.EXIT_OK if result["ProcessingJobStatus"] == "Completed" else errors.EXIT_JOB_FAILED


# -- pipeline -----------------------------------------------------------------------------------------------
def add_pipeline(sub: SubParsers) -> None:
    """Register ``pipeline run`` and ``pipeline show``: SageMaker Pipelines definitions, locally."""
    from emulator.cli import app as cli

    p = cli._add_subcommand(
        sub,
        "pipeline",
        help="run or show a SageMaker Pipelines definition",
        description="Run a pipeline definition (the JSON the SageMaker SDK's pipeline.definition() emits, or "
        "the same document as YAML): Processing, Training, Transform, Model, Condition and Fail steps.",
        examples="""examples:
  python -m emulator pipeline show sample_algorithm/pipeline.yaml
  python -m emulator pipeline run sample_algorithm/pipeline.yaml \\
      --param InputData=out/data/iris.csv --param OutputPrefix=out/pipeline
  python -m emulator pipeline run definition.json --param AccuracyThreshold=0.9 --max-parallel 2 --json
""",
    )
    actions = p.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    run = cli._add_subcommand(
        actions,
        "run",
        help="run every step, independent ones in parallel",
        description="Run the pipeline: each step starts as soon as its dependencies are met. A live status "
        "table goes to stderr; exit 0 when the execution Succeeded, 1 when it Failed.",
        examples="""examples:
  python -m emulator pipeline run sample_algorithm/pipeline.yaml --param InputData=out/data/iris.csv
  python -m emulator pipeline run pipeline.json --s3-endpoint http://127.0.0.1:4566 --json > result.json
""",
    )
    run.add_argument("definition", metavar="DEFINITION", help="pipeline definition (JSON or YAML)")
    cli._add_kv(run, "--param", "NAME=VALUE", _PARAM_HELP)
    run.add_argument("--max-parallel", type=int, metavar="N", help="most steps at once (default 4)")
    run.add_argument("--name", help="PipelineName (default: the file's name)")
    run.add_argument("--logs", action="store_true", help="stream the containers' output, prefixed by step")
    run.add_argument("--stop-grace", type=float, metavar="SECONDS", help="seconds between SIGTERM and SIGKILL")
    cli._add_common(run)
    for action in run._actions:  # the shared flag means less output here: the table, not container logs
        if action.dest == "quiet":
            action.help = "print only the summary (no status table; container logs need --logs anyway)"
    show = actions.add_parser("show", help="print the parameters and the steps' DAG without running anything")
    show.add_argument("definition", metavar="DEFINITION", help="pipeline definition (JSON or YAML)")
    cli._add_kv(show, "--param", "NAME=VALUE", _PARAM_HELP)
    cli._HANDLERS["pipeline"] = _run_pipeline_command


def _run_pipeline_command(args: argparse.Namespace, config: EmulatorConfig) -> int:
    if args.pipeline_command == "show":
        return _show_pipeline(args)
    return _run_pipeline(args, config)


def _show_pipeline(args: argparse.Namespace) -> int:
    from emulator.pipelines import PipelineDefinition

    definition = PipelineDefinition.load(args.definition)
    values = definition.parameter_values(dict(args.param))
    _echo(f"pipeline {definition.name}: {len(definition.steps)} steps, {len(values)} parameters")
    for p in definition.parameters.values():
        _echo(f"  param {p.name} ({p.type}) = {values[p.name]!r}")
    for name in definition.order:
        step = definition.steps[name]
        after = ", ".join(sorted(step.upstream, key=definition.order.index)) or "-"
        where = f"  [if {step.branch[0]} is {step.branch[1]}]" if step.branch else ""
        _echo(f"  {name}  ({step.type})  after: {after}{where}")
    return errors.EXIT_OK


def _run_pipeline(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from emulator.pipelines import PipelineExecution

    if args.stop_grace is not None:
        config = config.with_(training_stop_grace_s=args.stop_grace)
    quiet = args.quiet or args.json
    table = StatusTable(sys.stderr, live=sys.stderr.isatty() and not args.logs and not quiet, quiet=quiet)
    execution = PipelineExecution(
        args.definition,
        parameters=dict(args.param),
        config=config,
        max_parallel=args.max_parallel,
        name=args.name,
        on_change=table,
        log_sink=_step_log_sink(sys.stderr if args.json else sys.stdout) if args.logs else None,
    )
    _echo(
        f"pipeline {execution.definition.name}: execution {execution.execution_id}, "
        f"{len(execution.states)} steps, up to {execution.max_parallel} at once",
        sys.stderr,
    )
    try:
        with table.logs_above():
            execution.run()
    finally:
        table.close(execution)
        _print_pipeline_result(args, execution)
    return errors.EXIT_OK if execution.status == "Succeeded" else errors.EXIT_JOB_FAILED


def _step_log_sink(stream: TextIO) -> Callable[[str, str, str], None]:
    def sink(step: str, host: str, line: str) -> None:
        _echo(f"{step}/{host} | {line}", stream)

    return sink


def _print_pipeline_result(args: argparse.Namespace, execution: PipelineExecution) -> None:
    from emulator.cli import app as cli

    result = execution.describe()
    if args.json:
        cli._print_result(args, execution.to_dict(), [])
        return
    for state in execution.states.values():
        if state.status == "Failed" and state.log_tail:
            _echo(f"last output of step {state.name}:", sys.stderr)
            for line in state.log_tail:
                _echo(f"  {line}", sys.stderr)
    cli._print_result(
        args,
        result,
        [
            ("execution", f"{execution.execution_id} of pipeline {execution.definition.name}"),
            ("status", result["PipelineExecutionStatus"]),
            ("reason", result.get("FailureReason")),
            ("duration", cli._duration(result["CreationTime"], result["LastModifiedTime"])),
        ],
    )


# -- the status table ---------------------------------------------------------------------------------------
_COLUMNS = ("Step", "Type", "Status", "Duration", "Job name", "Note")


class StatusTable:
    """The per-step status table on stderr: redrawn in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: TextIO, *, live: bool, quiet: bool = False, min_redraw_s: float = 0.5) -> None:
        self._stream = stream
        self._live = live
        self._quiet = quiet
        self._min_redraw_s = min_redraw_s
        self._drawn = 0
        self._last = 0.0
        self._seen: dict[str, str] = {}
        self._lock = threading.RLock()
        self._execution: PipelineExecution | None = None

    def __call__(self, execution: PipelineExecution, state: StepState | None) -> None:
        """A status change (``state``) or a scheduler tick (None)."""
        if self._quiet:
            return
        with self._lock:
            self._execution = execution
            if self._live:
                if state is not None or time.monotonic() - self._last >= self._min_redraw_s:
                    self._redraw(execution)
            elif state is not None and state.status != "Starting" and self._seen.get(state.name) != state.status:
                self._seen[state.name] = state.status
                self._stream.write(_line(_row(state)) + "\n")
                self._stream.flush()

    def close(self, execution: PipelineExecution) -> None:
        """Draw the final table (on a terminal) or print it once as a summary (otherwise)."""
        if self._quiet:
            return
        with self._lock:
            if self._live:
                self._redraw(execution)
                return
            self._stream.write("\n")
            for row in rows(execution):
                self._stream.write(_line(row) + "\n")
            self._stream.flush()

    def echo(self, text: str) -> None:
        """Print a line (a log message) above the live table, which is then drawn again below it."""
        with self._lock:
            if self._live and self._drawn:
                self._stream.write(f"\x1b[{self._drawn}F\x1b[J")  # back to the table's first line; clear below
                self._drawn = 0
            self._stream.write(text + "\n")
            if self._live and self._execution is not None:
                self._redraw(self._execution)
            self._stream.flush()

    @contextlib.contextmanager
    def logs_above(self) -> Iterator[None]:
        """While the table is live, log records go above it instead of through it (which breaks the redraw)."""
        if not self._live:
            yield
            return
        root = logging.getLogger()
        saved = root.handlers[:]
        handler = _AboveTable(self)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.setLevel(min((h.level for h in saved), default=logging.INFO))
        root.handlers = [handler]
        try:
            yield
        finally:
            root.handlers = saved

    def _redraw(self, execution: PipelineExecution) -> None:
        width = max(20, shutil.get_terminal_size((120, 20)).columns - 1)  # no wrapping: it breaks cursor moves
        lines = [_line(row)[:width] for row in rows(execution)]
        out = f"\x1b[{self._drawn}F" if self._drawn else ""
        out += "".join(f"\x1b[2K{line}\n" for line in lines)
        self._stream.write(out)
        self._stream.flush()
        self._drawn = len(lines)
        self._last = time.monotonic()


class _AboveTable(logging.Handler):
    def __init__(self, table: StatusTable) -> None:
        super().__init__()
        self._table = table

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._table.echo(self.format(record))
        except Exception:
            self.handleError(record)


def rows(execution: PipelineExecution) -> list[tuple[str, ...]]:
    """The table: a header, then one row per step in the definition's order."""
    states = [execution.states[name] for name in execution.definition.order]
    return [_COLUMNS, *(_row(s) for s in states)]


def _row(s: StepState) -> tuple[str, ...]:
    shown = {"Pending": "-"}.get(s.status, s.status)
    return (s.name, s.type, shown, _seconds(s.duration_s), s.job_name or "", " ".join(s.note.split())[:80])


_WIDTHS = (24, 10, 11, 8, 44)


def _line(row: tuple[str, ...]) -> str:
    cells = [cell.ljust(w) for cell, w in zip(row, _WIDTHS, strict=False)]
    return "  ".join([*cells, *row[len(_WIDTHS) :]]).rstrip()


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f}s" if value < 60 else f"{int(value // 60)}m{int(value % 60):02d}s"
