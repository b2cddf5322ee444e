"""Batch transform: like SageMaker CreateTransformJob; :class:`TransformJob` follows the job contract.

The model's serving container runs through :class:`emulator.serving.Endpoint` with the batch variables;
``/execution-parameters`` is asked once; each input object is split, packed by real bytes and sent with up
to MaxConcurrentTransforms requests in flight (a bounded window: memory stays flat for any input size),
and its responses are written in input order to ``<input name>.out``, published only if the whole object
succeeded. :meth:`TransformJob.stop` (any thread, any time) sends no new batch, abandons the requests in
flight, discards the outputs not yet published and stops and removes the container. Choices where the
platform's behaviour is unverified are listed in docs/serving-and-transform.md.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as _wait_futures
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.constants import (
    BATCH_STRATEGY_ENV,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_INVOCATIONS_MAX_RETRIES,
    DEFAULT_INVOCATIONS_TIMEOUT_S,
    MAX_CONCURRENT_PAYLOAD_MB,
    MAX_FAILURE_REASON_CHARS,
    MAX_PAYLOAD_IN_MB,
    MULTI_RECORD,
)
from emulator.errors import ContainerFailed, EmulatorError, InvalidSpec, ModelError
from emulator.runtime import session as _session
from emulator.runtime.container import LogSink
from emulator.runtime.docker import DockerSeam
from emulator.runtime.lifecycle import BackgroundJob
from emulator.runtime.names import UniqueNameJob
from emulator.runtime.preflight import temporary_s3_message
from emulator.runtime.session import Session
from emulator.serving import Endpoint, ModelDefinition, ModelSource, get_model
from emulator.serving.instances import ModelInstances
from emulator.serving.invocations import RawResponse, model_error
from emulator.spec import load_spec, validate
from emulator.storage.locations import check_output, check_readable
from emulator.storage.s3 import S3, is_s3
from emulator.storage.workdirs import make_work_dir
from emulator.transform import dataprocessing as _dataprocessing
from emulator.transform import records as _records
from emulator.transform.objects import InputObject, StagedOutput, list_inputs, open_object, output_location
from emulator.transform.progress import FileProgress, Progress, ProgressPrinter
from emulator.transform.settings import (
    BatchSettings,
    BatchSettingsError,
    fetch_execution_parameters,
    resolve_settings,
)

__all__ = [
    "BatchSettings",
    "BatchSettingsError",
    "FileProgress",
    "FileResult",
    "ProgressPrinter",
    "TransformJob",
    "resolve_settings",
]

logger = logging.getLogger(__name__)

_RETRY_BACKOFF_S = 0.1
#: How often the job's thread looks at the stop flag while it waits for an answer.
_STOP_POLL_S = 0.1
_MAX_ENVIRONMENT_ENTRIES = 16


def with_defaults(request: Mapping[str, Any], model_name: str | None = None) -> dict[str, Any]:
    """Fill what a local run can default (job name, resources, model name); the rest is the user's."""
    req = json.loads(json.dumps(dict(request), default=str))
    if model_name:
        req.setdefault("ModelName", model_name)
    req.setdefault("TransformJobName", _session.job_name(f"transform-{req.get('ModelName') or 'job'}"))
    res = req.setdefault("TransformResources", {})
    res.setdefault("InstanceType", DEFAULT_INSTANCE_TYPE)
    res.setdefault("InstanceCount", 1)
    return dict(req)


@dataclass
class FileResult:
    """What happened to one input object."""

    input: str
    output: str
    status: str = "InProgress"  # Completed | Failed | Stopped
    records: int = 0
    requests: int = 0
    failure: str | None = None


@dataclass
class _FileRun:
    obj: InputObject
    out: StagedOutput
    assembler: _records.Assembler
    progress: FileProgress
    result: FileResult
    pending: int = 0
    produced_all: bool = False


@dataclass
class _Task:
    run: _FileRun
    first: int
    count: int
    records: tuple[bytes, ...]
    future: Future[RawResponse]


class _Stopped(Exception):
    """Raised inside the job's thread once a stop was requested: it unwinds the work to the clean-up."""


