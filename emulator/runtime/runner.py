"""The generic runner: executes any :class:`~emulator.runtime.plan.JobPlan` on the engine.

Stages the plan's inputs (bind mounts for local data, downloads for S3), adds its seed files, runs the hosts as
a :class:`~emulator.runtime.cluster.Cluster`, then exports the artifacts and reads the files the plan names,
before the containers are removed. ``stop()`` may come from any thread at any time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from emulator.config import EmulatorConfig
from emulator.constants import OPT_ML
from emulator.errors import DockerUnavailable, EmulatorError
from emulator.runtime.cluster import Cluster, LogSink, Outcome, start_failure
from emulator.runtime.docker import ContainerSpec, DockerSeam, Mount
from emulator.runtime.lifecycle import BackgroundJob
from emulator.runtime.pipes import Feeds, feeding, pipe_path, stage_pipe
from emulator.runtime.plan import Export, JobPlan
from emulator.runtime.resources import fit_gpus
from emulator.runtime.session import Session
from emulator.runtime.sync import LiveSync
from emulator.storage.artifacts import BoundDir, SpooledArchive, extract_files, list_tree, read_file, repack
from emulator.storage.locations import Storage
from emulator.storage.s3 import S3
from emulator.storage.staging import stage_data
from emulator.storage.workdirs import make_work_dir


@dataclass
class RunResult:
    """What running a plan gave: the containers' outcome, the exported artifacts and the files read back."""

    outcome: Outcome
    #: Export name -> where it went (only those that were exported).
    exported: dict[str, str] = field(default_factory=dict)
    #: Per host (in plan order): container path -> content (None: no such file).
    files: list[dict[str, bytes | None]] = field(default_factory=list)
    #: With ``record_tree``: host -> every entry under /opt/ml (path -> file, dir or symlink -> X).
    tree: dict[str, dict[str, str]] = field(default_factory=dict)


#: Up to this size, a host's /opt/ml is read with one archive call (inputs included) rather than one per path.
WHOLE_ARCHIVE_MAX_BYTES: Final = 32 * 1024 * 1024


def _tree_size(path: Path, stop_at: int) -> int:
    """Bytes of the files under ``path`` (or of the file), counting stops once over ``stop_at``."""
    if not path.is_dir():
        return path.stat().st_size if path.exists() else 0
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
            if total > stop_at:
                return total
    return total


