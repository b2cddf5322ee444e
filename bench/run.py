"""Run every benchmark and print a table of figures and ratios; optionally write docs/benchmarks.md.

    python bench/run.py                      # everything, 5 interleaved repeats per figure
    python bench/run.py --quick              # smoke run: small sizes, 2 repeats
    python bench/run.py --only training --only readiness --repeats 3
    python bench/run.py --out docs/benchmarks.md

Each figure is measured in one run against its baseline, interleaved (A, B, A, B, ...), and reported as
the median of the repeats with the ratio. Nothing in the output is typed in: every number is measured now.
The benchmarks need a running Docker engine and the sample image (built when missing).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import importlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `emulator` importable from the repo
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, Options, Result, Row, fmt_value, machine_info, rmtree

BENCHMARKS = {
    "training": "bench.bench_training",
    "readiness": "bench.bench_readiness",
    "invoke": "bench.bench_invoke",
    "transform": "bench.bench_transform",
    "contract": "bench.bench_contract",
    "localmode": "bench.bench_localmode",
    "sdk": "bench.bench_sdk",
    "tuning": "bench.bench_tuning",
    "console": "bench.bench_console",
    "cli": "bench.bench_cli",
}
TEMPLATE = Path(__file__).resolve().parent / "template.md"


def compile_bytecode() -> None:
    """Write the project's bytecode, as installing a package does (pip compiles at install time).

    An editable install leaves that to the first import, which does not happen where PYTHONDONTWRITEBYTECODE is
    set (as on these CI machines): every fresh process would compile every module again, ~0.2 s of CPU that a
    user's process never spends, added to each cold-start and client-CPU figure.
    """
    for package in ("emulator", "contract_tests", "bench"):
        compileall.compile_dir(REPO / package, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 2 repeats")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--repeats", type=int, help="measured runs per variant (default 5, 2 with --quick)")
    parser.add_argument("--out", type=Path, help="write the results as markdown here (e.g. docs/benchmarks.md)")
    parser.add_argument("--keep", action="store_true", help="keep the bench's temp dir (data, models)")
    parser.add_argument(
        "--transform-mb",
        type=int,
        action="append",
        metavar="MB",
        help="batch transform input size in MB (repeatable; default 100 and 1000, 100 with --quick); sizes over "
        "1000 run the emulator once, for its memory, without the loop",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="sm-emulator-bench-"))
    opts = Options(quick=args.quick, repeats=repeats, work=work, transform_mb=tuple(args.transform_mb or ()))
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    machine = machine_info()
    results: list[Result] = []
    failures: list[str] = []
    try:
        for name in args.only or list(BENCHMARKS):
            print(f"== {name}", file=sys.stderr, flush=True)
            try:
                results.append(importlib.import_module(BENCHMARKS[name]).run(opts))
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                traceback.print_exc()
                failures.append(f"{name}: {type(exc).__name__}: {exc}".splitlines()[0][:300])
                results.append(Result(name, [Row(name, "failed", "", None, None, note=failures[-1])]))
    finally:
        if not args.keep:
            rmtree(work)
    elapsed = time.monotonic() - t0
    print()
    print(render_machine(machine))
    print()
    print(render_table(results))
    for r in results:
        for d in r.details:
            print()
            print(d)
    if args.out:
        write_markdown(args.out, results, machine, started, elapsed, opts)
        print(f"\nwrote {args.out}", file=sys.stderr)
    return 1 if failures else 0


def render_machine(machine: dict[str, str]) -> str:
    return "\n".join(f"- **{k}**: {v}" for k, v in machine.items())


def render_table(results: list[Result]) -> str:
    lines = [
        "| benchmark | figure | baseline | baseline (median) | emulator (median) | ratio | goal | met | n |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for row in r.rows:
            ratio = row.ratio
            ratio_text = "—" if ratio is None else f"{ratio:.2f}x"
            met = {True: "yes", False: "**no**", None: "—"}[row.met]
            lines.append(
                f"| {row.bench} | {row.metric} | {row.baseline_what or '—'} | "
                f"{fmt_value(row.baseline, row.unit)} | {fmt_value(row.value, row.unit)} | {ratio_text} | "
                f"{row.goal or '—'} | {met} | {row.n or '—'} |"
            )
    notes = [(row.bench, row.note) for r in results for row in r.rows if row.note]
    if notes:
        lines.append("")
        lines.extend(f"- {bench}: {note}" for bench, note in notes)
    return "\n".join(lines)


def write_markdown(
    path: Path, results: list[Result], machine: dict[str, str], started: dt.datetime, elapsed: float, opts: Options
) -> None:
    template = TEMPLATE.read_text()
    mode = "--quick" if opts.quick else "full"
    header = (
        f"generated by `python bench/run.py` on {started.strftime('%Y-%m-%d %H:%M UTC')} "
        f"({mode} run, {opts.repeats} interleaved repeats per figure unless the n column says otherwise, "
        f"{elapsed / 60:.1f} min)"
    )
    details = "\n\n".join(d for r in results for d in r.details)
    text = (
        template.replace("{generated}", header)
        .replace("{machine}", render_machine(machine))
        .replace("{table}", render_table(results))
        .replace("{details}", details or "(none)")
    )
    path = path if path.is_absolute() else Path.cwd() / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
