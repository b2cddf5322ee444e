"""The CLI's shape (one module per command, extra commands from an entry point) and the suite's boundary.

No engine: the commands are only parsed, and init-contract writes a file under tmp_path.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from emulator.cli import app

REPO = Path(__file__).resolve().parents[2]
BUILT_IN = ["train", "tune", "serve", "invoke", "transform", "process", "pipeline", "cleanup", "s3-server"]


def _imports(path: Path) -> list[str]:
    """Every module a file imports, with ``from X import a`` also giving ``X.a`` (to catch private names)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def test_help_lists_every_command_and_init_contract() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "emulator", "--help"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()]
    assert listed[: len(BUILT_IN)] == BUILT_IN
    assert "init-contract" in listed
    assert "exit codes: 0 success" in out


@pytest.mark.parametrize("command", [*BUILT_IN, "init-contract"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        app.main([command, "--help"])
    assert exc.value.code == 0
    assert f"python -m emulator {command}" in capsys.readouterr().out


def test_the_library_never_imports_the_cli_or_the_suite() -> None:
    for path in (REPO / "emulator").rglob("*.py"):
        modules = _imports(path)
        assert not [m for m in modules if m.split(".")[0] == "contract_tests"], path
        inside = path.relative_to(REPO / "emulator").parts
        if inside[0] != "cli" and inside != ("__main__.py",):  # python -m emulator runs the CLI
            assert not [m for m in modules if m.startswith("emulator.cli")], path


def test_command_modules_do_not_import_app() -> None:
    for path in (REPO / "emulator" / "cli").glob("*.py"):
        if path.name not in ("app.py", "__init__.py"):
            assert "emulator.cli.app" not in _imports(path), path
            assert "emulator.cli.main" not in _imports(path), path


def test_the_suite_uses_only_the_public_api() -> None:
    for path in (REPO / "contract_tests").glob("*.py"):
        emulator_names = [m for m in _imports(path) if m.split(".")[0] == "emulator"]
        private = [m for m in emulator_names if any(part.startswith("_") for part in m.split("."))]
        assert not private, (path, private)
        assert "emulator.runtime.session" not in emulator_names, path
        assert "emulator.runtime.docker.DockerClient" not in emulator_names, path
        assert "emulator.runtime.docker.ContainerSpec" not in emulator_names, path


def test_init_contract_writes_refuses_and_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sub" / "contract.yaml"
    assert app.main(["init-contract", str(target)]) == 0
    assert target.read_text(encoding="utf-8").startswith("# SageMaker contract suite config")
    assert f"wrote {target}" in capsys.readouterr().out
    assert app.main(["init-contract", str(target)]) == 2
    assert "exists already; pass --force" in capsys.readouterr().err
    assert app.main(["init-contract", str(target), "--force"]) == 0
    capsys.readouterr()
    assert app.main(["init-contract", "-"]) == 0
    assert capsys.readouterr().out == target.read_text(encoding="utf-8")


def test_a_broken_plugin_command_does_not_break_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = EntryPoint("broken", "no_such_module_xyz:add_command", app.COMMANDS_GROUP)
    monkeypatch.setattr(app, "entry_points", lambda group: [broken])
    parser = app.build_parser()
    assert "ignoring the 'broken' command" in capsys.readouterr().err
    assert parser.parse_args(["cleanup", "--dry-run"]).handler is not None


def test_a_built_in_command_does_not_load_the_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[str] = []

    def record(group: str) -> list[EntryPoint]:
        looked.append(group)
        return []

    monkeypatch.setattr(app, "entry_points", record)
    app.build_parser(["--verbose", "train", "--image", "x"])  # the command is the first non-option
    assert looked == []
    for line in (["init-contract"], ["--help"], ["no-such-command"], []):
        app.build_parser(line)
    assert looked == [app.COMMANDS_GROUP] * 4
