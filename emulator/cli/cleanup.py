"""``cleanup``: remove the containers and networks the emulator left behind (by label, nothing else), and the
temp folders of emulator processes that were killed (their names carry the owner's pid)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from emulator import errors
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers


def add_command(sub: SubParsers) -> None:
    """Register ``cleanup``."""
    p = sub.add_parser(
        "cleanup",
        help="remove containers, networks, temp folders left behind",
        description="Remove containers and networks labelled sagemaker-emulator.managed=true, and the "
        "sm-emulator-*-p<PID>-* temp folders (under SM_EMULATOR_WORK_DIR and the system temp dir) whose process "
        "is gone; nothing else. Resources of emulator processes still running are kept unless --all is given.",
    )
    p.add_argument("--all", action="store_true", help="also remove resources of emulator processes still running")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: EmulatorConfig) -> int:
    """Sweep (or list, with --dry-run) and print one line per resource."""
    from emulator.runtime.sweep import sweep, sweep_work_dirs, work_dir_roots

    # Folders first: they need no engine, so a cleanup without Docker still removes them before it fails.
    folders = sweep_work_dirs(work_dir_roots(config), include_running_sessions=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for kind, ident, name in folders:
        print(f"{verb} {kind} {ident} {name}")
    removed = [*folders, *sweep(config, include_running_sessions=args.all, dry_run=args.dry_run)]
    for kind, ident, name in removed[len(folders) :]:
        print(f"{verb} {kind} {ident if kind == 'volume' else ident[:12]} {name}")  # a volume's id is its name
    print(f"{verb} {len(removed)} resource(s)")
    return errors.EXIT_OK
