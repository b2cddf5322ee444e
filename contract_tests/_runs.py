"""How the checks drive the emulator: training jobs, endpoints and processing jobs, with their evidence kept.

The suite has no container logic of its own: :class:`Harness` builds SageMaker requests from the contract
config and runs them with ``emulator.TrainingJob``, ``emulator.Endpoint`` and ``emulator.ProcessingJob`` in
one ``emulator.runtime.Session``; what an image holds under /opt/ml comes from ``emulator.runtime.image_tree``
and what a job left there from the job's own ``record_tree``. It only records what happened (describe
result, error, log lines, timing, trees) so that each check can judge it and show the evidence. It uses the
emulator's public API only.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import re
import secrets
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from contract_tests.config import Channel, ContractConfig, ProcessingInput
from emulator.constants import (
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_VOLUME_SIZE_GB,
    HYPERPARAMETERS_FILE,
    INVOCATION_TIMEOUT_S,
    MODEL_DIR,
    OPT_ML,
    PING_PATH,
    SERVING_PORT,
    SERVING_STOP_GRACE_S,
    STARTUP_TIMEOUT_S,
    TRAINING_STOP_GRACE_S,
)

if TYPE_CHECKING:
    from contract_tests._diagnosis import RootCause
    from emulator import EmulatorConfig, Endpoint
    from emulator.runtime import Session
    from emulator.runtime.docker import ImageInfo

logger = logging.getLogger(__name__)

_KEEP_LINES = 2000
#: Jobs the suite runs ahead, in the background, while the checks before theirs run (see Harness.ahead).
AHEAD_WORKERS = 2
T = TypeVar("T")


@dataclass(frozen=True)
class ContractOptions:
    """The command-line options of the suite (see ``pytest --help``, group "sagemaker contract")."""

    image: str | None = None
    config_path: Path | None = None
    keep_containers: bool = False
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    invocation_timeout_s: float = INVOCATION_TIMEOUT_S
    training_stop_timeout_s: float = TRAINING_STOP_GRACE_S
    serving_stop_timeout_s: float = SERVING_STOP_GRACE_S
    #: --contract-strict: every SHOULD the image misses fails its check (warnings become failures).
    strict: bool = False


class LogBuffer:
    """A thread-safe log sink that keeps the last lines a job's containers printed."""

    def __init__(self) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=_KEEP_LINES)
        self._lock = threading.Lock()

    def __call__(self, host: str, line: str) -> None:
        with self._lock:
            self._lines.append(f"{host} | {line}")
        logger.debug("%s | %s", host, line)

    def text(self) -> str:
        """Everything kept, one line each."""
        with self._lock:
            return "\n".join(self._lines)


def _token() -> str:
    return secrets.token_hex(3)


def job_name(label: str) -> str:
    """A fresh, valid SageMaker job name: ``contract-<label>-<random>``."""
    clean = re.sub(r"[^a-zA-Z0-9-]", "-", label).strip("-")[:40]
    return f"contract-{clean}-{_token()}"


