"""Multi-model endpoints (CreateModel ``Mode: MultiModel``): one container, many models, loaded per TargetModel.

``with MultiModelEndpoint(image, model_data="s3://bucket/models/") as ep: ep.invoke(b"1,2", target_model="a.tar.gz")``

The image must carry the label ``com.amazonaws.sagemaker.capabilities.multi-models=true`` (else the start is
refused in one line) and gets ``SAGEMAKER_MULTI_MODEL=true``. ModelDataUrl is a prefix (S3, or a local directory)
of model .tar.gz files. On the first InvokeEndpoint with ``TargetModel`` (a key relative to the prefix) the
emulator extracts that archive into a staging directory mounted read-only at /opt/ml/models (so the container
sees it at /opt/ml/models/<name>/model, and needs nothing of the client's filesystem but that mount), then calls
``POST /models {"model_name": <name>, "url": "/opt/ml/models/<name>/model"}`` and
``POST /models/<name>/invoke`` with InvokeEndpoint's headers (X-Amzn-SageMaker-Target-Model among them); later
invocations reuse the loaded model. ``<name>`` is opaque to the container (the MD5 of TargetModel here).

:class:`ModelCache` keeps the loaded models in least-recently-used order: loading one more than
``max_loaded_models`` (constants.MME_MAX_LOADED_MODELS by default), or a load the container answers with 507,
first unloads the least recently used (``DELETE /models/<name>``); a 507 with nothing left to unload reaches the
client as a ModelError with OriginalStatusCode 507. MultiModelConfig.ModelCacheSetting ``Disabled`` unloads each
model after its invocation. A missing TargetModel, or a TargetModel with no object under the prefix, is the
platform's ValidationError. :func:`invoke_running` does the same for an endpoint another process serves (the CLI's
``invoke NAME --target-model``), from the labels of its container.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import urllib.parse
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Self, Unpack

import requests

from emulator.config import EmulatorConfig
from emulator.constants import (
    INVOCATION_TIMEOUT_S,
    LABEL_MME_CACHE,
    LABEL_MME_MAX_LOADED,
    LABEL_MME_SOURCE,
    LABEL_MME_STAGING,
    LABEL_MULTI_MODELS,
    MME_MAX_LOADED_MODELS,
    MODELS_DIR,
    MODELS_PATH,
    MULTI_MODEL_ENV,
)
from emulator.errors import EmulatorError, InputNotFound, InvalidSpec, ModelError, S3Error, ValidationError
from emulator.runtime.docker import DockerClient, DockerSeam, Managed, Mount
from emulator.runtime.remote import client as remote_client
from emulator.runtime.session import Session
from emulator.serving.endpoint import Endpoint
from emulator.serving.invocations import Body, InvokeHeaders, Invoker, client_of, find_endpoint, model_error
from emulator.serving.invocations import invoke_endpoint as invoke_single_model
from emulator.serving.models import ModelDefinition, ModelSource
from emulator.storage.artifacts import extract_model
from emulator.storage.s3 import S3, is_s3, split_s3

logger = logging.getLogger(__name__)

#: Loads and unloads wait this long for the container (the platform allows a model 360 s to load).
_LOAD_TIMEOUT_S = 360.0
_MAX_LIST_PAGES = 100
_OUT_OF_MEMORY = 507
#: InvokeEndpoint's TargetModel: 1-1024 characters, printable (botocore's model: \A\S[\p{Print}]*\z).
_MAX_TARGET_MODEL_CHARS = 1024


def model_name(target_model: str) -> str:
    """The opaque ``model_name`` the container gets for a TargetModel (its MD5, safe as a directory name)."""
    return hashlib.md5(target_model.encode("utf-8"), usedforsecurity=False).hexdigest()


def missing_target_model() -> str:
    """The platform's ValidationError message for an invocation of a multi-model endpoint without TargetModel."""
    return f"Request {uuid.uuid4()} is missing a target model header."


def label_claims_multi_model(labels: Mapping[str, str]) -> bool:
    """Whether an image's labels claim the multi-model API (``...capabilities.multi-models=true``)."""
    return labels.get(LABEL_MULTI_MODELS, "").strip().lower() == "true"


