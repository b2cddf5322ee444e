"""``tune``: run a hyperparameter tuning job (CreateHyperParameterTuningJob) with a live table and a summary."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from emulator import errors
from emulator.cli import options
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers
    from emulator.tuning import TuningJob

_COLUMNS = ("Training job", "Status", "Objective", "Hyperparameters")
_WIDTHS = (36, 10, 12)


def add_command(sub: SubParsers) -> None:
    """Register ``tune``."""
    p = options.add_subcommand(
        sub,
        "tune",
        help="run a hyperparameter tuning job",
        description="Run a hyperparameter tuning job like SageMaker's CreateHyperParameterTuningJob: training "
        "jobs with the hyperparameters the strategy picks, MaxParallelTrainingJobs at once (bounded by this "
        "machine's cores and memory), the objective read from their logs. A live table goes to stderr; exit 0 "
        "when the tuning job Completed, 1 otherwise.",
        examples="""examples:
  python -m emulator tune --spec sample_algorithm/tuning.yaml
  python -m emulator tune --spec tuning.yaml --max-jobs 4 --max-parallel 2 --seed 7
  python -m emulator tune --spec tuning.yaml --json > result.json   # DescribeHyperParameterTuningJob

The spec is a CreateHyperParameterTuningJob request (YAML or JSON): Strategy Random, Grid, Bayesian or
Hyperband; Integer, Continuous and Categorical ranges; MetricDefinitions whose regex finds the objective
in the training jobs' logs.
""",
    )
    p.add_argument("--spec", metavar="FILE", required=True, help="CreateHyperParameterTuningJob request (YAML/JSON)")
    p.add_argument("--name", help="HyperParameterTuningJobName (default: tuning-<timestamp>)")
    p.add_argument("--max-jobs", type=int, metavar="N", help="ResourceLimits.MaxNumberOfTrainingJobs")
    p.add_argument("--max-parallel", type=int, metavar="N", help="ResourceLimits.MaxParallelTrainingJobs")
    p.add_argument("--seed", type=int, metavar="N", help="HyperParameterTuningJobConfig.RandomSeed")
    p.add_argument("--logs", action="store_true", help="stream the containers' output, prefixed by training job")
    options.add_stop_grace(p)
    options.add_common(p)
    p.set_defaults(handler=run)


def tuning_request(args: argparse.Namespace) -> dict[str, Any]:
    """The request the spec plus the flags describe."""
    return options.request_from(args.spec, "CreateHyperParameterTuningJob", lambda req: _with_flags(req, args))


def _with_flags(req: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.name:
        req["HyperParameterTuningJobName"] = args.name
    config = req.setdefault("HyperParameterTuningJobConfig", {})
    limits = config.setdefault("ResourceLimits", {})
    for flag, key in (("max_jobs", "MaxNumberOfTrainingJobs"), ("max_parallel", "MaxParallelTrainingJobs")):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise errors.InvalidSpec(f"--{flag.replace('_', '-')} {value}: give 1 or more")
            limits[key] = value
    if args.seed is not None:
        config["RandomSeed"] = args.seed
    return req


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Run the tuning job; 0 when it Completed, 1 otherwise."""
    from emulator.tuning import TuningJob

    config = options.with_stop_grace(args, config)
    table = LiveTable(sys.stderr, live=sys.stderr.isatty() and not args.quiet and not args.logs, quiet=args.quiet)
    sink = options.log_sink(args) if args.logs else (lambda host, line: None)
    job = TuningJob(tuning_request(args), config=config, log_sink=sink, on_change=table)
    spec = job.spec
    options.echo(
        f"tuning job {job.name}: {spec.strategy}, {spec.max_jobs} training jobs, {job.parallelism_note}",
        sys.stderr,
    )
    if not getattr(args, "verbose", False):  # the table says what these would (and they would break its redraw)
        for name in ("emulator.training", "emulator.runtime", "emulator.tuning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    result = job.run()
    table.close(job)
    best = result.get("BestTrainingJob") or {}
    metric = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    counters = result["TrainingJobStatusCounters"]
    options.print_result(
        args,
        result,
        [
            ("status", result["HyperParameterTuningJobStatus"]),
            ("reason", result.get("FailureReason")),
            ("training jobs", ", ".join(f"{v} {k}" for k, v in counters.items() if v)),
            ("parallel", job.parallelism_note),
            ("best job", best.get("TrainingJobName")),
            ("objective", f"{metric['MetricName']} = {metric['Value']:g} ({spec.objective_type})" if metric else None),
            ("hyperparameters", _hps(best.get("TunedHyperParameters") or {}) or None),
            ("model", _best_model(job)),
            ("duration", options.duration(result.get("CreationTime"), result.get("HyperParameterTuningEndTime"))),
        ],
    )
    return errors.EXIT_OK if result["HyperParameterTuningJobStatus"] == "Completed" else errors.EXIT_JOB_FAILED


def _best_model(job: TuningJob) -> str | None:
    best = job.best_training_job()
    return str(best.describe()["ModelArtifacts"]["S3ModelArtifacts"]) or None if best else None


def _hps(values: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


def rows(job: TuningJob) -> list[tuple[str, ...]]:
    """The table: a header, then one row per training job in launch order."""
    out: list[tuple[str, ...]] = [_COLUMNS]
    for s in job.training_job_summaries():
        metric = s.get("FinalHyperParameterTuningJobObjectiveMetric")
        objective = f"{metric['Value']:g}" if metric else "-"
        out.append((s["TrainingJobName"], s["TrainingJobStatus"], objective, _hps(s["TunedHyperParameters"])))
    return out


def _line(row: tuple[str, ...]) -> str:
    cells = [cell.ljust(w) for cell, w in zip(row, _WIDTHS, strict=False)]
    return "  ".join([*cells, *row[len(_WIDTHS) :]]).rstrip()


class LiveTable:
    """The training jobs' table on stderr: redrawn in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: TextIO, *, live: bool, quiet: bool = False) -> None:
        self._stream = stream
        self.live = self._live = live
        self._quiet = quiet
        self._drawn = 0
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, job: TuningJob) -> None:
        """The tuning job changed (a training job started or ended)."""
        if self._quiet:
            return
        with self._lock:
            table = rows(job)
            if self._live:
                self._redraw(table)
                return
            for row in table[1:]:
                if self._seen.get(row[0]) != row[1]:
                    self._seen[row[0]] = row[1]
                    self._stream.write(_line(row) + "\n")
            self._stream.flush()

    def close(self, job: TuningJob) -> None:
        """The final table (redrawn on a terminal, printed once otherwise)."""
        if self._quiet:
            return
        with self._lock:
            if self._live:
                self._redraw(rows(job))
                return
            self._stream.write("\n" + "".join(_line(r) + "\n" for r in rows(job)))
            self._stream.flush()

    def _redraw(self, table: list[tuple[str, ...]]) -> None:
        width = max(20, shutil.get_terminal_size((120, 20)).columns - 1)
        out = f"\x1b[{self._drawn}F" if self._drawn else ""
        out += "".join(f"\x1b[2K{_line(r)[:width]}\n" for r in table)
        self._stream.write(out)
        self._stream.flush()
        self._drawn = len(table)
