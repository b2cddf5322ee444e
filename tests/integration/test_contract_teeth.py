"""The contract suite has teeth: every check fails on an image that breaks its rule, and passes on the sample.

``tests/broken_images/<check id>/`` holds, for each check of contract_tests, a one-layer image built on the sample
algorithm that breaks exactly that check's rule (docs/broken-images.md lists them). For each one the suite runs in
a subprocess, as a user runs it (``pytest --image IMAGE``), selecting only that check (``-k <check id>``), and
the JUnit report must show the check FAILED (not errored, not skipped) with the suite's own message: the check's
``[id]`` and a ``fix:`` line. A few broken images get the whole suite, to show that the failure lands on the right
check and that the unrelated checks still pass; the sample image gets the whole suite and must pass everything.

The check ids come from the suite's own test functions (``test_[tsbpm]NN_*``), so a new check without a broken
image fails :func:`test_every_check_has_a_broken_image` (no Docker needed).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITE_DIR = REPO / "contract_tests"
BROKEN_DIR = REPO / "tests" / "broken_images"
#: One suite subprocess may take this long (a run of one check takes seconds, the whole suite about half a minute).
SUITE_TIMEOUT_S = 600
#: --stop-timeout for the suite: the SIGTERM checks would otherwise wait the platform's 120 s / 30 s.
STOP_TIMEOUT_S = 5
#: --startup-timeout: the sample is healthy in ~1 s on a quiet machine (its gunicorn workers took over 20 s to boot
#: on a loaded one); broken images that answer /ping 503 forever wait this long (the sure failures -- exits, wrong
#: port or interface, /ping errors -- are reported sooner, whatever this is).
STARTUP_TIMEOUT_S = 45
#: --invocation-timeout: b34's bound (the sample answers a 6 MiB mini-batch in seconds).
INVOCATION_TIMEOUT_S = 20
#: training.max_runtime_s of the cascade runs (a `train` that never exits is stopped after it).
CASCADE_MAX_RUNTIME_S = 30
CHECK_NAME = re.compile(r"^test_[tsbpm]\d{2}_\w+$")
#: Broken images whose whole-suite run must fail their own check and nothing else.
ISOLATED = (
    "test_t03_entrypoint_exec_form",
    "test_t10_failure_file_written",
    "test_s24_unknown_headers_ignored",
    "test_b31_execution_parameters_schema",
    "test_p37_processing_message_utf8",
)
#: Checks of a capability the sample does not claim: their broken image's run gets the sample's config claiming it.
CLAIMED_FOR_TEETH = {"test_t14_pipe_mode_fifos": "pipe_mode"}
_FIX_LINE = re.compile(r"^\s*fix:\s+(\S.*)$", re.M)
_DEFERRED_FIX = re.compile(r"^fix [tsbpm]\d\d first$")


def _load_builder() -> ModuleType:
    path = BROKEN_DIR / "build.py"
    spec = importlib.util.spec_from_file_location("_sm_emulator_broken_images_build", path)
    assert spec is not None, f"{path} is missing"
    assert spec.loader is not None, f"{path} cannot be loaded"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_builder()


def suite_check_ids() -> list[str]:
    """The checks of the suite: test functions named ``test_[tsbpm]NN_*`` in contract_tests/test_*.py."""
    names = []
    for path in sorted(SUITE_DIR.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names += [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and CHECK_NAME.match(n.name)]
    return sorted(names)


# -- running the suite -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """One test case of a JUnit report."""

    name: str
    status: str  # passed, failed, error or skipped
    message: str


@dataclass(frozen=True)
class SuiteRun:
    """One run of the contract suite in a subprocess."""

    image: str
    command: list[str]
    returncode: int
    output: str
    outcomes: dict[str, Outcome]

    def explain(self) -> str:
        """The command and the tail of its output, for assertion messages."""
        tail = "\n".join(self.output.rstrip().splitlines()[-60:])
        return f"command: {' '.join(self.command)}\nexit status {self.returncode}; output tail:\n{tail}"


def read_junit(path: Path) -> dict[str, Outcome]:
    """Test name -> outcome. An error (e.g. in a fixture or teardown) wins over a failure, a failure over a skip."""
    out: dict[str, Outcome] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        found = {child.tag: child for child in case if child.tag in ("error", "failure", "skipped")}
        status, message = "passed", ""
        for tag, label in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
            if tag in found:
                status = label
                message = f"{found[tag].get('message', '')}\n{found[tag].text or ''}"
                break
        previous = out.get(name)
        if previous is None or previous.status in ("passed", "skipped"):
            out[name] = Outcome(name, status, message)
    return out


def run_suite(image: str, work: Path, pids: set[int], *select: str) -> SuiteRun:
    """``python -m pytest contract_tests --image IMAGE [select...]`` with a JUnit report, bounded in time."""
    report = work / "report.xml"
    command = [
        sys.executable, "-m", "pytest", str(SUITE_DIR), "--image", image, "-p", "no:cacheprovider",
        f"--junitxml={report}", f"--stop-timeout={STOP_TIMEOUT_S}", f"--startup-timeout={STARTUP_TIMEOUT_S}",
        f"--invocation-timeout={INVOCATION_TIMEOUT_S}",
        f"--basetemp={work / 'basetemp'}", "-q", *select,
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids.add(proc.pid)  # the session-end leak check of tests/conftest.py also covers the suite's containers
    try:
        output, _ = proc.communicate(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: pytest still runs its cleanup hooks
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail(f"the contract suite on {image} did not finish within {SUITE_TIMEOUT_S} s:\n{output[-5000:]}")
    run = SuiteRun(image, command, proc.returncode, output, read_junit(report) if report.is_file() else {})
    assert run.returncode in (0, 1), f"the contract suite could not run ({run.returncode}).\n{run.explain()}"
    return run


def assert_fails_with_fix(run: SuiteRun, check_id: str) -> None:
    """``check_id`` failed with the suite's own message: its ``[id]``, and a fix that is not "fix X first"."""
    what = build.describe(check_id)
    outcome = run.outcomes.get(check_id)
    assert outcome is not None, f"{check_id} did not run on {run.image}.\n{run.explain()}"
    assert outcome.status == "failed", (
        f"HOLE IN THE SUITE: {check_id} {outcome.status.upper()} on {run.image}, which breaks its rule: {what}\n"
        f"(expected: FAILED){' ' + outcome.message.strip()[:2000] if outcome.message.strip() else ''}\n{run.explain()}"
    )
    short = check_id[len("test_") : len("test_") + 3]
    assert f"[{short}]" in outcome.message, f"{check_id}'s failure message does not name [{short}]:\n{outcome.message}"
    fix = _FIX_LINE.search(outcome.message)
    assert fix is not None, f"{check_id}'s failure message has no 'fix:' line:\n{outcome.message}"
    assert not _DEFERRED_FIX.match(fix.group(1).strip()), (
        f"{check_id} failed only because another check did ({fix.group(1)!r}), not on its own rule:\n{outcome.message}"
    )


