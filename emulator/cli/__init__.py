"""``python -m emulator`` / ``sagemaker-emulator``: one module per command group, ``app`` builds the parser."""

from emulator.cli.app import main

__all__ = ["main"]