class ModelStager:
    """Extracts a TargetModel's archive from the model prefix into ``staging/<name>/model`` (mounted read-only).

    Args:
        prefix: ModelDataUrl: an s3:// prefix or a local directory of model .tar.gz files.
        staging: the host directory mounted at /opt/ml/models.
        s3: the S3 client for an s3:// prefix.
        on_staged: called with a model's name once it is staged (a remote engine copies it into the container).
    """

    def __init__(
        self, prefix: str, staging: Path, s3: S3 | None = None, on_staged: Callable[[str], None] | None = None
    ) -> None:
        self.prefix = prefix
        self.staging = staging
        self._s3 = s3
        self._on_staged = on_staged

    def location(self, target_model: str) -> str:
        """The object (s3:// URI or local path) a TargetModel names under the prefix.

        Raises:
            ValidationError: the TargetModel is absolute or climbs out of the prefix.
        """
        if not 1 <= len(target_model) <= _MAX_TARGET_MODEL_CHARS or not target_model.isprintable():
            raise ValidationError(
                f"TargetModel {target_model[:100]!r} must be 1-{_MAX_TARGET_MODEL_CHARS} printable characters "
                "(InvokeEndpoint's limit); pass the key of a model .tar.gz under the endpoint's ModelDataUrl"
            )
        rel = PurePosixPath(target_model)
        if target_model != target_model.strip() or rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValidationError(
                f"TargetModel {target_model!r} is not a path relative to the endpoint's ModelDataUrl {self.prefix}; "
                "pass the key of a model .tar.gz under it (e.g. model-a.tar.gz)"
            )
        if is_s3(self.prefix):
            return f"{self.prefix.rstrip('/')}/{rel.as_posix()}"
        return str(Path(self.prefix.removeprefix("file://")).expanduser() / rel)

    def stage(self, target_model: str) -> str:
        """Extract the TargetModel (once); the URL the container loads it from (/opt/ml/models/<name>/model).

        Raises:
            ValidationError: no such object under the prefix (the platform's "Failed to download model data").
        """
        name = model_name(target_model)
        dest = self.staging / name / "model"
        url = f"{MODELS_DIR}/{name}/model"
        if dest.is_dir():
            return url
        source = self.location(target_model)
        if not is_s3(source) and not Path(source).is_file():
            raise ValidationError(self._not_found(source))
        tmp = self.staging / f".{name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            extract_model(source, tmp / "model", self._s3)
        except (InputNotFound, S3Error):
            shutil.rmtree(tmp, ignore_errors=True)
            raise ValidationError(self._not_found(source)) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.rename(self.staging / name)  # whole or not at all: a container never sees a half-extracted model
        if self._on_staged is not None:
            self._on_staged(name)
        return url

    def remove(self, name: str) -> None:
        """Forget a staged model (after it is unloaded)."""
        shutil.rmtree(self.staging / name, ignore_errors=True)

    def _not_found(self, source: str) -> str:
        if is_s3(source):
            bucket, key = split_s3(source)
            where = f"bucket: {bucket}, key: {key}"
        else:
            where = f"path: {source}"
        return (
            f"Failed to download model data({where}). Please ensure that there is an object located at the URL and "
            "that the role passed to CreateModel has permissions to download the model."
        )


