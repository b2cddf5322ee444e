"""``pipeline run`` and ``pipeline show``: SageMaker Pipelines definitions, run locally."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from emulator import errors
from emulator.cli import options
from emulator.cli.status_table import StatusTable
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers
    from emulator.pipelines import PipelineExecution

_PARAM_HELP = "parameter override, typed by the parameter's Type (repeatable)"


def add_command(sub: SubParsers) -> None:
    """Register ``pipeline run`` and ``pipeline show``."""
    p = options.add_subcommand(
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
    run_p = options.add_subcommand(
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
    run_p.add_argument("definition", metavar="DEFINITION", help="pipeline definition (JSON or YAML)")
    options.add_kv(run_p, "--param", "NAME=VALUE", _PARAM_HELP)
    run_p.add_argument("--max-parallel", type=int, metavar="N", help="most steps at once (default 4)")
    run_p.add_argument("--name", help="PipelineName (default: the file's name)")
    run_p.add_argument("--logs", action="store_true", help="stream the containers' output, prefixed by step")
    options.add_stop_grace(run_p)
    options.add_common(run_p)
    for action in run_p._actions:  # the shared flag means less output here: the table, not container logs
        if action.dest == "quiet":
            action.help = "print only the summary (no status table; container logs need --logs anyway)"
    show = actions.add_parser("show", help="print the parameters and the steps' DAG without running anything")
    show.add_argument("definition", metavar="DEFINITION", help="pipeline definition (JSON or YAML)")
    options.add_kv(show, "--param", "NAME=VALUE", _PARAM_HELP)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """``pipeline show`` or ``pipeline run``."""
    if args.pipeline_command == "show":
        return _show_pipeline(args)
    return _run_pipeline(args, config)


def _show_pipeline(args: argparse.Namespace) -> int:
    from emulator.pipelines import PipelineDefinition

    definition = PipelineDefinition.load(args.definition)
    values = definition.parameter_values(dict(args.param))
    options.echo(f"pipeline {definition.name}: {len(definition.steps)} steps, {len(values)} parameters")
    for p in definition.parameters.values():
        options.echo(f"  param {p.name} ({p.type}) = {values[p.name]!r}")
    for name in definition.order:
        step = definition.steps[name]
        after = ", ".join(sorted(step.upstream, key=definition.order.index)) or "-"
        where = f"  [if {step.branch[0]} is {step.branch[1]}]" if step.branch else ""
        options.echo(f"  {name}  ({step.type})  after: {after}{where}")
    return errors.EXIT_OK


def _run_pipeline(args: argparse.Namespace, config: EmulatorConfig) -> int:
    from emulator.pipelines import PipelineExecution

    config = options.with_stop_grace(args, config)
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
    options.echo(
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
        options.echo(f"{step}/{host} | {line}", stream)

    return sink


def _print_pipeline_result(args: argparse.Namespace, execution: PipelineExecution) -> None:
    result = execution.describe()
    if args.json:
        options.print_result(args, execution.to_dict(), [])
        return
    for state in execution.states.values():
        if state.status == "Failed" and state.log_tail:
            options.echo(f"last output of step {state.name}:", sys.stderr)
            for line in state.log_tail:
                options.echo(f"  {line}", sys.stderr)
    options.print_result(
        args,
        result,
        [
            ("execution", f"{execution.execution_id} of pipeline {execution.definition.name}"),
            ("status", result["PipelineExecutionStatus"]),
            ("reason", result.get("FailureReason")),
            ("duration", options.duration(result["CreationTime"], result["LastModifiedTime"])),
        ],
    )