def fingerprint(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (to prove a directory was not written)."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# -- results ----------------------------------------------------------------------------------------------
@dataclass
class _JobRun:
    """One training or processing job the suite ran: its request, Describe* result (or error), logs and timing."""

    #: The Describe* key of the job's status (TrainingJobStatus, ProcessingJobStatus).
    status_key: ClassVar[str]

    label: str
    request: dict[str, Any]
    describe: dict[str, Any] | None = None
    error: Exception | None = None
    logs: LogBuffer = field(default_factory=LogBuffer)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        """Completed, Failed, Stopped, or "Error" when the emulator could not run the job at all."""
        return "Error" if self.describe is None else str(self.describe[self.status_key])

    @property
    def failure_reason(self) -> str:
        """The Describe* result's FailureReason, or the emulator's error."""
        if self.describe is None:
            return str(self.error)
        return str(self.describe.get("FailureReason", ""))


@dataclass
class TrainingRun(_JobRun):
    """One training job the suite ran: its request, DescribeTrainingJob result (or error), logs and timing."""

    status_key: ClassVar[str] = "TrainingJobStatus"

    #: time.time() when the suite asked for the stop (SIGTERM), if it did.
    stopped_at: float | None = None
    trigger: str = ""
    #: With ``record_tree``: host -> the regular files its container left under /opt/ml (absolute paths).
    opt_ml_files: dict[str, list[str]] = field(default_factory=dict)
    #: The bound (s) after which the suite stopped a job that did not end by itself, if it had to.
    timed_out_after_s: float | None = None
    #: The log line that made the suite stop the job at once (``train`` started a server), if one did.
    aborted_on: str | None = None

    @property
    def model_tar(self) -> Path | None:
        """The exported model.tar.gz (a local path), if there is one."""
        if self.describe is None:
            return None
        uri = str(self.describe.get("ModelArtifacts", {}).get("S3ModelArtifacts") or "")
        return Path(uri) if uri and Path(uri).is_file() else None

    def model_files(self) -> list[str]:
        """The regular files in model.tar.gz."""
        tar = self.model_tar
        if tar is None:
            return []
        with tarfile.open(tar, "r:*") as tf:
            return sorted(m.name for m in tf.getmembers() if m.isfile())

    def log_text(self) -> str:
        """The containers' output (with the emulator's error, if any, at the end)."""
        text = self.logs.text()
        tail = getattr(self.error, "log_tail", "") if self.error is not None else ""
        return text or str(tail or "")

    def summary(self) -> str:
        """``training job NAME: Failed (FailureReason ...) after 2.1 s``."""
        reason = f" ({self.failure_reason[:300]})" if self.status not in ("Completed",) and self.failure_reason else ""
        if self.timed_out_after_s is not None:
            reason += f" (stopped by the suite: no exit within {self.timed_out_after_s:g} s)"
        if self.aborted_on is not None:
            reason += f" (stopped by the suite when it printed {self.aborted_on[:120]!r})"
        return f"training job {self.request['TrainingJobName']}: {self.status}{reason} after {self.seconds:.1f} s"

    def sent(self) -> str:
        """What the job was: channels, hyperparameters, hosts."""
        chans = {
            c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in self.request.get("InputDataConfig", [])
        }
        hosts = self.request["ResourceConfig"]["InstanceCount"]
        return (
            f"CreateTrainingJob (docker run IMAGE train) with channels {chans or '{}'}, hyperparameters "
            f"{self.request.get('HyperParameters') or {}}, {hosts} host(s)"
        )


@dataclass
class ProcessingRun(_JobRun):
    """One processing job: request, DescribeProcessingJob (or error), logs, and the /opt/ml tree it left."""

    status_key: ClassVar[str] = "ProcessingJobStatus"

    #: Every entry under /opt/ml in the container after it exited: path -> "file" | "dir" | "symlink -> target".
    opt_ml: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        """The containers' output."""
        return self.logs.text() or str(getattr(self.error, "log_tail", "") or "")

    def sent(self) -> str:
        """What the job was: entrypoint, arguments, inputs and outputs."""
        app = self.request["AppSpecification"]
        ins = {i["S3Input"]["LocalPath"]: i["S3Input"]["S3Uri"] for i in self.request.get("ProcessingInputs", [])}
        outs = [o["S3Output"]["LocalPath"] for o in self.request.get("ProcessingOutputConfig", {}).get("Outputs", [])]
        return (
            f"CreateProcessingJob with ContainerEntrypoint {app.get('ContainerEntrypoint')}, ContainerArguments "
            f"{app.get('ContainerArguments')}, inputs {ins or '{}'}, outputs {outs}"
        )

    def summary(self) -> str:
        """``processing job NAME: Failed (reason) after 1.2 s``."""
        reason = f" ({self.failure_reason[:300]})" if self.failure_reason else ""
        msg = (self.describe or {}).get("ExitMessage")
        extra = f", ExitMessage {msg[:200]!r}" if msg else ""
        name = self.request["ProcessingJobName"]
        return f"processing job {name}: {self.status}{reason}{extra} after {self.seconds:.1f} s"


@dataclass
class EndpointHandle:
    """A serving container the checks share: the started endpoint, or why it could not start."""

    label: str
    environment: dict[str, str]
    endpoint: Endpoint | None = None
    error: Exception | None = None
    logs: LogBuffer = field(default_factory=LogBuffer)
    restarts: list[str] = field(default_factory=list)
    #: Why the container is not serving: the check that owns the cause, the problem and its fix.
    root: RootCause | None = None

    def log_text(self) -> str:
        """The container's output so far (or the tail the start error carried)."""
        if self.endpoint is not None:
            return self.endpoint.logs_tail(200) or self.logs.text()
        return self.logs.text() or str(getattr(self.error, "log_tail", "") or "")


# -- the harness ------------------------------------------------------------------------------------------
class Harness:
    """Runs the jobs of the checks with the emulator, from the contract config, in ``workdir``."""

    def __init__(
        self,
        image: str,
        config: ContractConfig,
        options: ContractOptions,
        session: Session,
        workdir: Path,
    ) -> None:
        self.image = image
        self.config = config
        self.options = options
        #: The Docker client and S3 every job of the suite shares; its config is the ``emulator_config`` fixture.
        self.session = session
        self.emulator_config: EmulatorConfig = session.config
        self.workdir = workdir
        self._image_info: ImageInfo | None = None
        #: Fingerprints of the model dirs handed to serving containers, taken before they started.
        self.model_fingerprints: dict[Path, dict[str, str]] = {}
        #: The model dir the serving checks use.
        self.served_model_dir: Path | None = None
        #: Why the shared serving container did not become healthy (then no other one is tried: same image).
        self.serving_broken: RootCause | None = None
        #: What ``train`` printed in the suite's main training job (to recognise it in a serving container).
        self.training_log = ""
        self._baked: list[str] | None = None
        self._roots: dict[int, RootCause | None] = {}
        self._results: dict[str, Future[Any]] = {}
        self._results_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=AHEAD_WORKERS, thread_name_prefix="contract-ahead")
        #: The checks this session runs (those whose capability the image claims), for starting jobs ahead.
        self.selected: set[str] = set()

    # -- jobs run once, maybe ahead of time ---------------------------------------------------------------
    def ahead(self, key: str, make: Callable[[], Any]) -> None:
        """Start ``make`` in the background now (once per ``key``): a job no earlier check depends on.

        The checks still run in order and report as before; a job whose checks come later just has its result
        ready by then. The suite's jobs are mostly waiting (on Docker, on a container's start), so running them
        side by side cuts the suite's wall time towards the time of its containers.
        """
        with self._results_lock:
            if key not in self._results:
                self._results[key] = self._pool.submit(make)

    def once(self, key: str, make: Callable[[], T]) -> T:
        """``make()``'s result, computed once per ``key``: the background run's (see :meth:`ahead`), or now."""
        with self._results_lock:
            future = self._results.get(key)
            mine = future is None
            if future is None:
                future = self._results[key] = Future()
        if mine:
            try:
                future.set_result(make())
            except BaseException as exc:
                future.set_exception(exc)
                raise
        result: T = future.result()
        return result

    def close(self) -> None:
        """Wait for the jobs started ahead (each removes its own containers), close the endpoints among them."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for future in self._results.values():
            if future.done() and not future.cancelled() and future.exception() is None:
                result = future.result()
                if isinstance(result, EndpointHandle) and result.endpoint is not None:
                    result.endpoint.close()

    def image_info(self) -> ImageInfo:
        """``docker image inspect`` of the image (cached)."""
        if self._image_info is None:
            self._image_info = self.session.docker.image_info(self.image)
        return self._image_info

    # -- training ---------------------------------------------------------------------------------------
    def _channel_source(self, name: str, ch: Channel) -> str:
        src = self.config.path(ch.path)
        if ch.repeat == 1:
            return str(src)
        # A bigger copy (the SIGTERM job): the lines of each file, ``repeat`` times.
        dest = self.workdir / "repeated" / f"{name}-{ch.repeat}-{_token()}"
        dest.mkdir(parents=True)
        for f in [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()):
            text = f.read_text("utf-8")
            if text and not text.endswith("\n"):
                text += "\n"
            (dest / f.name).write_text(text * ch.repeat, "utf-8")
        return str(dest)

    def training_request(
        self,
        label: str,
        *,
        channels: Mapping[str, Channel] | None = None,
        hyperparameters: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        instance_count: int = 1,
    ) -> dict[str, Any]:
        """A CreateTrainingJob request from the config (``None`` fields: the config's ``training`` values)."""
        tr = self.config.training
        chans = tr.channels if channels is None else channels
        hps = tr.hyperparameters if hyperparameters is None else hyperparameters
        env = tr.environment if environment is None else environment
        input_config = []
        for name, ch in chans.items():
            entry: dict[str, Any] = {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": self._channel_source(name, ch),
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            if ch.content_type:
                entry["ContentType"] = ch.content_type
            input_config.append(entry)
        request: dict[str, Any] = {
            "TrainingJobName": job_name(label),
            "AlgorithmSpecification": {"TrainingImage": self.image, "TrainingInputMode": "File"},
            "HyperParameters": dict(hps),
            "InputDataConfig": input_config,
            "OutputDataConfig": {"S3OutputPath": str(self.workdir / "training-output")},
            "ResourceConfig": {
                "InstanceType": tr.instance_type,
                "InstanceCount": instance_count,
                "VolumeSizeInGB": DEFAULT_VOLUME_SIZE_GB,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": tr.max_runtime_s},
            "EnableNetworkIsolation": self.config.capabilities.network_isolation,
        }
        if env:
            request["Environment"] = dict(env)
        if not input_config:
            del request["InputDataConfig"]
        return request

    def train(
        self,
        label: str,
        request: dict[str, Any],
        *,
        host_names: Sequence[str] | None = None,
        extra_config: Mapping[str, Mapping[str, Any]] | None = None,
        container_hostnames: Sequence[str] | None = None,
        record_tree: bool = False,
        stop_after_log: str | None = None,
        stop_after_s: float | None = None,
    ) -> TrainingRun:
        """Run one training job to its end; with ``stop_after_*``, stop it (SIGTERM) at that point.

        ``host_names``, ``extra_config`` and ``container_hostnames`` go to ``TrainingJob``; ``record_tree`` keeps
        the regular files each container left under /opt/ml in ``TrainingRun.opt_ml_files``. A job that has not
        ended after the config's ``training.max_runtime_s`` is stopped at once (``timed_out_after_s``), and one
        whose ``train`` starts an HTTP server on the serving port at once (``aborted_on``): such a job never ends
        by itself, and the suite says so in seconds rather than after MaxRuntimeInSeconds and a grace period.
        """
        from emulator import EmulatorError, TrainingJob

        run = TrainingRun(label, request)
        pattern = re.compile(stop_after_log) if stop_after_log else None
        job: TrainingJob | None = None
        fired = threading.Event()
        abort = threading.Event()

        def fire() -> None:
            if not fired.is_set() and job is not None:
                fired.set()
                run.stopped_at = time.time()
                job.stop()

        def sink(host: str, line: str) -> None:
            run.logs(host, line)
            if pattern is not None and pattern.search(line):
                fire()
            if run.aborted_on is None and server_started(line):
                run.aborted_on = line.strip()
                abort.set()

        timer: threading.Timer | None = None
        start = time.monotonic()
        bound = float(self.config.training.max_runtime_s)
        try:
            job = TrainingJob(
                request,
                session=self.session,
                log_sink=sink,
                host_names=host_names,
                extra_config=extra_config,
                container_hostnames=container_hostnames,
                record_tree=record_tree,
            )
            if pattern is None and stop_after_s is not None:
                run.trigger = f"{stop_after_s:g} s after the job was submitted"
                timer = threading.Timer(stop_after_s, fire)
                timer.daemon = True
                timer.start()
            elif pattern is not None:
                run.trigger = f"when a log line matched {stop_after_log!r}"
            job.start()
            while not job.done and not abort.is_set() and time.monotonic() - start < bound:
                abort.wait(0.2)
            if not job.done and not fired.is_set():
                if not abort.is_set():
                    run.timed_out_after_s = bound
                job.stop(grace_s=0)  # not the SIGTERM checks' job: nothing to wait for
            run.describe = job.wait()
        except EmulatorError as exc:
            run.error = exc
        finally:
            if job is not None:
                run.opt_ml_files = {
                    host: sorted(path for path, kind in tree.items() if kind == "file")
                    for host, tree in job.final_tree.items()
                }
            if timer is not None:
                timer.cancel()
            run.seconds = time.monotonic() - start
        logger.info("%s", run.summary())
        return run

    # -- root causes ------------------------------------------------------------------------------------------
    def baked(self) -> list[str]:
        """The files (not directories) the image itself holds under /opt/ml, which SageMaker's mounts hide."""
        if self._baked is None:
            self._baked = sorted(p for p, kind in self.image_tree(OPT_ML).items() if kind != "dir")
        return self._baked

    def training_root(self, run: TrainingRun) -> RootCause | None:
        """Why ``run`` did not complete (None: it did); the same answer every time it is asked.

        A job that fails with the config's string hyperparameters is run once more with them as JSON numbers:
        if that one completes, the root cause is t05 (hyperparameters are not parsed from strings).
        """
        key = id(run)
        if key not in self._roots:
            self._roots[key] = None if run.status == "Completed" else self._diagnose_training(run)
        return self._roots[key]

    def _diagnose_training(self, run: TrainingRun) -> RootCause:
        from contract_tests._diagnosis import RootCause, diagnose_training

        channels = [c["ChannelName"] for c in run.request.get("InputDataConfig", [])]
        root = diagnose_training(
            log=run.log_text(),
            status=run.status,
            failure_reason=run.failure_reason,
            error=str(run.error or ""),
            timed_out_after_s=run.timed_out_after_s,
            channels=channels,
            baked=self.baked(),
        )
        if root.check_id != "t01" or run.timed_out_after_s is not None:
            return root
        # Experiments, each one more job and only for a failure not explained yet: the same job with the
        # hyperparameters as JSON numbers (t05), then with a network (t16).
        numbers = _as_numbers(run.request.get("HyperParameters") or {})
        if numbers and self._retry(run, "numbers", extra_config={HYPERPARAMETERS_FILE: numbers}):
            return RootCause(
                "t05",
                f"training fails with the hyperparameters as strings, as SageMaker passes them "
                f"({root.problem.split(' (', 1)[-1].rstrip(')')[:200]}), and completes with the same values as "
                f"JSON numbers",
                "parse every hyperparameter from its string (int(hp['max_depth'])): SageMaker passes only strings",
            )
        if run.request.get("EnableNetworkIsolation") and self._retry(
            run, "with-network", request={"EnableNetworkIsolation": False}
        ):
            return RootCause(
                "t16",
                "training fails under EnableNetworkIsolation (no network, no AWS credentials) and completes with a "
                f"network ({root.problem.split(' (', 1)[-1].rstrip(')')[:200]})",
                "ship what the job needs in the image or pass it as a channel; do not download, call AWS or look up "
                "a network address at run time (or do not claim network_isolation)",
            )
        return root

    def _retry(
        self,
        run: TrainingRun,
        label: str,
        *,
        request: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> bool:
        """Run ``run``'s job once more with a change; whether that one completed."""
        name = job_name(f"{run.label}-{label}")
        retry = self.train(
            f"{run.label}-{label}",
            {**run.request, **(request or {}), "TrainingJobName": name},
            extra_config=extra_config,
        )
        return retry.status == "Completed"

    def serving_root(self, handle: EndpointHandle) -> RootCause | None:
        """Why ``handle``'s container is not serving (None: it is); kept on the handle."""
        if handle.endpoint is not None:
            return None
        if handle.root is None:
            from contract_tests._diagnosis import diagnose_serving

            err = handle.error
            handle.root = diagnose_serving(
                log=handle.log_text(),
                error=str(err or "not started"),
                cause=str(getattr(err, "cause", "") or ""),
                fix=str(getattr(err, "fix", "") or ""),
                exited=getattr(err, "container_exit_code", None) is not None,
                training_log=self.training_log,
                baked=self.baked(),
                model_files=self.served_model_files(),
            )
        return handle.root

    def served_model_files(self) -> list[str]:
        """The files of the model the serving checks use, relative to /opt/ml/model."""
        model = self.served_model_dir
        if model is None:
            return []
        return sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file())

    # -- serving ----------------------------------------------------------------------------------------
    def model_dir(self, model_tar: Path | None) -> Path:
        """The model to serve, extracted (like the platform does before the container starts)."""
        from emulator.storage.artifacts import extract_model

        configured = self.config.serving.model
        source = self.config.path(configured) if configured else model_tar
        dest = self.workdir / f"model-{_token()}"
        if source is None:
            dest.mkdir(parents=True)
        else:
            dest = extract_model(str(source), dest)
        self.model_fingerprints[dest] = fingerprint(dest)
        return dest

    def start_endpoint(
        self,
        label: str,
        model_dir: Path,
        *,
        environment: Mapping[str, str] | None = None,
        network_isolation: bool = False,
        startup_timeout_s: float | None = None,
        endpoint_class: type[Endpoint] | None = None,
        **options: Any,
    ) -> EndpointHandle:
        """Start a serving container (``docker run IMAGE serve``) and wait for /ping; never raises on failure.

        ``startup_timeout_s`` bounds the wait (default: ``--startup-timeout``); ``endpoint_class`` (default
        :class:`Endpoint`, e.g. ``MultiModelEndpoint``) gets ``options`` too.
        """
        from emulator import EmulatorError, Endpoint

        env = dict(self.config.serving.environment if environment is None else environment)
        handle = EndpointHandle(label, env)
        ep = (endpoint_class or Endpoint)(
            self.image,
            model_data=str(model_dir),
            environment=env,
            network_isolation=network_isolation,
            name=job_name(label),
            startup_timeout_s=self.options.startup_timeout_s if startup_timeout_s is None else startup_timeout_s,
            invocation_timeout_s=self.options.invocation_timeout_s,
            session=self.session,
            log_sink=handle.logs,
            fail_fast=True,
            **options,
        )
        try:
            ep.start()
            handle.endpoint = ep
        except EmulatorError as exc:
            handle.error = exc
            self.serving_root(handle)
        return handle

    # -- processing -------------------------------------------------------------------------------------
    def processing_request(self, label: str, *, failing: bool = False) -> dict[str, Any]:
        """A CreateProcessingJob request from the config (``failing``: the job that must fail)."""
        pr = self.config.processing
        entry = pr.failing.entrypoint if failing and pr.failing.entrypoint is not None else pr.entrypoint
        args = pr.failing.arguments if failing and pr.failing.arguments is not None else pr.arguments
        env = pr.failing.environment if failing and pr.failing.environment is not None else pr.environment
        inputs: list[ProcessingInput] = pr.failing.inputs if failing and pr.failing.inputs is not None else pr.inputs
        name = job_name(label)
        app: dict[str, Any] = {"ImageUri": self.image}
        if entry:
            app["ContainerEntrypoint"] = list(entry)
        if args:
            app["ContainerArguments"] = list(args)
        out_root = self.workdir / "processing-output" / name
        request: dict[str, Any] = {
            "ProcessingJobName": name,
            "AppSpecification": app,
            "ProcessingInputs": [
                {
                    "InputName": i.name,
                    "S3Input": {
                        "S3Uri": str(self.config.path(i.source)),
                        "LocalPath": i.local_path,
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
                for i in inputs
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": o.name,
                        "S3Output": {
                            "S3Uri": str(out_root / o.name),
                            "LocalPath": o.local_path,
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for o in pr.outputs
                ]
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": DEFAULT_INSTANCE_TYPE,
                    "VolumeSizeInGB": DEFAULT_VOLUME_SIZE_GB,
                }
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": pr.max_runtime_s},
            "NetworkConfig": {"EnableNetworkIsolation": self.config.capabilities.network_isolation},
        }
        if env:
            request["Environment"] = dict(env)
        if not request["ProcessingInputs"]:
            del request["ProcessingInputs"]
        return request

    def process(self, label: str, request: dict[str, Any]) -> ProcessingRun:
        """Run one processing job, recording the /opt/ml tree its container left (``record_tree``)."""
        from emulator import EmulatorError, ProcessingJob

        run = ProcessingRun(label, request)
        start = time.monotonic()
        job: ProcessingJob | None = None
        try:
            job = ProcessingJob(request, session=self.session, log_sink=run.logs, record_tree=True)
            run.describe = job.run()
        except EmulatorError as exc:
            run.error = exc
        finally:
            run.seconds = time.monotonic() - start
            if job is not None and job.final_tree:
                # One instance: its tree (sorted by host name, so a cluster would report algo-1).
                run.opt_ml = job.final_tree[min(job.final_tree)]
        logger.info("%s", run.summary())
        return run

    # -- images -----------------------------------------------------------------------------------------
    def image_tree(self, path: str = OPT_ML) -> dict[str, str]:
        """What the image itself holds under ``path``: absolute path -> ``file``, ``dir`` or ``symlink -> X``."""
        from emulator.runtime import image_tree

        return image_tree(self.image, path, session=self.session)

    # -- model directories --------------------------------------------------------------------------------
    def model_dir_with(self, model_dir: Path, extras: Mapping[str, bytes]) -> tuple[Path, list[str]]:
        """A copy of ``model_dir`` plus ``extras`` (relative path -> content); returns it and what was added.

        A path the model already has (or whose parent is a file in it) is left as the model has it: the
        model's own files are never replaced.
        """
        import shutil

        dest = self.workdir / f"model-extras-{_token()}"
        shutil.copytree(model_dir, dest, symlinks=True)
        added: list[str] = []
        for rel, content in extras.items():
            target = dest / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                continue
            if target.exists() or target.is_symlink():
                continue
            target.write_bytes(content)
            added.append(rel)
        return dest, added


def iter_lines(body: bytes) -> Iterator[str]:
    """The non-empty lines of a text body."""
    for line in body.decode("utf-8", "replace").splitlines():
        if line.strip():
            yield line


# -- judging -------------------------------------------------------------------------------------------------
_SERVER_LINE = re.compile(
    rf"(Listening at|Running on|running on|Serving on|serving on|listening on|Listening on)\b[^\n]*:{SERVING_PORT}\b"
    r"|Booting worker with pid"
)


def server_started(line: str) -> bool:
    """Whether a log line announces an HTTP server on the serving port (gunicorn, uvicorn, Flask, ...)."""
    return _SERVER_LINE.search(line) is not None


def _as_numbers(hyperparameters: Mapping[str, str]) -> dict[str, Any]:
    """The hyperparameters that read as numbers, as JSON numbers (the t05 experiment); {} if none does."""
    out: dict[str, Any] = {}
    for key, value in hyperparameters.items():
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out if any(not isinstance(v, str) for v in out.values()) else {}


def require_endpoint(handle: EndpointHandle, check_id: str) -> Endpoint:
    """The handle's running endpoint; else fail ``check_id`` if it owns the root cause, or skip it as blocked."""
    from contract_tests._report import judge

    __tracebackhide__ = True
    if handle.endpoint is not None:
        return handle.endpoint
    assert handle.root is not None, "a handle without an endpoint carries its root cause"
    judge(
        handle.root,
        check_id,
        sent=f"docker run IMAGE serve, {MODEL_DIR} mounted read-only, port {SERVING_PORT} published on 127.0.0.1",
        expected=f"GET {PING_PATH} answers 200 within the start-up bound (--startup-timeout)",
        got=str(handle.error or "not started"),
        logs=handle.log_text(),
    )
    raise AssertionError("unreachable")  # pragma: no cover - judge fails or skips