class ModelCache:
    """The models loaded in one multi-model container, least recently used first; loads, unloads and invokes.

    Args:
        invoker: the container's HTTP client.
        stager: puts a TargetModel's files where the container can load them.
        max_loaded: at most this many models loaded at once (the emulator's memory bound).
        keep: MultiModelConfig.ModelCacheSetting Enabled (True) or Disabled (unload after each invocation).
        loaded: model names the container has loaded already (least recently used first), e.g. from GET /models.
    """

    def __init__(
        self,
        invoker: Invoker,
        stager: ModelStager,
        *,
        max_loaded: int = MME_MAX_LOADED_MODELS,
        keep: bool = True,
        loaded: Sequence[str] = (),
    ) -> None:
        if max_loaded < 1:
            raise InvalidSpec(f"max_loaded_models {max_loaded}: at least 1 model must fit")
        self.invoker = invoker
        self.stager = stager
        self.max_loaded = max_loaded
        self.keep = keep
        self._loaded: OrderedDict[str, str | None] = OrderedDict((name, None) for name in loaded)
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()  # the bookkeeping (_loaded, _busy)
        self._load_lock = threading.Lock()  # one load or unload at a time

    @property
    def loaded(self) -> list[str]:
        """The names of the loaded models, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def invoke(
        self,
        body: Body,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        timeout_s: float | None = None,
        **headers: Unpack[InvokeHeaders],
    ) -> dict[str, Any]:
        """InvokeEndpoint with TargetModel: load the model if needed, then ``POST /models/<name>/invoke``.

        Raises:
            ValidationError: no TargetModel, no such model under the prefix, or the request is invalid.
            ModelError: the container refused the load (507 with nothing left to unload, or another error) or
                answered the invocation with 4xx/5xx.
        """
        target_model = headers.get("target_model")
        if target_model is None:
            raise ValidationError(missing_target_model())
        data = body if isinstance(body, bytes | bytearray | memoryview | str) else body.read()
        name = model_name(target_model)
        for attempt in (1, 2):
            self._acquire(target_model, name)
            try:
                return self.invoker.invoke(
                    data,
                    content_type=content_type,
                    accept=accept,
                    custom_attributes=custom_attributes,
                    timeout_s=timeout_s,
                    path=f"{MODELS_PATH}/{name}/invoke",
                    **headers,
                )
            except ModelError as exc:
                # 404: the container no longer has it (unloaded by another process, a worker restarted): load again.
                if exc.original_status_code != 404 or attempt == 2:
                    raise
                with self._lock:
                    self._loaded.pop(name, None)
            finally:
                self._release(name)
        raise AssertionError("unreachable")  # pragma: no cover

    def _acquire(self, target_model: str, name: str) -> None:
        """Mark ``name`` in use, loading it first if needed. Loads and unloads run one at a time (``_load_lock``);
        an invocation of a loaded model only takes ``_lock`` for the bookkeeping, so it never waits for a load."""
        if self._take(name):
            return
        with self._load_lock:
            if self._take(name):  # loaded meanwhile (another caller of the same model)
                return
            self._load(target_model, name)

    def _take(self, name: str) -> bool:
        with self._lock:
            if name not in self._loaded:
                return False
            self._loaded.move_to_end(name)
            self._busy[name] += 1
            return True

    def _release(self, name: str) -> None:
        with self._lock:
            self._busy[name] -= 1
            idle = self._busy[name] <= 0
            if idle:
                del self._busy[name]
        if idle and not self.keep:
            with self._load_lock:
                with self._lock:
                    unused = name in self._loaded and not self._busy[name]
                if unused:
                    self.unload(name)

    def _load(self, target_model: str, name: str) -> None:
        """Stage and ``POST /models`` (under ``_load_lock``); ``name`` is loaded and in use when it returns."""
        url = self.stager.stage(target_model)
        while len(self._loaded) >= self.max_loaded and self._unload_lru(name):
            pass
        while True:
            status, answer = self._call("POST", MODELS_PATH, {"model_name": name, "url": url})
            if status == _OUT_OF_MEMORY and self._unload_lru(name):
                continue  # out of memory: the platform unloads a least recently used model and tries again
            break
        if 200 <= status < 300 or status == 409:  # 409: loaded already (by another process)
            with self._lock:
                self._loaded[name] = target_model
                self._busy[name] += 1
                count = len(self._loaded)
            logger.info("multi-model endpoint: loaded %s as %s (%d loaded)", target_model, name, count)
            return
        self.stager.remove(name)
        raise model_error(status, answer.decode("utf-8", "replace"), self.invoker.hint)

    def _unload_lru(self, keep: str) -> bool:
        """Unload the least recently used model not in use (never ``keep``); False if there is none."""
        with self._lock:
            victim = next((n for n in self._loaded if n != keep and not self._busy[n]), None)
            if victim is not None:
                self._loaded.pop(victim)  # from now on an invocation of it waits to load it again
        if victim is None:
            return False
        self.unload(victim)
        return True

    def unload(self, name: str) -> None:
        """``DELETE /models/<name>`` (a 404 means it is gone already) and forget its staged files."""
        with self._lock:
            self._loaded.pop(name, None)
        status, answer = self._call("DELETE", f"{MODELS_PATH}/{name}")
        self.stager.remove(name)
        if not (200 <= status < 300 or status == 404):
            logger.warning(
                "multi-model endpoint: DELETE %s/%s answered %d: %r", MODELS_PATH, name, status, answer[:200]
            )

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        try:
            return self.invoker.call(method, path, json_body=body, timeout_s=_LOAD_TIMEOUT_S)
        except requests.RequestException as exc:
            reason = " ".join(str(exc).split())[:300]
            raise model_error(0, f"{method} {path}: no answer ({reason})", self.invoker.hint) from None


def listed_models(invoker: Invoker) -> list[str]:
    """The model names ``GET /models`` lists (following nextPageToken); [] if the answer is not the documented JSON."""
    names: list[str] = []
    token: str | None = None
    for _ in range(_MAX_LIST_PAGES):
        path = MODELS_PATH + (f"?next_page_token={urllib.parse.quote(token)}" if token else "")
        try:
            status, body = invoker.call("GET", path)
            page = json.loads(body) if status == 200 else {}
        except (requests.RequestException, ValueError):
            return names
        if not isinstance(page, dict):
            return names
        names += [str(m["modelName"]) for m in page.get("models") or [] if isinstance(m, dict) and "modelName" in m]
        token = page.get("nextPageToken")
        if not token:
            break
    return names


class MultiModelEndpoint(Endpoint):
    """A multi-model endpoint: one serving container, models loaded per ``target_model``; a context manager.

    Args:
        image: an image labelled ``com.amazonaws.sagemaker.capabilities.multi-models=true``.
        model_data: ModelDataUrl: an s3:// prefix or a local directory of model .tar.gz files.
        model_cache: MultiModelConfig.ModelCacheSetting Enabled (True) or Disabled (False: unload after each call).
        max_loaded_models: the memory bound: at most this many models loaded at once (least recently used
            unloaded first).
        memory_limit_mb: the container's memory limit in MiB (instead of the instance type's).
        **kwargs: as :class:`Endpoint`.
    """

    multi_model = True

    def __init__(
        self,
        image: str,
        *,
        model_data: ModelSource = None,
        model_cache: bool = True,
        max_loaded_models: int = MME_MAX_LOADED_MODELS,
        memory_limit_mb: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model_data, str | Path) or not str(model_data):
            raise InvalidSpec(
                "a multi-model endpoint needs ModelDataUrl: the s3:// prefix or local directory of its model "
                ".tar.gz files (model_data)"
            )
        if max_loaded_models < 1:
            raise InvalidSpec(f"max_loaded_models {max_loaded_models}: at least 1 model must fit")
        super().__init__(image, model_data=None, **kwargs)
        self.environment[MULTI_MODEL_ENV] = "true"
        self.model_prefix = str(model_data)
        self.model_cache = model_cache
        self.max_loaded_models = max_loaded_models
        if memory_limit_mb is not None:
            self._limits = (self._limits[0], int(memory_limit_mb) * 2**20)
        self._staging: Path | None = None
        self._cache: ModelCache | None = None

    @classmethod
    def from_model(
        cls,
        model: ModelDefinition | Mapping[str, Any] | str | Path,
        *,
        production_variant: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A multi-model endpoint for a CreateModel request with Mode MultiModel (see :meth:`Endpoint.from_model`)."""
        m = model if isinstance(model, ModelDefinition) else ModelDefinition.from_request(model)
        if not m.multi_model:
            raise InvalidSpec(f"model {m.name} is not Mode MultiModel; serve it with Endpoint")
        kwargs.setdefault("model_cache", m.model_cache)
        endpoint = super().from_model(m, production_variant=production_variant, **kwargs)
        assert isinstance(endpoint, cls)
        return endpoint

    @property
    def cache(self) -> ModelCache:
        """The loaded models (after :meth:`start`)."""
        if self._cache is None:
            raise EmulatorError(f"endpoint {self.name} is not started; use it as a context manager")
        return self._cache

    def _start(self) -> None:
        labels = self.session.docker.image_info(self.image).labels
        if not label_claims_multi_model(labels):
            raise InvalidSpec(
                f"Your Ecr Image {self.image} does not contain required {LABEL_MULTI_MODELS}=true Docker label(s); "
                f"add `LABEL {LABEL_MULTI_MODELS}=true` to the Dockerfile once `serve` implements the /models API, "
                "or use Mode SingleModel"
            )
        if not is_s3(self.model_prefix) and not Path(self.model_prefix.removeprefix("file://")).expanduser().is_dir():
            raise InputNotFound(
                f"ModelDataUrl {self.model_prefix!r} is not a directory; a multi-model endpoint needs the directory "
                "(or s3:// prefix) that holds its model .tar.gz files"
            )
        super()._start()
        assert self._staging is not None
        s3 = self.session.s3 if is_s3(self.model_prefix) else None
        stager = ModelStager(self.model_prefix, self._staging, s3, on_staged=self._show_staged)
        self._cache = ModelCache(self.invoker, stager, max_loaded=self.max_loaded_models, keep=self.model_cache)

    def _prepare_model(self) -> Path:
        model_dir = super()._prepare_model()  # an empty /opt/ml/model
        assert self._work is not None
        self._staging = self._work / "models"
        self._staging.mkdir()
        return model_dir

    def _show_staged(self, name: str) -> None:
        """An engine that cannot see the staging dir (a remote one) gets the new model copied into its volume."""
        refresh = getattr(self.session.docker, "refresh_mount", None)
        if refresh is not None:
            refresh(self.container_id, MODELS_DIR, name)

    def _extra_mounts(self) -> list[Mount]:
        assert self._staging is not None
        return [Mount(MODELS_DIR, str(self._staging), read_only=True)]

    def _extra_labels(self) -> dict[str, str]:
        return {
            LABEL_MME_SOURCE: self.model_prefix,
            LABEL_MME_STAGING: str(self._staging),
            LABEL_MME_CACHE: "Enabled" if self.model_cache else "Disabled",
            LABEL_MME_MAX_LOADED: str(self.max_loaded_models),
        }

    def stage(self, target_model: str) -> tuple[str, str]:
        """Extract a TargetModel for the container without loading it: (model_name, url) for ``POST /models``."""
        return model_name(target_model), self.cache.stager.stage(target_model)

    def invoke(
        self,
        body: Body,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        timeout_s: float | None = None,
        **headers: Unpack[InvokeHeaders],
    ) -> dict[str, Any]:
        """InvokeEndpoint with ``target_model`` (required): see :class:`ModelCache`."""
        return self.cache.invoke(
            body,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            timeout_s=timeout_s,
            **headers,
        )


