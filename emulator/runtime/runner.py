"""The generic runner: executes any :class:`~emulator.runtime.plan.JobPlan` on the engine.

Stages the plan's inputs (bind mounts for local data, downloads for S3), adds its seed files, runs the hosts as
a :class:`~emulator.runtime.cluster.Cluster`, then exports the artifacts and reads the files the plan names,
before the containers are removed. ``stop()`` may come from any thread at any time.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.errors import DockerUnavailable, EmulatorError
from emulator.runtime.cluster import Cluster, LogSink, Outcome, start_failure
from emulator.runtime.docker import ContainerSpec, DockerSeam, Mount
from emulator.runtime.lifecycle import BackgroundJob
from emulator.runtime.plan import Export, JobPlan
from emulator.runtime.session import Session
from emulator.storage.artifacts import extract_files, list_tree, read_file, repack
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

    def run(self) -> RunResult:
        """Stage, run, export; the containers and the staging dir are removed on every path.

        Raises:
            ImageNotFound: the image is not there (nothing has been created yet).
            ContainerFailed: Docker could not start the image's command.
        """
        plan, config = self.plan, self.session.config
        docker = self.session.docker
        docker.image_info(plan.image)  # a missing image is the user's error: fail before anything is created
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
                try:
                    outcome = cluster.run(plan.max_runtime_s)
                except DockerUnavailable:
                    raise
                except EmulatorError as exc:
                    raise start_failure(exc, plan.image, list(plan.command)) from None
                if self._on_exited:
                    self._on_exited()
                return self._collect(cluster, outcome, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def stop(self, grace_s: float | None = None) -> None:
        """SIGTERM the hosts (now, or as soon as they start); SIGKILL after the grace period. Any thread."""
        with self._lock:
            self._stop = (True, grace_s)
            cluster = self._cluster
        if cluster is not None:
            cluster.stop(grace_s)

    def _specs(self, work: Path) -> list[ContainerSpec]:
        plan = self.plan
        n = len(plan.hosts)
        storage = Storage(lambda: self.session.s3)
        seeded: dict[str, bytes] = {}
        for seed in plan.seeds:
            for rel, data in storage.read_tree(seed.location).items():
                seeded[f"{seed.container_path.rstrip('/')}/{rel}"] = data
        mounts: list[list[Mount]] = [[] for _ in range(n)]
        for i, item in enumerate(plan.inputs):
            per_host = stage_data(
                item.uri,
                item.container_path,
                work / f"input-{i}",
                self.session.s3,
                n,
                what=item.what,
                data_type=item.data_type,
                sharded=item.sharded,
            )
            for h in range(n):
                mounts[h] += [Mount(target, source, read_only=True) for source, target in per_host[h]]
        return [
            dataclasses.replace(
                host.spec,
                mounts=[*host.spec.mounts, *mounts[h]],
                files={**host.spec.files, **seeded},
                labels=dict(host.spec.labels),
            )
            for h, host in enumerate(plan.hosts)
        ]

    def _collect(self, cluster: Cluster, outcome: Outcome, work: Path) -> RunResult:
        plan = self.plan
        n = len(plan.hosts)
        result = RunResult(outcome)
        if self._record_tree:
            result.tree = {plan.hosts[i].name: list_tree(cluster.archive(i, "/opt/ml"), "/opt/ml") for i in range(n)}
        storage = Storage(lambda: self.session.s3)
        for j, export in enumerate(plan.exports):
            where = self._export(cluster, export, work / f"export-{j}", storage)
            if where is not None:
                result.exported[export.name] = where
        paths = plan.reads if outcome.succeeded else (*plan.reads, *plan.failure_reads)
        result.files = [{path: read_file(cluster.archive(i, path)) for path in paths} for i in range(n)]
        return result

    def _export(self, cluster: Cluster, export: Export, staging: Path, storage: Storage) -> str | None:
        streams = (cluster.archive(i, export.container_path) for i in range(len(self.plan.hosts)))
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
