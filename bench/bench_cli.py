"""7. Cold start of the CLI: what a command costs before it does its own work, in a fresh interpreter.

Each figure is a fresh ``python`` process, timed from ``subprocess.run`` to its exit, interleaved with the
baseline ``python -c pass`` (the interpreter's own start, which no code of the emulator can shorten). The
"own start" is the median difference. Commands measured:

* ``train --help``: the parser of every built-in command, and nothing else;
* ``train --spec bad.yaml``: parsing, loading the YAML spec and validating the request, refused with exit 2
  (the job kind, the runner and docker-py are imported only for a request that passes);
* in-process, the parts of a job's path to its first engine call: importing the defaults and validation,
  the first validation, and importing the job kind with docker-py (what a valid request pays next).
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench._common import REPO, Options, Result, Row, interleave, median, now, run_child, spread

GOAL_S = 0.150
_BAD_SPEC = """TrainingJobName: bench-cold
AlgorithmSpecification: {TrainingImage: bench-image, TrainingInputMode: Files}
"""
_IN_PROCESS = """
import json, time
t0 = time.perf_counter()
from emulator.training.defaults import validated
t1 = time.perf_counter()
validated({"AlgorithmSpecification": {"TrainingImage": "x"}})
t2 = time.perf_counter()
from emulator.training import TrainingJob
from emulator.runtime.docker import _import_docker
_import_docker()
print(json.dumps({"defaults": t1 - t0, "validate": t2 - t1, "job": time.perf_counter() - t2}))
"""


def _timed(argv: list[str], expect: int) -> float:
    start = now()
    done = subprocess.run(argv, capture_output=True, cwd=REPO, timeout=120, check=False)
    elapsed = now() - start
    if done.returncode != expect:
        raise RuntimeError(f"{' '.join(argv[1:])}: exit {done.returncode}, expected {expect}: {done.stderr[-500:]!r}")
    return elapsed


def run(opts: Options) -> Result:
    bad = opts.work / "cold-bad.yaml"
    bad.write_text(_BAD_SPEC)
    py = sys.executable
    repeats = max(5, 3 * opts.repeats)
    samples = interleave(
        {
            "python": lambda: _timed([py, "-c", "pass"], 0),
            "train --help": lambda: _timed([py, "-m", "emulator", "train", "--help"], 0),
            "train --spec bad": lambda: _timed([py, "-m", "emulator", "train", "--spec", str(bad)], 2),
        },
        repeats,
        warmup=2,  # the first runs write the trimmed service model to the cache and warm the page cache
        log=opts.log,
    )
    base = median(samples["python"])
    result = Result("cli")
    for name, what in (
        ("train --help", "`python -m emulator train --help`"),
        ("train --spec bad", "`train --spec bad.yaml`: load, import, validate, refuse (exit 2)"),
    ):
        own = median(samples[name]) - base
        result.rows.append(
            Row(
                "7. CLI cold start",
                f"{what}: own start (median - interpreter start)",
                "`python -c pass`",
                base,
                median(samples[name]),
                "s",
                f"own start < {GOAL_S * 1000:.0f} ms",
                own < GOAL_S,
                repeats,
                f"{name}: {spread(samples[name])} s; own start {own * 1000:.0f} ms; python -c pass "
                f"{spread(samples['python'])} s (min/median/max)",
                has_ratio=False,
            )
        )
    parts = [json.loads(run_child([py, "-c", _IN_PROCESS], timeout_s=120, cwd=REPO).stdout) for _ in range(5)]

    def part(key: str) -> float:
        return median([p[key] for p in parts]) * 1000

    result.details.append(
        "**CLI cold start.** Fresh interpreters, interleaved with `python -c pass`; the own start is the median "
        "difference. A command line naming a built-in command imports only that command's module (no plugin "
        "command: the contract suite's `init-contract` imports pytest); `--help` with no command still lists "
        "every command. `train` validates the request before it imports the job kind: in-process, importing "
        f"`emulator.training.defaults` takes {part('defaults'):.0f} ms and the first validation "
        f"{part('validate'):.1f} ms (a trimmed copy of botocore's SageMaker model for the one operation, cached "
        "in `~/.cache/sagemaker-emulator/service-models` after the first run). A valid request then imports the "
        f"job kind, the runner and docker-py with requests, which its first engine call needs: {part('job'):.0f} ms "
        "(medians of 5)."
    )
    return result