def is_multi_model(container: Managed) -> bool:
    """Whether a running endpoint container is a multi-model endpoint's (it carries the emulator's labels)."""
    return LABEL_MME_SOURCE in container.labels and LABEL_MME_STAGING in container.labels


def invoke_running(
    container: Managed,
    invoker: Invoker,
    body: Body,
    *,
    config: EmulatorConfig | None = None,
    docker: DockerSeam | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """InvokeEndpoint with TargetModel on a multi-model endpoint another process serves (``invoke NAME``).

    The models the container has loaded come from ``GET /models`` (least recently used order is this call's guess:
    the listing's order); the prefix, staging directory and cache setting from the container's labels. ``docker``:
    the seam that found the container (a remote engine's copies a newly staged model into its volume).
    """
    if kwargs.get("target_model") is None:
        raise ValidationError(missing_target_model())
    labels = container.labels
    prefix = labels[LABEL_MME_SOURCE]
    session = Session(config) if is_s3(prefix) else None
    try:
        staging = labels[LABEL_MME_STAGING]
        refresh = getattr(docker, "refresh_mount", None)

        def on_staged(name: str) -> None:
            if refresh is not None:
                refresh(container.id, MODELS_DIR, name, source_dir=staging)

        stager = ModelStager(prefix, Path(staging), session.s3 if session else None, on_staged=on_staged)
        cache = ModelCache(
            invoker,
            stager,
            max_loaded=int(labels.get(LABEL_MME_MAX_LOADED, MME_MAX_LOADED_MODELS)),
            keep=labels.get(LABEL_MME_CACHE, "Enabled") != "Disabled",
            loaded=listed_models(invoker),
        )
        return cache.invoke(body, **kwargs)
    finally:
        if session is not None:
            session.close()


def invoke_endpoint(
    endpoint: str,
    body: Body,
    *,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    timeout_s: float = INVOCATION_TIMEOUT_S,
    docker: DockerClient | None = None,
    config: EmulatorConfig | None = None,
    **headers: Unpack[InvokeHeaders],
) -> dict[str, Any]:
    """Like sagemaker-runtime InvokeEndpoint against a running endpoint (a name, or an ``http://127.0.0.1:PORT``
    URL), a multi-model one too: its ``target_model`` is loaded first (see :func:`invoke_running`).

    Raises:
        ValidationError, ModelError: as :meth:`Endpoint.invoke` (and a multi-model endpoint's, see ModelCache).
        EmulatorError: no running endpoint of that name.
    """
    if not endpoint.startswith(("http://", "https://")):
        docker = docker or remote_client(config or EmulatorConfig())
        container, url = find_endpoint(endpoint, docker)
        if is_multi_model(container):
            invoker = client_of(url, endpoint, timeout_s)
            try:
                return invoke_running(
                    container,
                    invoker,
                    body,
                    config=config,
                    docker=docker,
                    content_type=content_type,
                    accept=accept,
                    custom_attributes=custom_attributes,
                    **headers,
                )
            finally:
                invoker.close()
    return invoke_single_model(
        endpoint,
        body,
        content_type=content_type,
        accept=accept,
        custom_attributes=custom_attributes,
        timeout_s=timeout_s,
        docker=docker,
        config=config,
        **headers,
    )
