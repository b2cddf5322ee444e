"""This process's session: its id, the labels of everything it creates, and the last-resort sweep.

Job modules register each container and network they create and unregister it once removed; an
``atexit`` hook removes whatever is still registered (a crash, an unhandled exception), so a process that
ends never leaves its containers behind. ``python -m emulator cleanup`` sweeps other sessions' leftovers.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import secrets
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_KIND, LABEL_MANAGED, LABEL_PID, LABEL_SESSION

logger = logging.getLogger(__name__)

SESSION_ID = uuid.uuid4().hex
_live: dict[str, tuple[Any, str]] = {}  # id -> (docker client, "container" | "network")
_lock = threading.Lock()


def labels(kind: str, job: str) -> dict[str, str]:
    """The labels every container and network of a job carries."""
    return {
        LABEL_MANAGED: "true",
        LABEL_SESSION: SESSION_ID,
        LABEL_KIND: kind,
        LABEL_JOB: job,
        LABEL_PID: str(os.getpid()),
    }


def register(docker: Any, resource_id: str, what: str) -> None:
    """Remember a created container or network until :func:`unregister`."""
    with _lock:
        _live[resource_id] = (docker, what)


def unregister(resource_id: str) -> None:
    """Forget a resource that has been removed."""
    with _lock:
        _live.pop(resource_id, None)


@atexit.register
def _sweep() -> None:
    with _lock:
        items = list(_live.items())
        _live.clear()
    for resource_id, (docker, what) in sorted(items, key=lambda kv: kv[1][1]):  # containers before networks
        with contextlib.suppress(Exception):  # the interpreter is exiting: best effort
            (docker.remove if what == "container" else docker.remove_network)(resource_id)


def now() -> datetime:
    """An aware UTC timestamp, as boto3 returns them."""
    return datetime.now(UTC)


def job_name(prefix: str) -> str:
    """A fresh job name in SageMaker's pattern, like the SDK's ``<prefix>-YYYY-mm-dd-HH-MM-SS-mmm``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S-%f")[:-3]
    clean = re.sub(r"[^a-zA-Z0-9-]", "-", prefix).strip("-")[: 63 - len(stamp) - 1] or "job"
    return f"{clean}-{stamp}"


def arn(config: EmulatorConfig, resource: str, name: str) -> str:
    """``arn:aws:sagemaker:<region>:<account>:<resource>/<name>`` (lower-cased like the platform's)."""
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:{resource}/{name.lower()}"


def short_token() -> str:
    """A short random token for unique container and network names."""
    return secrets.token_hex(3)
