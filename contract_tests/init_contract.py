"""``python -m emulator init-contract``: write a commented starter contract config for the suite.

The command lives with the suite (the emulator never imports its own test suite): the emulator's CLI finds
it through the ``sagemaker_emulator.commands`` entry point group, where ``pyproject.toml`` registers
:func:`add_command`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from contract_tests.config import PLACEHOLDER, starter_yaml
from emulator.config import EmulatorConfig
from emulator.errors import EXIT_OK, InvalidSpec

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_command(sub: SubParsers) -> None:
    """Register ``init-contract`` with the emulator's CLI (its handler is :func:`run`)."""
    p = sub.add_parser(
        "init-contract",
        help="write a commented starter config for the contract suite (pytest --image)",
        description="Write a commented starter contract config (YAML) for the contract suite: "
        "'pytest --image IMAGE --contract-config FILE'. Edit it to describe your image's sample data, "
        "requests and capabilities (docs/contract-suite.md): the suite refuses to start while a "
        "'<FILL IN: ...>' placeholder is left.",
    )
    p.add_argument(
        "path", nargs="?", default="contract.yaml", help="where to write it (default: contract.yaml; '-' for stdout)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Write the starter (to stdout for ``-``); an existing file is kept unless ``--force``.

    The suite is not part of the CLI, so it writes to ``sys.stdout`` rather than ``print`` (ruff T20).
    """
    text = starter_yaml()
    if args.path == "-":
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(args.path)
    if path.exists() and not args.force:
        raise InvalidSpec(f"{path} exists already; pass --force to overwrite it, or name another file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    left = sum(len(PLACEHOLDER.findall(ln)) for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    sys.stdout.write(
        f"wrote {path}; replace its {left} '<FILL IN: ...>' placeholders with your image's values, then run: "
        f"pytest --image IMAGE --contract-config {path}\n"
    )
    return EXIT_OK