class TransformJob(UniqueNameJob, BackgroundJob):
    """One batch transform job. Like SageMaker CreateTransformJob; :meth:`run` blocks and returns the Describe shape.

    It follows the job contract (:mod:`emulator.runtime.lifecycle`): :meth:`start` / :meth:`wait`, :meth:`run`
    (Ctrl-C raises :class:`~emulator.errors.Interrupted` after the clean-up), :meth:`stop` from any thread and
    :meth:`describe` at any time.

    Args:
        request: a CreateTransformJob request (dict, or a YAML/JSON file).
        models: ModelName -> CreateModel request (or ModelDefinition); models made with
            :func:`emulator.serving.create_model` are found too.
        image, model_data: the local extension: serve this image with this model instead of a named model.
        session: the shared config, Docker client and S3 (default: a session of its own from ``config``,
            ``docker`` and ``s3``, closed when the job ends).
        progress: called with per-file progress (see :class:`emulator.transform.progress.ProgressPrinter`).

    Raises:
        InvalidSpec: the request does not fit CreateTransformJob, or the model is unknown.
    """

    kind = "transform"

    def __init__(
        self,
        request: Mapping[str, Any] | str | Path,
        *,
        models: Mapping[str, Any] | None = None,
        image: str | None = None,
        model_data: ModelSource = None,
        session: Session | None = None,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
        progress: Progress | None = None,
    ) -> None:
        super().__init__()
        self._session, self._own_session = Session.of(session, config, docker, s3)
        self.config = self._session.config
        stem = image.rsplit("/", 1)[-1].split(":", 1)[0] if image else None
        self.request = with_defaults(load_spec(request), model_name=stem)
        validate("CreateTransformJob", self.request)
        req = self.request
        self.name = req["TransformJobName"]
        self.arn = _session.arn(self.config, "transform-job", self.name)
        self.model = (
            ModelDefinition(req["ModelName"], image, model_data) if image else get_model(req["ModelName"], models)
        )
        self._check_supported()
        self._check_locations(temporary_s3=self._own_session and s3 is None and self.config.s3_endpoint_url is None)
        self._sink = log_sink
        self._progress = progress
        self.files: list[FileResult] = []
        self.settings: BatchSettings | None = None
        #: The serving container while the job runs, and whether it passed /ping (guarded by the lock).
        self._endpoint: Endpoint | ModelInstances | None = None
        self._ready = False
        self._update(**self._base_describe())

    # -- checks ------------------------------------------------------------------------------------------------
    def _check_supported(self) -> None:
        req = self.request
        mct, mpm = req.get("MaxConcurrentTransforms") or 0, req.get("MaxPayloadInMB")
        if mpm is not None and mpm > MAX_PAYLOAD_IN_MB:
            raise InvalidSpec(f"MaxPayloadInMB {mpm} is over the platform's {MAX_PAYLOAD_IN_MB}; send at most that")
        if mct and mpm and mct * mpm > MAX_CONCURRENT_PAYLOAD_MB:
            raise InvalidSpec(
                f"MaxConcurrentTransforms x MaxPayloadInMB = {mct} x {mpm} = {mct * mpm}, over "
                f"{MAX_CONCURRENT_PAYLOAD_MB}; lower one of them"
            )
        if len(req.get("Environment") or {}) > _MAX_ENVIRONMENT_ENTRIES:
            raise InvalidSpec(
                f"Environment: at most {_MAX_ENVIRONMENT_ENTRIES} entries are allowed in CreateTransformJob; move "
                "the rest to the model's Environment"
            )
        if req["TransformResources"]["InstanceCount"] > 1:
            logger.warning(
                "%s: InstanceCount %s: the emulator runs one instance, which gets every input object",
                self.name,
                req["TransformResources"]["InstanceCount"],
            )
        if self.model.containers and self.model.execution_mode != "Serial":
            raise InvalidSpec(
                f"model {self.model.name}: InferenceExecutionConfig Mode {self.model.execution_mode} serves one "
                "container per request (TargetContainerHostname); batch transform runs a Serial pipeline only"
            )
        if self.model.multi_model:
            raise InvalidSpec(
                f"model {self.model.name} is Mode MultiModel, which batch transform does not support; create a "
                "SingleModel model with one of its model .tar.gz files as ModelDataUrl"
            )
        for key in ("DataCaptureConfig", "ExperimentConfig"):
            if req.get(key):
                logger.warning("%s: %s is not emulated and is ignored", self.name, key)
        self._processor()  # DataProcessing errors surface now, not after the container started

    def _check_locations(self, *, temporary_s3: bool) -> None:
        """Before the container: the local input readable, the output writable (or on an S3 that lasts)."""
        uri = str(self.request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        check_readable(uri, "TransformInput.DataSource.S3DataSource.S3Uri", missing_ok=True)
        out = str(self.request["TransformOutput"]["S3OutputPath"])
        if is_s3(out) and temporary_s3:
            raise InvalidSpec(temporary_s3_message("TransformOutput.S3OutputPath", out))
        check_output(out, "TransformOutput.S3OutputPath")

    def _processor(self) -> _dataprocessing.DataProcessor:
        ti, to = self.request["TransformInput"], self.request["TransformOutput"]
        try:
            return _dataprocessing.DataProcessor(
                self.request.get("DataProcessing"),
                ti.get("ContentType"),
                to.get("Accept"),
                split_type=ti.get("SplitType", "None"),
                assemble_with=to.get("AssembleWith", "None"),
            )
        except _records.RecordError as exc:
            raise InvalidSpec(f"DataProcessing: {exc}") from None

    # -- the work (in the job's thread) ------------------------------------------------------------------------
    def _execute(self) -> None:
        """Run to the end: Completed, Failed or Stopped (a stop wins over whatever it cut short).

        Raises (re-raised by :meth:`wait`):
            InputNotFound: there is no input object.
            EndpointNotReady, ContainerFailed: the model's container did not start.
        """
        work = make_work_dir("transform", self.config.work_dir)
        self._update(TransformStartTime=_session.now())
        try:
            self._transform(work)
        except BaseException as exc:
            if not self.stop_requested:
                if isinstance(exc, ContainerFailed | BatchSettingsError):
                    self._end("Failed", f"ClientError: {exc}")
                    return
                raise
            # Whatever the stop cut short (a container killed while starting, a request abandoned) is not an error.
            logger.debug("%s: after the stop: %r", self.name, exc)
            self._end_stopped()
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if self._own_session:
                self._session.close()

    def _transform(self, work: Path) -> None:
        self._check_stop()
        inputs = list_inputs(self.request["TransformInput"]["DataSource"], self._s3)
        with self._lock:
            self._check_stop()  # under the lock: a stop either sees the endpoint or is seen here
            ep = self._endpoint = self._new_endpoint()
        try:
            with ep:
                with self._lock:
                    self._ready = True
                self._check_stop()
                # The container is removed when the job ends: point at the log lines the job streamed instead.
                ep.invoker.hint = f"See the log lines of transform job {self.name}'s container for more information."
                self.settings = resolve_settings(self.request, fetch_execution_parameters(ep.invoker))
                self._update(
                    MaxConcurrentTransforms=self.settings.max_concurrent,
                    MaxPayloadInMB=self.settings.max_payload_mb,
                    BatchStrategy=self.settings.strategy,
                )
                _Runner(self, ep, work).run(inputs)
        finally:
            with self._lock:
                self._endpoint, self._ready = None, False
        self._finish()

    def _on_stop(self, grace_s: float | None) -> None:
        """The job's thread sees the flag within ``_STOP_POLL_S`` and cleans up (the serving grace, then removal);
        only a container that is still starting, or a kill now (``grace_s=0``), is stopped from here."""
        with self._lock:
            ep, ready = self._endpoint, self._ready
        if ep is None or (ready and grace_s != 0):
            return  # not started (the thread checks the flag first) or serving (the thread closes it)
        # Endpoint.stop waits out the grace period: never block the caller (a second Ctrl-C must reach run()).
        threading.Thread(target=self._stop_endpoint, args=(ep, grace_s), name=f"stop-{self.name}"[:60]).start()

    def _stop_endpoint(self, ep: Endpoint | ModelInstances, grace_s: float | None) -> None:
        try:
            ep.stop(grace_s)
        except Exception:  # the job's thread removes the container whatever happens here
            logger.exception("%s: stopping the serving container failed", self.name)

    def _check_stop(self) -> None:
        if self.stop_requested:
            raise _Stopped

    def _stop_requested_within(self, seconds: float) -> bool:
        return self._stop_requested.wait(seconds)

    def _s3(self) -> S3:
        return self._session.s3

    def _new_endpoint(self) -> Endpoint | ModelInstances:
        """The model's container, or an inference pipeline's containers (each batch goes through the chain); the
        job's Environment and the batch variables reach every container."""
        extra = {**(self.request.get("Environment") or {}), **self._batch_env()}
        common: dict[str, Any] = {
            "instance_type": self.request["TransformResources"]["InstanceType"],
            "name": self.name,
            "max_connections": 100,
            "session": self._session,  # one Docker client and one S3 for inputs, outputs and the model
            "log_sink": self._sink,
            "kind": "transform",
        }
        if self.model.containers:
            parts = tuple(replace(c, environment={**c.environment, **extra}) for c in self.model.containers)
            return ModelInstances(replace(self.model, containers=parts), instance_count=1, **common)
        return Endpoint(
            self.model.image,
            model_data=self.model.model_data,
            environment={**self.model.environment, **extra},
            network_isolation=self.model.network_isolation,
            hostname=self.model.hostname,
            **common,
        )

    def _batch_env(self) -> dict[str, str]:
        """SAGEMAKER_BATCH always; the other three only when the request sets them (as the platform does)."""
        req = self.request
        env = {"SAGEMAKER_BATCH": "true"}
        if req.get("MaxPayloadInMB") is not None:
            env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(req["MaxPayloadInMB"])
        if req.get("BatchStrategy"):
            env["SAGEMAKER_BATCH_STRATEGY"] = BATCH_STRATEGY_ENV[req["BatchStrategy"]]
        if req.get("MaxConcurrentTransforms"):
            env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(req["MaxConcurrentTransforms"])
        return env

    # -- results -----------------------------------------------------------------------------------------------
    def _finish(self) -> None:
        failed = [f for f in self.files if f.status == "Failed"]
        if not failed:
            self._end("Completed", None)
            return
        more = f" ({len(failed) - 1} more input objects failed)" if len(failed) > 1 else ""
        self._end("Failed", f"ClientError: {failed[0].failure}{more}")

    def _end_stopped(self) -> None:
        for f in self.files:
            if f.status == "InProgress":
                f.status = "Stopped"
        self._end("Stopped", None)
        logger.warning("%s: stopped; the container has been removed", self.name)

    def _end(self, status: str, reason: str | None) -> None:
        self._update(
            TransformJobStatus=status,
            TransformEndTime=_session.now(),
            FailureReason=reason[:MAX_FAILURE_REASON_CHARS] if reason else None,
        )
        logger.info("%s: %s%s", self.name, status, f" ({reason})" if reason else "")

    def _base_describe(self) -> dict[str, Any]:
        req = self.request
        d: dict[str, Any] = {
            "TransformJobName": self.name,
            "TransformJobArn": self.arn,
            "TransformJobStatus": "InProgress",
            "ModelName": req["ModelName"],
            "CreationTime": _session.now(),
        }
        for key in (
            "MaxConcurrentTransforms",
            "MaxPayloadInMB",
            "BatchStrategy",
            "ModelClientConfig",
            "Environment",
            "TransformInput",
            "TransformOutput",
            "DataCaptureConfig",
            "TransformResources",
            "DataProcessing",
            "ExperimentConfig",
        ):
            if req.get(key) is not None:
                d[key] = req[key]
        return d


class _Runner:
    """Sends every input object's batches through a bounded window of concurrent requests, in order."""

    def __init__(self, job: TransformJob, ep: Endpoint | ModelInstances, work: Path) -> None:
        assert job.settings is not None
        self.job, self.ep, self.work, self.s = job, ep, work, job.settings
        req = job.request
        self.ti, self.to = req["TransformInput"], req["TransformOutput"]
        self.split = self.ti.get("SplitType", "None")
        self.limit = _records.payload_limit(self.s.max_payload_mb)
        self.dp = job._processor()
        mcc = req.get("ModelClientConfig") or {}
        self.timeout_s = float(mcc.get("InvocationsTimeoutInSeconds", DEFAULT_INVOCATIONS_TIMEOUT_S))
        self.retries = int(mcc.get("InvocationsMaxRetries", DEFAULT_INVOCATIONS_MAX_RETRIES))
        self.headers = {
            k: v for k, v in (("Content-Type", self.ti.get("ContentType")), ("Accept", self.to.get("Accept"))) if v
        }
        self.window: collections.deque[_Task] = collections.deque()
        self.max_window = 2 * self.s.max_concurrent  # keeps workers busy while the oldest answer is written
        self.pool = ThreadPoolExecutor(self.s.max_concurrent, thread_name_prefix=f"transform-{job.name[:20]}")
        #: Files opened and not yet published or discarded.
        self.open: list[_FileRun] = []

    def run(self, inputs: list[InputObject]) -> None:
        try:
            for obj in inputs:
                self._produce(self._open(obj))
            while self.window:
                self._complete(self.window.popleft())
        except BaseException:
            # A stop or a dead container: abandon the requests in flight, publish nothing more.
            for task in self.window:
                task.future.cancel()
                task.future.add_done_callback(_close_result)
            for run in self.open:
                run.out.discard()
            raise
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _open(self, obj: InputObject) -> _FileRun:
        out = StagedOutput(output_location(self.to["S3OutputPath"], obj), self.work)
        result = FileResult(obj.location, out.destination)
        self.job.files.append(result)
        run = _FileRun(
            obj,
            out,
            _records.Assembler(out.file, self.to.get("AssembleWith", "None")),
            FileProgress(obj.relative, obj.size),
            result,
        )
        self.open.append(run)
        return run

    def _produce(self, run: _FileRun) -> None:
        try:
            with contextlib.closing(self._batches(run)) as batches:
                for first, count, records, payload in batches:
                    self.job._check_stop()
                    if run.result.failure:
                        break
                    self._submit(run, first, count, records, payload)
        except ContainerFailed:
            raise
        except (_records.RecordError, EmulatorError, OSError) as exc:
            self._fail(run, f"input {run.obj.location}: {exc}")
        run.produced_all = True
        self._maybe_publish(run)

    def _batches(self, run: _FileRun) -> Generator[tuple[int, int, tuple[bytes, ...], Any]]:
        obj = run.obj
        if self.limit is None and (self.split == "None" or self.s.strategy == MULTI_RECORD):
            yield 1, 0, (), lambda: self._streamed_body(obj)  # MaxPayloadInMB=0: one chunked request
            return
        with open_object(obj, self.ti.get("CompressionType"), self.job._s3) as stream:
            if self.split == "Line" and not self.dp.per_record:  # cut in blocks: no Python step per record
                for b in _records.iter_line_batches(stream, self.s.strategy, self.limit, source=obj.relative):
                    yield b.first_record, b.count, (), b.payload
                return
            cap = self.limit if self.split == "None" and self.limit else _records.MAX_RECORD_BYTES
            records = _records.iter_records(stream, self.split, source=obj.relative, max_record_bytes=cap)
            for b in _records.iter_batches(
                records,
                self.s.strategy,
                self.limit,
                self.split,
                input_filter=self.dp.filter_input if self.dp.active else None,
                keep_records=self.dp.join,
                source=obj.relative,
            ):
                yield b.first_record, b.count, b.records, b.payload

    def _streamed_body(self, obj: InputObject) -> Iterator[bytes]:
        with open_object(obj, self.ti.get("CompressionType"), self.job._s3) as stream:
            if self.split == "None":
                yield from _records.iter_chunks(stream, source=obj.relative)
                return
            if self.split == "Line" and not self.dp.per_record:
                yield from _records.iter_line_blocks(stream, source=obj.relative)
                return
            records: Iterable[bytes] = _records.iter_records(stream, self.split, source=obj.relative)
            if self.dp.active:
                records = map(self.dp.filter_input, records)
            yield from _records.iter_payload(records, self.split)

    def _submit(self, run: _FileRun, first: int, count: int, records: tuple[bytes, ...], payload: Any) -> None:
        run.pending += 1
        size = len(payload) if isinstance(payload, bytes) else 0
        self.window.append(_Task(run, first, count, records, self.pool.submit(self._send, payload)))
        run.progress.bytes_sent += size
        while len(self.window) >= self.max_window:
            self._complete(self.window.popleft())

    def _send(self, payload: bytes | Callable[[], Iterable[bytes]]) -> RawResponse:
        """One request with ModelClientConfig's timeout and retries (timeouts, connection errors, 429, 5xx)."""
        invoker = self.ep.invoker
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            body = payload() if callable(payload) else payload
            try:
                raw = invoker.post(body, self.headers, timeout_s=self.timeout_s)
            except ModelError as exc:
                if last:
                    raise
                logger.warning(
                    "%s: %s; retrying (%d of %d)", self.job.name, exc.original_message or exc, attempt + 1, self.retries
                )
            else:
                if 200 <= raw.status < 300:
                    return raw
                error = model_error(raw.status, raw.preview(), invoker.hint, raw.source)
                raw.close()
                if last or not (raw.status == 429 or raw.status >= 500):
                    raise error
                logger.warning(
                    "%s: the container answered %s; retrying (%d of %d)",
                    self.job.name,
                    raw.status,
                    attempt + 1,
                    self.retries,
                )
            if self.job._stop_requested_within(min(_RETRY_BACKOFF_S * 2**attempt, 2.0)):
                raise _Stopped
        raise AssertionError("unreachable")

    def _complete(self, task: _Task) -> None:
        run = task.run
        try:
            if run.result.failure:
                task.future.cancel()
                task.future.add_done_callback(_close_result)
                return
            self._write(task, self._result(task.future))
        except _Stopped:
            task.future.add_done_callback(_close_result)  # an answer that comes after all is closed, not read
            raise
        except ContainerFailed:
            raise
        except (ModelError, _records.RecordError, OSError) as exc:
            self._fail(run, f"input {run.obj.location}, {_span(task)}: {exc}")
        finally:
            run.pending -= 1
            self._maybe_publish(run)

    def _result(self, future: Future[RawResponse]) -> RawResponse:
        """The answer, or :class:`_Stopped` as soon as a stop is requested (the request is abandoned)."""
        while not _wait_futures([future], timeout=_STOP_POLL_S).done:
            self.job._check_stop()
        self.job._check_stop()
        return future.result()

    def _write(self, task: _Task, raw: RawResponse) -> None:
        run = task.run
        try:
            if self.dp.active:
                for out in self.dp.process_output(task.records, raw.read(), first_record=task.first):
                    run.assembler.add(out)
            else:
                run.assembler.add_chunks(raw.iter_chunks())
        finally:
            raw.close()
        p = run.progress
        p.records += task.count
        p.requests += 1
        p.bytes_written = run.assembler.bytes_written
        run.result.records, run.result.requests = p.records, p.requests
        self._report(p)

    def _fail(self, run: _FileRun, reason: str) -> None:
        if run.result.failure:
            return
        run.result.failure = reason
        logger.error("%s: %s", self.job.name, reason)
        for task in self.window:
            if task.run is run:
                task.future.cancel()

    def _maybe_publish(self, run: _FileRun) -> None:
        if not run.produced_all or run.pending:
            return
        self.job._check_stop()  # after a stop nothing more is published
        self.open.remove(run)
        if run.result.failure:
            run.out.discard()
            run.result.status = "Failed"
        else:
            try:
                run.out.publish(self.job._s3)
                run.result.status = "Completed"
            except (EmulatorError, OSError) as exc:
                run.result.status, run.result.failure = "Failed", f"output {run.out.destination}: {exc}"
        run.progress.done, run.progress.failed = True, run.result.status == "Failed"
        self._report(run.progress)

    def _report(self, p: FileProgress) -> None:
        if self.job._progress is not None:
            try:
                self.job._progress(p)
            except Exception:  # a broken progress display must not break the job
                logger.exception("progress callback failed")


def _span(task: _Task) -> str:
    if task.count == 0:
        return "the whole object (one chunked request)"
    return f"record {task.first}" if task.count == 1 else f"records {task.first}-{task.first + task.count - 1}"


def _close_result(future: Future[RawResponse]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
