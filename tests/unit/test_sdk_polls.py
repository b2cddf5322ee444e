"""emulator.sdk_polls against a stand-in ``sagemaker`` package: the SDK's sleeps are capped, its clock kept in step,
the pipeline waiter keeps its overall limit, and undo puts everything back. No SDK and no engine needed."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import sdk_polls


class _FakeExecution:
    calls: list[tuple[float, int]] = []

    def wait(self, delay: float = 30, max_attempts: int = 60) -> str:
        _FakeExecution.calls.append((delay, max_attempts))
        return "waited"


@pytest.fixture
def fake_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """``sagemaker.session`` (with ``time``) and ``sagemaker.workflow.pipeline._PipelineExecution``."""
    session = types.ModuleType("sagemaker.session")
    session.time = time  # type: ignore[attr-defined]
    pipeline = types.ModuleType("sagemaker.workflow.pipeline")
    pipeline._PipelineExecution = _FakeExecution  # type: ignore[attr-defined]
    modules = {
        "sagemaker": types.ModuleType("sagemaker"),
        "sagemaker.session": session,
        "sagemaker.workflow": types.ModuleType("sagemaker.workflow"),
        "sagemaker.workflow.pipeline": pipeline,
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    _FakeExecution.calls = []
    original_wait = _FakeExecution.wait
    yield session
    _FakeExecution.wait = original_wait  # type: ignore[method-assign]


def test_sleeps_are_capped_and_the_clock_runs_ahead(fake_sdk: Any) -> None:
    with sdk_polls.fast_polls(0.01):
        clock = fake_sdk.time
        before = clock.time()
        started = time.monotonic()
        clock.sleep(10)
        clock.sleep(0.001)  # under the cap: slept as asked, nothing skipped
        assert time.monotonic() - started < 1
        assert clock.time() - before >= 10  # the SDK's 30 s Describe rule sees the full interval
        assert clock.strftime("%Y") == time.strftime("%Y")  # the rest of ``time`` unchanged
    assert fake_sdk.time is time


def test_pipeline_wait_keeps_its_overall_limit(fake_sdk: Any) -> None:
    execution = _FakeExecution()
    handle = sdk_polls.fast_polls(0.5)
    assert execution.wait() == "waited"
    execution.wait(delay=0.2, max_attempts=7)  # already short: left alone
    handle.undo()
    execution.wait()
    assert _FakeExecution.calls == [(0.5, 3600), (0.2, 7), (30, 60)]


def test_switching_on_twice_does_not_stack(fake_sdk: Any) -> None:
    first = sdk_polls.fast_polls(0.5)
    second = sdk_polls.fast_polls(0.25)
    _FakeExecution().wait()
    assert _FakeExecution.calls == [(0.25, 7200)]
    assert fake_sdk.time._real is time
    second.undo()
    first.undo()
    assert fake_sdk.time is time


def test_a_cap_must_be_positive(fake_sdk: Any) -> None:
    with pytest.raises(ValueError, match="positive"):
        sdk_polls.fast_polls(0)


def test_the_emulator_never_imports_it_and_it_imports_no_sdk_until_switched_on() -> None:
    probe = (
        "import sys, emulator; assert 'emulator.sdk_polls' not in sys.modules; "
        "import emulator.sdk_polls; assert 'sagemaker' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
    package = Path(sdk_polls.__file__).parent
    importers = [p for p in package.rglob("*.py") if p.name != "sdk_polls.py" and "sdk_polls" in p.read_text()]
    assert importers == []
