"""What training and processing jobs share: validation, the Docker and S3 plumbing, the run, and stop().

A subclass names its API operation and supplies the parts that differ: defaults, checks, the image,
the container specs for its hosts, and how the outcome becomes its Describe* result.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from emulator.config import EmulatorConfig
from emulator.errors import EmulatorError, Interrupted
from emulator.runtime import session as _session
from emulator.runtime.cluster import Cluster, LogSink, Outcome, start_failure
from emulator.runtime.docker import ContainerSpec, DockerClient, DockerSeam
from emulator.spec import load_spec, validate
from emulator.storage.s3 import S3


class ContainerJob:
    """A job that runs one container per host to its end: the base of TrainingJob and ProcessingJob."""

    operation: ClassVar[str]  # e.g. "CreateTrainingJob"
    name_field: ClassVar[str]  # e.g. "TrainingJobName"
    arn_resource: ClassVar[str]  # e.g. "training-job"
    kind: ClassVar[str]  # the container label's job kind

    def __init__(
        self,
        request: Mapping[str, Any] | str | Path,
        *,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.request: dict[str, Any] = self._with_defaults(load_spec(request))
        validate(self.operation, self.request)
        self._check_supported()
        self.name: str = self.request[self.name_field]
        self.arn = _session.arn(self.config, self.arn_resource, self.name)
        self._docker = docker
        self._s3 = s3
        self._sink = log_sink
        self._cluster: Cluster | None = None
        self._stop_requested = False
        self._created = _session.now()
        self._describe: dict[str, Any] = self._base_describe()

    # -- what subclasses provide ----------------------------------------------------------------------
    def _with_defaults(self, request: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _check_supported(self) -> None:
        """Refuse, with a clear error, what the emulator does not do."""

    def _base_describe(self) -> dict[str, Any]:
        """The Describe* shape of the job just created (InProgress, CreationTime ``self._created``)."""
        raise NotImplementedError

    def _image(self) -> str:
        raise NotImplementedError

    def _host_names(self) -> list[str]:
        raise NotImplementedError

    def _isolated(self) -> bool:
        raise NotImplementedError

    def _max_runtime_s(self) -> float:
        return float(self.request["StoppingCondition"]["MaxRuntimeInSeconds"])

    def _container_specs(self, hosts: list[str], work: Path, s3: S3) -> list[ContainerSpec]:
        raise NotImplementedError

    def _finish(self, cluster: Cluster, outcome: Outcome, work: Path, s3: S3) -> None:
        raise NotImplementedError

    def _artifacts_hint(self) -> str:
        return ""

    def _starting(self) -> None:
        """Called before the inputs are staged."""

    def _running(self) -> None:
        """Called when the containers are about to start."""

    # -- the shared run -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run the job to its end (Completed, Failed or Stopped) and return its Describe* shape.

        Raises:
            ImageNotFound: the image is not there (nothing has been created yet).
            Interrupted: Ctrl-C; the containers were stopped and removed, artifacts exported.
        """
        docker = self._docker or DockerClient(self.config)
        image = self._image()
        docker.image_info(image)  # a missing image is the user's error: fail before anything is created
        s3 = self._s3 or S3(self.config)
        work = Path(tempfile.mkdtemp(prefix=f"sm-emulator-{self.kind}-", dir=self.config.work_dir))
        self._starting()
        try:
            hosts = self._host_names()
            specs = self._container_specs(hosts, work, s3)
            self._running()
            with Cluster(
                docker,
                specs,
                kind=self.kind,
                job_name=self.name,
                private_network=len(hosts) > 1,
                internal_network=self._isolated(),
                stop_grace_s=self.config.training_stop_grace_s,
                keep=self.config.keep_containers,
                log_sink=self._sink,
            ) as cluster:
                self._cluster = cluster
                if self._stop_requested:
                    cluster.stop()
                try:
                    outcome = cluster.run(self._max_runtime_s())
                except EmulatorError as exc:
                    raise start_failure(exc, image, specs[0].entrypoint or specs[0].command or []) from None
                self._finish(cluster, outcome, work, s3)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if self._s3 is None:
                s3.close()
        if outcome.stopped_reason == "Interrupted":
            # Ctrl-C must still end the caller (the CLI exits 130); the job is Stopped and cleaned up by now.
            raise Interrupted(
                f"{self.kind} job {self.name} was interrupted (Ctrl-C): its containers were stopped and removed"
                + self._artifacts_hint()
            )
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """The job in its Describe* shape."""
        return copy.deepcopy(self._describe)

    def stop(self) -> None:
        """Like Stop*Job: SIGTERM now, SIGKILL after the grace period; the job ends Stopped.

        Safe to call from another thread (e.g. a log sink) while :meth:`run` blocks, also before the containers
        have started.
        """
        self._stop_requested = True
        if self._cluster is not None:
            self._cluster.stop()
