"""This process's session: the shared resources, its id, the labels of everything it creates, the last-resort sweep.

A :class:`Session` holds what every job of a process shares: the config, one Docker client and one S3 (both made
on first use) and is closed once, at the end.

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
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_JOB, LABEL_KIND, LABEL_MANAGED, LABEL_PID, LABEL_SESSION

if TYPE_CHECKING:
    from emulator.runtime.docker import DockerSeam
    from emulator.storage.s3 import S3

logger = logging.getLogger(__name__)

#: 32 random hex digits (os.urandom: uuid and secrets would add ~8 ms to every command's start).
SESSION_ID = os.urandom(16).hex()
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
    return os.urandom(3).hex()


class Session:
    """What every job of one process shares: the config, one Docker client, one S3; close it once at the end.

    ``docker`` and ``s3`` may be given (a fake seam in unit tests, an S3 the caller owns); what the session makes
    itself it closes in :meth:`close`. Thread-safe: jobs running at once share it.

    >>> with Session(EmulatorConfig()) as session:
    ...     session.config.region
    'us-east-1'
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, docker: DockerSeam | None = None, s3: S3 | None = None
    ) -> None:
        self.config = config or EmulatorConfig()
        self._docker = docker
        self._s3 = s3
        self._own_docker = docker is None
        self._own_s3 = s3 is None
        self._lock = threading.Lock()

    @classmethod
    def of(
        cls,
        session: Session | None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
    ) -> tuple[Session, bool]:
        """``session`` if given, else a new one from the other arguments; and whether the caller owns (closes) it."""
        if session is not None:
            return session, False
        return cls(config, docker=docker, s3=s3), True

    @property
    def docker(self) -> DockerSeam:
        """The process's Docker client (connects on first use).

        Raises:
            DockerUnavailable: no engine answers.
        """
        with self._lock:
            if self._docker is None:
                from emulator.runtime.remote import client

                self._docker = client(self.config)
            return self._docker

    @property
    def s3(self) -> S3:
        """The process's S3 (a moto server on 127.0.0.1 started on first use, or ``config.s3_endpoint_url``)."""
        with self._lock:
            if self._s3 is None:
                from emulator.storage.s3 import S3

                self._s3 = S3(self.config)
            return self._s3

    def close(self) -> None:
        """Close what the session made (the Docker client, the S3 server); idempotent."""
        with self._lock:
            docker, s3 = (self._docker if self._own_docker else None), (self._s3 if self._own_s3 else None)
            if self._own_docker:
                self._docker = None
            if self._own_s3:
                self._s3 = None
        if s3 is not None:
            s3.close()
        if docker is not None:
            docker.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
