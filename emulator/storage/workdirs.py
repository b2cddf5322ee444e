"""The emulator's temp folders: ``sm-emulator-<what>-p<pid>-XXXXXXXX``, so that a later ``cleanup`` can tell whose.

Every job removes its folder on every path (success, failure, stop, an engine fault). Only a process that is
killed (SIGKILL, a power cut) leaves one behind; the owning pid in the name lets ``python -m emulator cleanup``
(:func:`emulator.runtime.sweep.sweep_work_dirs`) remove exactly the folders whose process is gone.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

PREFIX = "sm-emulator-"
_OWNED = re.compile(rf"^{re.escape(PREFIX)}.*-p(\d+)-[a-z0-9_]+$")


def make_work_dir(what: str, base: str | os.PathLike[str] | None = None) -> Path:
    """A fresh private folder under ``base`` (default: the system temp dir) named after ``what`` and this pid."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{what}-p{os.getpid()}-", dir=base))


def owner_pid(name: str) -> int | None:
    """The pid encoded in a work folder's name; None for a name this module did not make."""
    found = _OWNED.match(name)
    return int(found.group(1)) if found else None