class PlanRunner:
    """Runs one plan once. ``on_running`` is called before the containers start, ``on_exited`` after they end."""

    def __init__(
        self,
        plan: JobPlan,
        session: Session,
        *,
        log_sink: LogSink | None = None,
        record_tree: bool = False,
        on_running: Callable[[], None] | None = None,
        on_exited: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.session = session
        self._sink = log_sink
        self._record_tree = record_tree
        self._on_running = on_running
        self._on_exited = on_exited
        self._lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._stop: tuple[bool, float | None] = (False, None)
        #: Bytes of the staged inputs (bound under /opt/ml), counted up to WHOLE_ARCHIVE_MAX_BYTES per input.
        self._input_bytes = 0
        self._spooled: list[SpooledArchive | None] = []
        #: Per host: its Pipe channels (fed through docker exec once it runs, see runtime/pipes.py).
        self._feeds: list[Feeds] = []
        #: Container path -> content of the seed files (the live sync knows they are at the location already).
        self._seeded: dict[str, bytes] = {}
        #: Whether the plan's ``bound_outputs`` are bind mounts this run (see :meth:`_outputs_in_place`).
        self._in_place = False
        #: Per host: its bound outputs, read from the host after the exit.
        self._outputs: list[list[BoundDir]] = []

    def run(self) -> RunResult:
        """Stage, run, export; the containers and the staging dir are removed on every path.

        Raises:
            ImageNotFound: the image is not there (nothing has been created yet).
            ContainerFailed: Docker could not start the image's command.
        """
        plan, config = self.plan, self.session.config
        docker = self.session.docker
        # A missing image is the user's error: fail before anything is created.
        self._in_place = self._outputs_in_place(docker, docker.image_info(plan.image).user)
        # A GPU instance type on an engine without GPUs: refused here, before anything is made, or run on the CPU.
        fitted = fit_gpus([h.spec for h in plan.hosts], docker.has_gpus, config.allow_cpu_for_gpu)
        self.plan = plan = dataclasses.replace(
            plan, hosts=tuple(dataclasses.replace(h, spec=s) for h, s in zip(plan.hosts, fitted, strict=True))
        )
        work = make_work_dir(plan.kind, config.work_dir)
        try:
            specs = self._specs(work)
            if self._on_running:
                self._on_running()
            with Cluster(
                docker,
                specs,
                kind=plan.kind,
                job_name=plan.name,
                private_network=plan.private_network,
                internal_network=plan.internal_network,
                stop_grace_s=plan.stop_grace_s,
                keep=config.keep_containers,
                log_sink=self._sink,
            ) as cluster:
                with self._lock:
                    self._cluster = cluster
                    stop, grace = self._stop
                if stop:
                    cluster.stop(grace)
                sync = LiveSync(
                    plan.syncs,
                    len(plan.hosts),
                    Storage(lambda: self.session.s3),
                    work,
                    config.checkpoint_sync_interval_s,
                    self._seeded,
                )
                try:
                    pipes = feeding(docker, cluster.container_ids, self._feeds, plan.host_names, self._sink)
                    with sync.running(cluster.archive), pipes:
                        outcome = cluster.run(plan.max_runtime_s)
                except DockerUnavailable:
                    raise
                except EmulatorError as exc:
                    raise start_failure(exc, plan.image, list(plan.command)) from None
                if self._on_exited:
                    self._on_exited()
                return self._collect(cluster, outcome, work, sync)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def stop(self, grace_s: float | None = None) -> None:
        """SIGTERM the hosts (now, or as soon as they start); SIGKILL after the grace period. Any thread."""
        with self._lock:
            self._stop = (True, grace_s)
            cluster = self._cluster
        if cluster is not None:
            cluster.stop(grace_s)

    def _outputs_in_place(self, docker: DockerSeam, image_user: str) -> bool:
        """Whether the plan's ``bound_outputs`` are bound to the work dir (else: volumes, read by archive calls).

        Only where what the container writes there is this process's to read and remove (the engine writes binds
        in place), the image runs as root (a volume would give another user the image's ownership of the dir;
        a bind gives it the runner's), the containers are removed with the job (a kept container would keep
        its outputs) and ``config.bind_outputs`` is on.
        """
        user = image_user.split(":", 1)[0]
        return (
            bool(self.plan.bound_outputs)
            and user in ("", "root", "0")
            and not self.session.config.keep_containers
            and self.session.config.bind_outputs
            and docker.binds_in_place()
        )

    def _specs(self, work: Path) -> list[ContainerSpec]:
        plan = self.plan
        n = len(plan.hosts)
        storage = Storage(lambda: self.session.s3)
        seeded: dict[str, bytes] = {}
        for seed in plan.seeds:
            for rel, data in storage.read_tree(seed.location).items():
                seeded[f"{seed.container_path.rstrip('/')}/{rel}"] = data
        self._seeded = seeded
        mounts: list[list[Mount]] = [[] for _ in range(n)]
        self._input_bytes = 0
        self._feeds = [[] for _ in range(n)]
        self._outputs = [[] for _ in range(n)]
        for i, item in enumerate(plan.inputs):
            targets = list(range(n)) if item.hosts is None else list(item.hosts)
            if item.mode == "Pipe":
                epochs = stage_pipe(item, work / f"input-{i}", self.session.s3, len(targets))
                for k, h in enumerate(targets):
                    self._feeds[h].append((item.container_path, epochs[k]))
                continue
            per_host = stage_data(
                item.uri,
                item.container_path,
                work / f"input-{i}",
                self.session.s3,
                len(targets),
                what=item.what,
                data_type=item.data_type,
                sharded=item.sharded,
                gunzip=item.gunzip,
                dir_read_only=item.mode == "FastFile",
            )
            for k, h in enumerate(targets):
                mounts[h] += [Mount(target, source, read_only=True) for source, target in per_host[k]]
            self._input_bytes += sum(_tree_size(Path(source), WHOLE_ARCHIVE_MAX_BYTES) for source, _ in per_host[0])
        return [self._host_spec(h, mounts[h], seeded, work) for h in range(n)]

    def _host_spec(self, h: int, inputs: list[Mount], seeded: dict[str, bytes], work: Path) -> ContainerSpec:
        """Host ``h``'s container: its inputs mounted, seeds added; bound dirs and volume dirs as the plan says."""
        plan, spec = self.plan, self.plan.hosts[h].spec
        mounts = [*spec.mounts, *inputs]
        files = {**spec.files, **seeded}
        fifos = [*spec.fifos, *(pipe_path(channel_dir, 0) for channel_dir, _ in self._feeds[h])]
        dirs = list(spec.dirs)
        for i, target in enumerate(plan.bound_dirs):
            below = {path: data for path, data in files.items() if path.startswith(target.rstrip("/") + "/")}
            source = work / f"bound-{h}-{i}"
            source.mkdir(mode=0o755)
            source.chmod(0o755)  # readable by any user the image runs as (a umask may have cut mkdir's mode)
            for path, data in below.items():
                dest = source / path[len(target) :].strip("/")
                dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                dest.write_bytes(data)
                dest.chmod(0o644)
                del files[path]
            mounts.append(Mount(target, str(source), read_only=True))
        for i, target in enumerate(plan.bound_outputs if self._in_place else ()):
            out = BoundDir(target, work / f"output-{h}-{i}")
            for d in [target, *(d for d in dirs if out.covers(d))]:
                host_dir = out.source / d[len(out.root) :].strip("/")
                host_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
                host_dir.chmod(0o755)  # as a fresh volume's root: the container's root writes, others read
            dirs = [d for d in dirs if not out.covers(d)]
            mounts.append(Mount(target, str(out.source)))
            self._outputs[h].append(out)
        if plan.dirs_as_volumes:
            # Docker makes a mount's target and its parents itself: only a dir no mount makes needs a volume.
            made = [m.target.rstrip("/") for m in mounts]
            for d in dict.fromkeys(dirs):
                if not any(t == d or t.startswith(d + "/") for t in made):
                    mounts.append(Mount(d))
                    made.append(d)
            dirs = []
        return dataclasses.replace(spec, mounts=mounts, files=files, dirs=dirs, fifos=fifos, labels=dict(spec.labels))

    def _collect(self, cluster: Cluster, outcome: Outcome, work: Path, sync: LiveSync) -> RunResult:
        plan = self.plan
        n = len(plan.hosts)
        result = RunResult(outcome)
        paths = plan.reads if outcome.succeeded else (*plan.reads, *plan.failure_reads)
        wanted = [
            *([OPT_ML] if self._record_tree else []),
            *(e.container_path for e in plan.exports),
            *(s.container_path for s in plan.syncs),
            *paths,
        ]
        self._spooled = self._spool_all(cluster, wanted, work)
        try:
            if self._record_tree:
                result.tree = {
                    plan.hosts[i].name: list_tree(self._archive(cluster, i, OPT_ML), OPT_ML) for i in range(n)
                }
            storage = Storage(lambda: self.session.s3)
            for j, export in enumerate(plan.exports):
                where = self._export(cluster, export, work / f"export-{j}", storage)
                if where is not None:
                    result.exported[export.name] = where
            # The last sync pass: what the hosts hold now (also after a failure or a stop) is at the location.
            result.exported.update(sync.finish(lambda i, path: self._archive(cluster, i, path)))
            result.files = [{path: read_file(self._archive(cluster, i, path)) for path in paths} for i in range(n)]
        finally:
            for spooled in self._spooled:
                if spooled is not None:
                    spooled.close()
        return result

    def _spool_all(self, cluster: Cluster, wanted: list[str], work: Path) -> list[SpooledArchive | None]:
        """/opt/ml of every host in one archive call each, when it would save calls and the inputs are small.

        The inputs are bound under /opt/ml, so they come too: over WHOLE_ARCHIVE_MAX_BYTES (the inputs, or what
        the job wrote) the paths are read one call each, as before.
        """
        n = len(self.plan.hosts)
        bound = self._outputs[0] if self._outputs else []
        below = [
            p for p in wanted if (p == OPT_ML or p.startswith(OPT_ML + "/")) and not any(out.covers(p) for out in bound)
        ]
        if len(below) < 2 or self._input_bytes > WHOLE_ARCHIVE_MAX_BYTES:
            return [None] * n
        return [
            SpooledArchive.fetch(cluster.archive(i, OPT_ML), OPT_ML, work / f"opt-ml-{i}.tar", WHOLE_ARCHIVE_MAX_BYTES)
            for i in range(n)
        ]

    def _archive(self, cluster: Cluster, i: int, path: str) -> Iterable[bytes]:
        """A tar stream of ``path`` on host ``i``: from its bound outputs, or its spooled /opt/ml, when they have it."""
        for out in self._outputs[i] if i < len(self._outputs) else ():
            if out.covers(path):
                return out.slice(path)
        spooled = self._spooled[i] if i < len(self._spooled) else None
        if spooled is not None and spooled.covers(path):
            return spooled.slice(path)
        return cluster.archive(i, path)

    def _export(self, cluster: Cluster, export: Export, staging: Path, storage: Storage) -> str | None:
        streams = (self._archive(cluster, i, export.container_path) for i in range(len(self.plan.hosts)))
        if export.form == "tree":
            count = extract_files(streams, staging)
            if count or export.always:
                storage.put_tree(staging, export.destination)
                return export.destination
            return None
        staging.mkdir(parents=True, exist_ok=True)
        archive = staging / export.destination.rstrip("/").rsplit("/", 1)[-1]
        count = repack(streams, archive, compress=export.form == "tar.gz")
        if count or export.always:
            return storage.put_file(archive, export.destination)
        return None


class PlannedJob(BackgroundJob):
    """A job kind that is a plan run by :class:`PlanRunner` (training, processing).

    A kind makes its plan in ``__init__`` (after ``super().__init__``) and implements :meth:`_finish`, which turns
    the :class:`RunResult` into its Describe fields; :meth:`_on_running` and :meth:`_on_exited` may record status
    transitions.
    """

    plan: JobPlan

    def __init__(
        self,
        *,
        session: Session | None,
        config: EmulatorConfig | None,
        docker: DockerSeam | None,
        s3: S3 | None,
        log_sink: LogSink | None,
        record_tree: bool,
    ) -> None:
        super().__init__()
        self.session, self._owns_session = Session.of(session, config, docker, s3)
        self.config = self.session.config
        self._sink = log_sink
        self._record_tree = record_tree
        self._runner: PlanRunner | None = None
        #: With ``record_tree``: host name -> {absolute path under /opt/ml -> "file", "dir" or "symlink -> X"}.
        self.final_tree: dict[str, dict[str, str]] = {}

    def _adopt(self, plan: JobPlan) -> None:
        self.plan = plan
        self.request: dict[str, Any] = dict(plan.request)
        self.name = plan.name
        self.arn = plan.arn

    def _execute(self) -> None:
        try:
            runner = PlanRunner(
                self.plan,
                self.session,
                log_sink=self._sink,
                record_tree=self._record_tree,
                on_running=self._on_running,
                on_exited=self._on_exited,
            )
            with self._lock:
                self._runner = runner
                stop, grace = self.stop_requested, self._stop_grace_s
            if stop:
                runner.stop(grace)
            self._on_starting()
            try:
                result = runner.run()
            except DockerUnavailable as exc:
                self._mark_failed(f"InternalServerError: {exc}")
                raise
            self.final_tree = result.tree
            self._finish(result)
        finally:
            if self._owns_session:
                self.session.close()

    def _mark_failed(self, reason: str) -> None:
        """The Describe shape of a job the engine failed: ``<Kind>JobStatus`` Failed with the reason (wait() raises)."""
        with self._lock:
            for key in [k for k in self._describe if k.endswith("JobStatus")]:
                self._describe[key] = "Failed"
            self._describe["FailureReason"] = reason[:1024]

    def _on_stop(self, grace_s: float | None) -> None:
        with self._lock:
            runner = self._runner
        if runner is not None:
            runner.stop(grace_s)

    def _on_starting(self) -> None:
        """Before the inputs are staged."""

    def _on_running(self) -> None:
        """When the containers are about to start."""

    def _on_exited(self) -> None:
        """When every container has exited, before the artifacts are exported."""

    def _finish(self, result: RunResult) -> None:
        raise NotImplementedError
