"""``python -m emulator`` / ``sagemaker-emulator``: a thin shell over the library.

Each subcommand parses flags, builds the SageMaker request and an EmulatorConfig, makes one library call,
prints the result and returns an exit code: 0 success, 1 the job failed or was stopped, 2 bad input,
3 no Docker engine, 130 interrupted.

The commands are the modules in :data:`COMMANDS`, plus those other installed packages offer in the
``sagemaker_emulator.commands`` entry point group (the contract suite's ``init-contract``): each is an
``add_command(sub)`` that adds a parser and sets its ``handler`` (see :mod:`emulator.cli.options`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from emulator import errors
from emulator.cli.options import EPILOG
from emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from emulator.cli.options import SubParsers

#: The entry point group other packages register commands in: ``name = "module:add_command"``.
COMMANDS_GROUP = "sagemaker_emulator.commands"

AddCommand = Callable[["SubParsers"], None]

#: The built-in commands, in the order ``--help`` lists them: name -> the module whose ``add_command`` adds it.
#: A command line naming one imports only that module (each command's imports stay out of the others' start).
COMMANDS: dict[str, str] = {
    "train": "emulator.cli.train",
    "tune": "emulator.cli.tune",
    "serve": "emulator.cli.serve",
    "invoke": "emulator.cli.invoke",
    "transform": "emulator.cli.transform",
    "process": "emulator.cli.process",
    "pipeline": "emulator.cli.pipeline",
    "cleanup": "emulator.cli.cleanup",
    "s3-server": "emulator.cli.s3_server",
    "api-server": "emulator.cli.api_server",
}


def built_in(name: str) -> AddCommand:
    """The ``add_command`` of the built-in command ``name``."""
    add: AddCommand = importlib.import_module(COMMANDS[name]).add_command
    return add


def entry_points(group: str) -> Any:
    """``importlib.metadata.entry_points``, imported on first use: ~80 ms a built-in command does not need."""
    from importlib.metadata import entry_points as installed

    return installed(group=group)


def plugin_commands() -> list[AddCommand]:
    """The ``add_command`` of each command installed packages register in :data:`COMMANDS_GROUP`, by name."""
    found: list[AddCommand] = []
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            found.append(ep.load())
        except Exception as exc:  # a broken plugin must not take the built-in commands down with it
            print(f"warning: ignoring the {ep.name!r} command ({COMMANDS_GROUP}: {ep.value}): {exc}", file=sys.stderr)
    return found


def build_parser(command_line: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's argument parser (exposed for docs and tests).

    With ``command_line`` naming a built-in command, only that command's parser is built: no other command's
    module and no plugin command is imported (the contract suite's imports pytest), since they would only slow
    that command's start. Without it, or for anything else (``--help``, a plugin's command, a typo), every
    command is there.
    """
    parser = _Parser(
        prog="python -m emulator",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A local SageMaker for bring-your-own-container images: training jobs, endpoints, batch "
        "transform, processing jobs and pipelines on your Docker engine, with SageMaker's own request "
        "and response shapes.",
        epilog=EPILOG + "\nrun 'python -m emulator COMMAND --help' for a command's flags and examples",
    )
    # Subcommands are _Parser too (argparse makes them of the parent's class); typed as the plain parser they are.
    sub: SubParsers = parser.add_subparsers(  # type: ignore[assignment]
        dest="command", metavar="COMMAND", required=True
    )
    named = _named_command(command_line) if command_line is not None else None
    if named in COMMANDS:  # only that command's parser: its --help and errors need no other
        built_in(named)(sub)
        return parser
    for name in COMMANDS:
        built_in(name)(sub)
    for add in plugin_commands():
        try:
            add(sub)
        except Exception as exc:  # e.g. a name the built-in commands already use
            print(f"warning: ignoring the command of {getattr(add, '__module__', add)}: {exc}", file=sys.stderr)
    return parser


def _named_command(command_line: Sequence[str]) -> str | None:
    """The command a command line names: its first argument that is not an option."""
    return next((arg for arg in command_line if not arg.startswith("-")), None)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the problem and the fix (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(errors.EXIT_BAD_INPUT, f"error: {message}; see '{self.prog} --help'\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a command started (imports, parsing): nothing to clean up
        print("interrupted", file=sys.stderr)
        return errors.EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    for noisy in ("urllib3", "docker", "botocore", "boto3", "s3transfer", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        config = EmulatorConfig.from_env(
            keep_containers=getattr(args, "keep_containers", None),
            s3_endpoint_url=getattr(args, "s3_endpoint", None),
            allow_cpu_for_gpu=getattr(args, "allow_cpu_for_gpu", None),
        )
        code: int = args.handler(args, config)
        return code
    except errors.EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):
            print(note, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: everything the emulator started has been removed", file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into `head`: not an error of the job
        sys.stderr.close()
        return errors.EXIT_OK


def threading_main() -> bool:
    """True in the main thread (where signal handlers may be set)."""
    return threading.current_thread() is threading.main_thread() and os.name == "posix"


if __name__ == "__main__":
    sys.exit(main())