def _passed_or_unclaimed(name: str, outcome: Outcome) -> bool:
    """Passed, or skipped because the sample does not claim the capability (a config claim, or s29's image label)."""
    unclaimed = outcome.status == "skipped" and "does not claim" in outcome.message
    return outcome.status == "passed" or unclaimed


# -- broken images (sample_image is tests/conftest.py's fixture) -------------------------------------------------
def _broken(check_id: str, sample_image: str) -> str:
    try:
        return str(build.build_broken_image(check_id, sample_image))
    except build.ImageBuildError as exc:
        pytest.fail(f"cannot build the broken image for {check_id}: {exc}")


# -- without Docker ----------------------------------------------------------------------------------------------
def test_every_check_has_a_broken_image() -> None:
    checks = suite_check_ids()
    assert checks, f"found no check (test_[tsbpm]NN_* functions) in {SUITE_DIR}/test_*.py"
    missing = sorted(set(checks) - set(build.check_ids()))
    assert not missing, (
        f"contract checks without a broken image: {missing}; add tests/broken_images/<check id>/Dockerfile "
        "(FROM the sample image, breaking exactly that rule) so the suite is shown to catch it"
    )
    orphans = sorted(set(build.check_ids()) - set(checks))
    assert not orphans, f"broken images for checks the suite does not have: {orphans}; rename or remove them"


