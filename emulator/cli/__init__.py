"""``python -m emulator`` / ``sagemaker-emulator``: one module per command, ``app`` builds the parser.

Nothing in the library imports this package; it only calls the library.
"""

from emulator.cli.app import main

__all__ = ["main"]
