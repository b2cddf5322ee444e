"""Live sync of a container dir to a location while a job runs: the platform's checkpoint contract.

SageMaker copies ``CheckpointConfig.S3Uri`` into ``LocalPath`` at the start (the runner's seeds), then keeps S3 in
step with ``LocalPath`` while the job runs: new and changed files are uploaded, deleted ones deleted. Here every
host's dir is read through Docker's archive API every ``interval_s`` seconds (a running container can be read; no
bind mount, so no root-owned file ever lands on the host) and once more after the containers exit, before they
are removed: the final pass runs after a success, a failure, a stop and a SIGKILL alike.

A file is sent when its content differs from what the location holds as far as the sync knows (the seeds, then
what it sent); a file that every host has lost is deleted at the location. Only files the sync knows are
deleted: what others put at the location after the start is left alone. With several hosts one location serves
them all (the platform says to name files per host); the last host's file of a name wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from emulator.constants import CHECKPOINT_SYNC_BACKOFF
from emulator.runtime.plan import Sync
from emulator.storage.artifacts import iter_members
from emulator.storage.locations import Storage
from emulator.storage.s3 import join_uri

logger = logging.getLogger(__name__)

#: host index, container path -> a ``get_archive`` tar stream of that path on that host.
ArchiveOf = Callable[[int, str], Iterable[bytes]]


def digest(data: bytes) -> str:
    """The content key the sync compares files by."""
    return hashlib.sha256(data).hexdigest()


class LiveSync:
    """Keeps each :class:`~emulator.runtime.plan.Sync` of a plan in step while the job runs, then once more.

    ``seeded``: container path -> content of the files written into every host before the start (they are at the
    location already). ``work``: a private dir for the files in transit.
    """

    def __init__(
        self,
        syncs: Sequence[Sync],
        hosts: int,
        storage: Storage,
        work: Path,
        interval_s: float,
        seeded: Mapping[str, bytes],
    ) -> None:
        self._syncs = list(syncs)
        self._hosts = hosts
        self._storage = storage
        self._work = work
        self._interval = interval_s
        self._sent: list[dict[str, str]] = []
        for sync in self._syncs:
            root = sync.container_path.rstrip("/") + "/"
            self._sent.append({p[len(root) :]: digest(data) for p, data in seeded.items() if p.startswith(root)})
        self._lock = threading.Lock()  # one pass at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Passes done and files sent or deleted (the tests and the logs read them).
        self.passes = 0
        self.sent = 0
        self.deleted = 0

    @contextlib.contextmanager
    def running(self, archive: ArchiveOf) -> Iterator[None]:
        """A background thread runs a pass every interval until the block ends (nothing without syncs)."""
        if self._syncs:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, args=(archive,), name="checkpoint-sync", daemon=True)
            self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
                self._thread = None

    def _loop(self, archive: ArchiveOf) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            began = time.monotonic()
            try:
                self.sync_once(archive)
            except Exception as exc:  # the final pass reports what is still wrong; the job goes on
                logger.warning("checkpoint sync: %s (tried again in %gs)", exc, self._interval)
            # A slow pass (large checkpoints) spaces the next one out, so that syncing never dominates the job.
            wait = max(self._interval, CHECKPOINT_SYNC_BACKOFF * (time.monotonic() - began))

    def finish(self, archive: ArchiveOf) -> dict[str, str]:
        """The final pass, after the containers exited; sync name -> location. Errors are raised."""
        self.sync_once(archive)
        return {sync.name: sync.location for sync in self._syncs}

    def sync_once(self, archive: ArchiveOf) -> None:
        """One pass over every sync: read every host's dir, send what changed, delete what every host lost."""
        with self._lock:
            for sync, sent in zip(self._syncs, self._sent, strict=True):
                staging = self._work / f"sync-{sync.name}-{self.passes}"
                try:
                    self._pass(sync, sent, archive, staging)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
            self.passes += 1

    def _pass(self, sync: Sync, sent: dict[str, str], archive: ArchiveOf, staging: Path) -> None:
        found: dict[str, tuple[str, Path]] = {}
        complete = True
        for host in range(self._hosts):
            files = _read_files(archive(host, sync.container_path), staging / str(host))
            if files is None:
                complete = False  # no such dir on this host (yet): what it holds is unknown, delete nothing
                continue
            found.update(files)
        for rel, (key, path) in sorted(found.items()):
            if sent.get(rel) != key:
                self._storage.put_file(path, join_uri(sync.location, rel))
                sent[rel] = key
                self.sent += 1
        if complete:
            for rel in sorted(set(sent) - set(found)):
                self._storage.delete(join_uri(sync.location, rel))
                del sent[rel]
                self.deleted += 1


def _read_files(stream: Iterable[bytes], target: Path) -> dict[str, tuple[str, Path]] | None:
    """The regular files of a ``get_archive`` stream of a dir: relative path -> (digest, copy under ``target``).

    None when the stream is empty (the dir does not exist). Symlinks are not followed, as on the platform.
    """
    files: dict[str, tuple[str, Path]] = {}
    any_entry = False
    for member, tf in iter_members(stream):
        any_entry = True
        rel = member.name.split("/", 1)[1] if "/" in member.name else ""
        if not rel or not member.isfile():
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        src = tf.extractfile(member)
        with open(dest, "wb") as out:
            while src is not None and (chunk := src.read(1 << 20)):
                hasher.update(chunk)
                out.write(chunk)
        files[rel] = (hasher.hexdigest(), dest)
    return files if any_entry else None
