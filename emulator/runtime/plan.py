"""Plans: what a job will do, decided before anything runs.

Each container job kind (training, processing) turns its request into a :class:`JobPlan` with a pure function
(defaults applied once, every check done, the hosts and each host's container spec with its /opt/ml files); the
:class:`~emulator.runtime.runner.PlanRunner` executes any plan; a pure function of the kind builds the Describe
result from the plan and the :class:`~emulator.runtime.runner.RunResult`. Plans are values: unit tests check them
without an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from emulator.runtime.docker import ContainerSpec


@dataclass(frozen=True)
class DataInput:
    """Data that staging brings to ``container_path`` (mounted read-only) on every host, or a shard per host."""

    uri: str
    container_path: str
    what: str
    data_type: str = "S3Prefix"
    sharded: bool = False
    #: File (FastFile: the same read-only mount) or Pipe (streamed into FIFOs, see runtime/pipes.py).
    mode: str = "File"
    #: CompressionType Gzip: File mode stages the objects decompressed; Pipe mode streams them decompressed.
    gunzip: bool = False
    #: RecordWrapperType RecordIO (Pipe mode): each object (or augmented manifest attribute) one RecordIO record.
    record_io: bool = False
    #: AugmentedManifestFile's AttributeNames, in order.
    attributes: tuple[str, ...] = ()
    #: The hosts (indexes into :attr:`JobPlan.hosts`) that get it, sharded among themselves; None: every host
    #: (a training channel's InstanceGroupNames reach only the hosts of those groups).
    hosts: tuple[int, ...] | None = None
    #: ShuffleConfig.Seed (Pipe mode): every epoch streams the objects in an order drawn from it and the epoch;
    #: sharded, each epoch's order is dealt out among the hosts anew (data moves across hosts between epochs).
    shuffle_seed: int | None = None


@dataclass(frozen=True)
class Seed:
    """Files copied from ``location`` into ``container_path`` of every host before it starts (checkpoints)."""

    location: str
    container_path: str


@dataclass(frozen=True)
class Sync:
    """``container_path`` of every host mirrored to ``location`` while the job runs and once more at its end.

    New and changed files are uploaded, files that disappear are deleted there (the platform's checkpoint sync).
    """

    name: str
    container_path: str
    location: str


@dataclass(frozen=True)
class Export:
    """After the containers exit, ``container_path`` of every host merged into one artifact at ``destination``.

    ``form``: ``tar.gz`` / ``tar`` (one archive, entries at its root) or ``tree`` (the files, as they are).
    ``always``: export even when no host wrote a file (the model archive); else only when there is one.
    """

    name: str
    container_path: str
    destination: str
    form: Literal["tar.gz", "tar", "tree"]
    always: bool = False


@dataclass(frozen=True)
class HostPlan:
    """One host: its name (what peers resolve) and its container."""

    name: str
    spec: ContainerSpec


@dataclass(frozen=True)
class JobPlan:
    """Everything a container job will do; made by a kind's pure ``plan()`` and run by the runner."""

    kind: str
    name: str
    arn: str
    image: str
    #: The request with its defaults applied (once), as validated.
    request: Mapping[str, Any]
    hosts: tuple[HostPlan, ...]
    max_runtime_s: float
    stop_grace_s: float
    inputs: tuple[DataInput, ...] = ()
    seeds: tuple[Seed, ...] = ()
    exports: tuple[Export, ...] = ()
    #: Dirs kept in step with a location while the job runs (checkpoints); the seeds of the same path are known.
    syncs: tuple[Sync, ...] = ()
    #: Files read from every host after it exited (the failure file, the exit message).
    reads: tuple[str, ...] = ()
    #: Files read from every host only when the job did not succeed (the failure file: one archive call saved).
    failure_reads: tuple[str, ...] = ()
    #: Container dirs whose files (``spec.files`` below them) the runner writes into its work dir and binds
    #: read-only, instead of an archive call writing them into each container (training: the config files).
    bound_dirs: tuple[str, ...] = ()
    #: ``spec.dirs`` made as empty volumes (nested in the /opt/ml volume) instead of by an archive call.
    dirs_as_volumes: bool = False
    #: Container dirs the job writes its outputs into (with the ``spec.dirs`` below them). Where the engine writes
    #: binds in place (``DockerSeam.binds_in_place``: a local engine, this process root) and the image runs as
    #: root, each host's are bound read-write to the runner's work dir and read from there after the exit, with
    #: no archive call; otherwise they are volumes (``dirs_as_volumes``) read through the archive API.
    bound_outputs: tuple[str, ...] = ()
    private_network: bool = False
    internal_network: bool = False
    #: What the container runs, for the message when Docker cannot start it.
    command: tuple[str, ...] = field(default_factory=tuple)

    @property
    def host_names(self) -> list[str]:
        """The hosts' names, in order."""
        return [h.name for h in self.hosts]