@pytest.mark.parametrize("check_id", build.check_ids())
def test_broken_image_dir_is_one_small_patch(check_id: str) -> None:
    directory = BROKEN_DIR / check_id
    lines = (directory / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# Rule "), f"{directory}/Dockerfile must start with '# Rule N (...): what it breaks'"
    assert "ARG SAMPLE_IMAGE=sagemaker-emulator-sample:latest" in lines, f"{directory}/Dockerfile: no ARG SAMPLE_IMAGE"
    assert [ln for ln in lines if ln.startswith("FROM ")] == ["FROM ${SAMPLE_IMAGE}"], f"{directory}: one FROM"
    extra = sorted(p.name for p in directory.iterdir() if p.name != "Dockerfile")
    assert len(extra) <= 1, f"{directory}: at most one patch file besides the Dockerfile, found {extra}"


# -- with Docker -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("check_id", build.check_ids())
@pytest.mark.docker
@pytest.mark.slow
def test_broken_image_fails_its_check(check_id: str, suite_runs: SuiteRuns) -> None:
    run = suite_runs.result(("one", check_id))
    assert set(run.outcomes) == {check_id}, f"-k {check_id} selected {sorted(run.outcomes)}.\n{run.explain()}"
    assert_fails_with_fix(run, check_id)


@pytest.mark.parametrize("check_id", ISOLATED)
@pytest.mark.docker
@pytest.mark.slow
def test_broken_image_fails_only_its_check(check_id: str, suite_runs: SuiteRuns) -> None:
    run = suite_runs.result(("whole", check_id))
    assert_fails_with_fix(run, check_id)
    others = {n: o.status for n, o in run.outcomes.items() if n != check_id and not _passed_or_unclaimed(n, o)}
    assert not others, f"breaking only {check_id} also made other checks not pass: {others}.\n{run.explain()}"
    assert set(run.outcomes) >= set(suite_check_ids()), f"not every check ran.\n{run.explain()}"


@pytest.mark.docker
@pytest.mark.slow
def test_sample_image_passes_every_check(suite_runs: SuiteRuns) -> None:
    run = suite_runs.result(("whole", "sample"))
    not_passed = {
        n: f"{o.status}: {o.message.strip()[:500]}" for n, o in run.outcomes.items() if not _passed_or_unclaimed(n, o)
    }
    assert not not_passed, f"the sample algorithm does not pass every check: {not_passed}.\n{run.explain()}"
    assert set(run.outcomes) >= set(suite_check_ids()), f"not every check ran.\n{run.explain()}"


# -- one root cause per broken image: the owner fails, the checks that need the job are blocked by it ----------
#: What a cascade run selects: the checks that can own its root cause and some that need the job (not every one:
#: the rest are blocked the same way, and each costs a container).
SERVING_CASCADE = "t02 or t04 or s19 or s20 or s21 or s26 or s43 or s44 or b31"
TRAINING_CASCADE = "t01 or t02 or t04 or t05 or t08 or t09 or t10 or t11"


def _sample_config(work: Path, name: str, section: str, key: str, value: object) -> Path:
    """The sample's config with ``section.key`` set to ``value``, written to ``work/name``."""
    import yaml

    source = SUITE_DIR / "default_config.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data.setdefault(section, {})[key] = value
    target = work / name
    # Paths in a config are relative to its file: copy the sample's data beside it.
    (work / "data").symlink_to(SUITE_DIR / "data", target_is_directory=True)
    target.write_text(yaml.safe_dump(data), encoding="utf-8")
    return target


def _cascade_config(work: Path) -> Path:
    """The sample's config with training.max_runtime_s lowered (a `train` that never exits is stopped sooner)."""
    return _sample_config(work, "cascade-config.yaml", "training", "max_runtime_s", CASCADE_MAX_RUNTIME_S)


# -- the suite runs of the selected tests, started together, SUITE_RUNS_PARALLEL at a time -------------------------
#: Each suite run mostly waits (a container's start, Python's imports in it): two side by side take little more
#: wall time than one on 2 cores, and the 60-odd runs of this file about half.
SUITE_RUNS_PARALLEL = 2
#: Test name prefix -> the kind of suite run it needs (its parameter names the image).
_KINDS = {
    "test_broken_image_fails_its_check[": "one",
    "test_broken_image_fails_only_its_check[": "whole",
    "test_one_root_cause_one_failure[": "cascade",
}


class SuiteRuns:
    """The suite runs the selected tests need, each run once in a background pool; tests take their result."""

    def __init__(self, sample_image: str, factory: pytest.TempPathFactory, pids: set[int]) -> None:
        self.sample_image = sample_image
        self.factory = factory
        self.pids = pids
        self.pool = ThreadPoolExecutor(max_workers=SUITE_RUNS_PARALLEL, thread_name_prefix="teeth")
        self.futures: dict[tuple[str, str], Future[SuiteRun]] = {}

    def build(self, key: tuple[str, str]) -> str:
        """The image of ``key`` (built now if needed; builds happen in the test thread, one at a time)."""
        kind, name = key
        if name == "sample":
            return self.sample_image
        if kind == "cascade":
            try:
                return str(build.build_cascade_image(name, self.sample_image))
            except build.ImageBuildError as exc:
                pytest.fail(f"cannot build the cascade image {name}: {exc}")
        return _broken(name, self.sample_image)

    def start(self, key: tuple[str, str]) -> None:
        if key not in self.futures:
            image = self.build(key)
            self.futures[key] = self.pool.submit(self._run, key, image)

    def result(self, key: tuple[str, str]) -> SuiteRun:
        self.start(key)
        return self.futures[key].result()

    def _run(self, key: tuple[str, str], image: str) -> SuiteRun:
        kind, name = key
        work = self.factory.mktemp(f"{kind}-{name}")
        if kind == "one":
            claim = CLAIMED_FOR_TEETH.get(name)
            config = (
                ["--contract-config", str(_sample_config(work, "claims.yaml", "capabilities", claim, True))]
                if claim
                else []
            )
            return run_suite(image, work, self.pids, *config, "-k", name)
        if kind == "cascade":
            # The part of the suite that needs the broken job: training checks, or (ids naming `serve`, and
            # s-owners) serving and batch checks with t02 and t04.
            serving = build.owner(name).startswith("s") or "serve" in name
            select = SERVING_CASCADE if serving else TRAINING_CASCADE
            config_path = str(_cascade_config(work))
            return run_suite(image, work, self.pids, "--contract-config", config_path, "-k", select)
        return run_suite(image, work, self.pids)

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def suite_runs(
    sample_image: str,
    tmp_path_factory: pytest.TempPathFactory,
    emulator_pids: set[int],
    request: pytest.FixtureRequest,
) -> Iterator[SuiteRuns]:
    """Every suite run the selected tests of this file need, started at once in test order."""
    runs = SuiteRuns(sample_image, tmp_path_factory, emulator_pids)
    try:
        for item in request.session.items:
            param = getattr(item, "callspec", None)
            kind = next((k for prefix, k in _KINDS.items() if item.name.startswith(prefix)), None)
            if kind is not None and param is not None:
                runs.start((kind, str(next(iter(param.params.values())))))
            elif item.name == "test_sample_image_passes_every_check":
                runs.start(("whole", "sample"))
        yield runs
    finally:
        runs.close()


@pytest.mark.parametrize("cascade_id", build.cascade_ids())
@pytest.mark.docker
@pytest.mark.slow
def test_one_root_cause_one_failure(cascade_id: str, suite_runs: SuiteRuns) -> None:
    """A broken image the checks' own broken images do not cover: exactly one check fails, the one that owns the
    root cause, with that rule's fix; every check that needed the job is skipped as blocked by it."""
    owner = build.owner(cascade_id)
    run = suite_runs.result(("cascade", cascade_id))
    failed = {n: o for n, o in run.outcomes.items() if o.status in ("failed", "error")}
    [name] = [n for n in run.outcomes if n.startswith(f"test_{owner}_")] or [f"test_{owner}_?"]
    assert set(failed) == {name}, (
        f"{cascade_id} ({build.describe_cascade(cascade_id)}): expected only {name} to fail, got "
        f"{ {n: o.message.strip().splitlines()[0][:200] for n, o in failed.items()} }.\n{run.explain()}"
    )
    assert_fails_with_fix(run, name)
    blocked = [n for n, o in run.outcomes.items() if o.status == "skipped" and f"blocked by [{owner}]" in o.message]
    assert blocked, f"no check was reported blocked by [{owner}] on {cascade_id}.\n{run.explain()}"
    wrong = {
        n: o.message.strip()[:200]
        for n, o in run.outcomes.items()
        if o.status == "skipped" and "blocked by [" in o.message and f"blocked by [{owner}]" not in o.message
    }
    assert not wrong, f"checks blocked by another root cause than [{owner}]: {wrong}.\n{run.explain()}"
