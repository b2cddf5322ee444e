"""Pipe mode: a channel's data streamed into FIFOs, ``<channel>_0``, ``<channel>_1``, ... one per epoch.

The FIFO of epoch 0 is in the container before it starts (``ContainerSpec.fifos``). A :class:`PipeFeeder`
thread per host and channel waits for the container to run, then feeds each epoch through ``docker exec`` as
root (``cat`` with the epoch's bytes on its stdin, over the engine's API, so a remote engine works as a local
one): ``cat`` blocks until the training opens the FIFO, writes the epoch, and exits when it is all written; only
then is the next epoch's FIFO made (``mkfifo``) and fed, so ``<channel>_<N+1>`` appears when the container has
read (up to the pipe's buffer) epoch N, and the platform's advice "retry until the next FIFO exists" holds. The
image needs ``sh``, ``cat`` and ``mkfifo`` (every Debian, Alpine or busybox based image has them).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from emulator.runtime.container import LogSink, default_log_sink
from emulator.runtime.docker import DockerSeam
from emulator.runtime.plan import DataInput
from emulator.storage.s3 import S3
from emulator.storage.staging import epoch_stream, stage_augmented_manifest, stage_data, staged_files

logger = logging.getLogger(__name__)

#: Made the FIFO when it is not there yet, then the epoch's bytes (stdin) into it.
_FEED = '[ -p "$1" ] || mkfifo -m 644 "$1" || exit 97; exec cat > "$1"'
#: Exit codes that mean the image cannot be fed: mkfifo failed (97), no sh/cat/mkfifo (126, 127).
_CANNOT_FEED = frozenset({97, 126, 127})
#: How often a feeder looks whether its container runs yet (it is created, then started by the cluster).
_POLL_S = 0.05


def pipe_path(channel_dir: str, epoch: int) -> str:
    """The FIFO of ``epoch``: ``/opt/ml/input/data/train`` -> ``/opt/ml/input/data/train_0``."""
    return f"{channel_dir}_{epoch}"


class PipeFeeder:
    """Feeds one channel's FIFOs on one host, epoch after epoch, until the container exits or :meth:`close`."""

    def __init__(
        self,
        docker: DockerSeam,
        container_id: str,
        channel_dir: str,
        epoch: Callable[[], Iterable[bytes]],
        *,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._docker = docker
        self._id = container_id
        self._dir = channel_dir
        self._epoch = epoch
        self._warn = warn or logger.warning
        self._closed = threading.Event()
        #: Epochs fully written (for tests and logs).
        self.epochs_fed = 0
        self._thread = threading.Thread(target=self._run, name=f"pipe {channel_dir}", daemon=True)

    def start(self) -> None:
        """Begin feeding in the background (the container may still be about to start)."""
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the current epoch (the container's exit ends it at once); wait up to ``timeout_s``."""
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _running(self) -> bool:
        """Wait until the container runs; False if it exited (or never will) first."""
        while not self._closed.is_set():
            try:
                status = self._docker.state(self._id).status
            except Exception:  # the engine or the container is gone: nothing to feed
                return False
            if status == "running":
                return True
            if status != "created":
                return False
            time.sleep(_POLL_S)
        return False

    def _run(self) -> None:
        if not self._running():
            return
        epoch = 0
        while not self._closed.is_set():
            path = pipe_path(self._dir, epoch)
            code = self._docker.exec_stdin(self._id, ["sh", "-c", _FEED, "sh", path], self._epoch())
            if code is None:
                return  # the container stopped
            if code in _CANNOT_FEED:
                if self._docker.state(self._id).status == "running":
                    self._warn(
                        f"sagemaker-emulator: Pipe mode could not feed {path} (exit code {code}): the image needs "
                        "sh, cat and mkfifo for the emulator to make and fill its FIFOs"
                    )
                return
            if code == 0:
                self.epochs_fed += 1
            # else the training closed the FIFO before its end (allowed): the next epoch comes all the same
            epoch += 1


#: One host's Pipe channels: (the channel's dir, what one epoch streams).
Feeds = list[tuple[str, Callable[[], Iterable[bytes]]]]


def stage_pipe(item: DataInput, work: Path, s3: S3, hosts: int) -> list[Callable[[], Iterable[bytes]]]:
    """For each host, what one epoch of a Pipe channel streams (called once per epoch); the data is staged under
    ``work`` first. With ShuffleConfig (``item.shuffle_seed``) see :class:`ShuffledEpochs`."""
    # Shuffled and sharded, an object may go to any host in a later epoch: every host's epochs draw on one copy.
    across = item.shuffle_seed is not None and item.sharded and hosts > 1
    staged, sharded = (1, False) if across else (hosts, item.sharded)
    if item.data_type == "AugmentedManifestFile":
        per_host = stage_augmented_manifest(
            item.uri, work, s3, staged, item.attributes, what=item.what, sharded=sharded
        )
        gunzip, size = False, len(item.attributes)  # each record as stored; a line's records stay together
    else:
        mounts = stage_data(
            item.uri, item.container_path, work, s3, staged, what=item.what, data_type=item.data_type,
            sharded=sharded,
        )  # fmt: skip
        per_host, gunzip, size = staged_files(mounts), item.gunzip, 1
    if item.shuffle_seed is None:
        return [functools.partial(epoch_stream, files, gunzip=gunzip, record_io=item.record_io) for files in per_host]
    units = [[tuple(files[i : i + size]) for i in range(0, len(files), size)] for files in per_host]
    if across:
        return [ShuffledEpochs(units[0], item.shuffle_seed, gunzip, item.record_io, h, hosts) for h in range(hosts)]
    return [ShuffledEpochs(u, item.shuffle_seed, gunzip, item.record_io) for u in units]


class ShuffledEpochs:
    """The epochs of a Pipe channel with ShuffleConfig on one host: each call is the next epoch, its units (an
    object, or the records of one augmented manifest line) in an order drawn from the Seed and the epoch number,
    so every run of the job streams the same sequence; with ``hosts`` > 1 (ShardedByS3Key) this host's share
    (every ``hosts``-th unit from ``host``) of the epoch's order, dealt out anew each epoch."""

    def __init__(
        self,
        units: Sequence[tuple[Path, ...]],
        seed: int,
        gunzip: bool,
        record_io: bool,
        host: int = 0,
        hosts: int = 1,
    ) -> None:
        self._units, self._seed, self._gunzip, self._record_io = list(units), seed, gunzip, record_io
        self._host, self._hosts = host, hosts
        self.epoch = 0

    def order(self, epoch: int) -> list[tuple[Path, ...]]:
        """This host's units of ``epoch``, in the order they stream."""
        units = list(self._units)
        random.Random(f"{self._seed}:{epoch}").shuffle(units)
        return units[self._host :: self._hosts]

    def __call__(self) -> Iterable[bytes]:
        files = [path for unit in self.order(self.epoch) for path in unit]
        self.epoch += 1
        return epoch_stream(files, gunzip=self._gunzip, record_io=self._record_io)


@contextlib.contextmanager
def feeding(
    docker: DockerSeam,
    container_ids: list[str],
    feeds: list[Feeds],
    hosts: Sequence[str] = (),
    sink: LogSink | None = None,
) -> Iterator[list[PipeFeeder]]:
    """A :class:`PipeFeeder` for every host's Pipe channel (hosts in the order of ``container_ids``), running
    while the block runs (it starts the containers) and closed after it. What keeps a FIFO from being fed is said
    in the job's log (``sink``), under the host's name (``hosts``)."""
    say = sink or default_log_sink
    names = list(hosts) or [f"host-{i}" for i in range(len(container_ids))]
    feeders = [
        PipeFeeder(docker, cid, channel_dir, epoch, warn=functools.partial(say, name))
        for cid, name, host_feeds in zip(container_ids, names, feeds, strict=True)
        for channel_dir, epoch in host_feeds
    ]
    for feeder in feeders:
        feeder.start()
    try:
        yield feeders
    finally:
        for feeder in feeders:
            feeder.close()
