"""``serve``: the inference server SageMaker starts with ``docker run IMAGE serve``.

gunicorn (sync workers) serves a Flask app on ``0.0.0.0:8080``:

- ``GET /ping``: 200 with an empty body once the model is loaded, 503 (and the reason) otherwise;
- ``POST /invocations``: ``text/csv`` rows of the 4 features (a header row is skipped; a labelled row, label
  first as in the train and test CSVs, has its label dropped) ->
  ``text/csv``, one line per row with the class probabilities (column order: ``classes`` in
  ``/opt/ml/model/metadata.json``). 415 for another Content-Type, 406 for an Accept that excludes
  text/csv, 400 for malformed rows, 413 over 6 MiB;
- ``GET /execution-parameters``: batch transform settings.

With ``SAGEMAKER_MULTI_MODEL=true`` (a multi-model endpoint; the image carries the label
``com.amazonaws.sagemaker.capabilities.multi-models=true``) nothing is loaded at start and ``/ping`` answers 200;
the models come and go through the multi-model API, in one worker (the loaded models live in its memory):
``POST /models`` ``{"model_name", "url"}`` loads the model ``train`` wrote into ``url`` (409 if loaded, 507 when the
container's memory is nearly used up, 400 if it cannot be loaded), ``GET /models``, ``GET /models/<name>`` (404
unknown), ``DELETE /models/<name>`` (404 unknown) and ``POST /models/<name>/invoke`` (as ``/invocations``; 404
unknown).

Settings from the environment: ``SAGEMAKER_BIND_TO_PORT`` (8080), ``SAGEMAKER_MODEL_SERVER_WORKERS``
(number of CPUs), ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (60 s). On SIGTERM gunicorn finishes the
requests in flight (at most 10 s) and exits 0. The model directory is only read.
"""

from __future__ import annotations

import codecs
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .common import ML_ROOT, AlgorithmError
from .model import InputError, LoadedModel, format_probabilities, load_model, parse_feature_csv

DEFAULT_MODEL_DIR = f"{ML_ROOT}/model"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 60
GRACEFUL_TIMEOUT = 10
MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_BYTES = MAX_PAYLOAD_MB * 1024 * 1024  # 6291456: a body of exactly this size is accepted
CSV = "text/csv"
#: A multi-model container refuses a load with 507 above this share of its memory limit.
MEMORY_HIGH_WATER = 0.9

log = logging.getLogger("iris_tree.serve")


class ModelState:
    """The model of one worker: loaded once at start, ``/ping`` answers 200 only after that."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        self.model: LoadedModel | None = None
        self.error: str | None = "the model has not been loaded yet"
        self._lock = threading.Lock()

    def load(self) -> bool:
        with self._lock:
            try:
                self.model = load_model(self.model_dir)
            except AlgorithmError as exc:
                self.model, self.error = None, str(exc)
                log.error("cannot load the model: %s", exc)
                return False
            except Exception as exc:
                self.model, self.error = None, f"{type(exc).__name__}: {exc}"
                log.exception("cannot load the model from %s", self.model_dir)
                return False
            self.error = None
            log.info("loaded the model from %s; classes %s", self.model_dir, self.model.classes)
            return True


class ModelStore:
    """The models of a multi-model endpoint: name -> (url, model), loaded and unloaded through /models."""

    def __init__(self) -> None:
        self.models: dict[str, tuple[str, LoadedModel]] = {}
        self._lock = threading.Lock()

    def load(self, name: str, url: str) -> tuple[int, str]:
        with self._lock:
            if name in self.models:
                return 409, f"model {name} is loaded already"
            if memory_nearly_full():
                return 507, f"not enough memory to load model {name}: unload another model first"
            try:
                self.models[name] = (url, load_model(Path(url)))
            except AlgorithmError as exc:
                return 400, f"cannot load model {name} from {url}: {exc}"
        log.info("loaded model %s from %s (%d loaded)", name, url, len(self.models))
        return 200, f"model {name} loaded"

    def unload(self, name: str) -> bool:
        with self._lock:
            return self.models.pop(name, None) is not None


def memory_nearly_full(fraction: float = MEMORY_HIGH_WATER) -> bool:
    """Whether the container uses more than ``fraction`` of its cgroup memory limit (False when it has none)."""
    for usage_file, limit_file in (
        ("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.max"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # v1
    ):
        try:
            usage = int(Path(usage_file).read_text().strip())
            limit_text = Path(limit_file).read_text().strip()
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 2**60:
            return False
        return usage > fraction * int(limit_text)
    return False


def multi_model() -> bool:
    """Whether SageMaker runs this container as a multi-model endpoint."""
    return os.environ.get("SAGEMAKER_MULTI_MODEL", "").strip().lower() == "true"


def _text(message: str, status: int) -> Response:
    return Response(message.rstrip("\n") + "\n", status=status, mimetype="text/plain")


def _accepts_csv() -> bool:
    header = request.headers.get("Accept", "").strip()
    if not header:
        return True
    return request.accept_mimetypes.quality(CSV) > 0


def create_app(model_dir: str | Path = DEFAULT_MODEL_DIR, *, load: bool = True, workers: int | None = None) -> Flask:
    """Build the WSGI app; with ``load`` the model is loaded now (a failure makes /ping answer 503)."""
    app = Flask("iris_tree.serve")
    app.config["MAX_CONTENT_LENGTH"] = MAX_PAYLOAD_BYTES
    state = ModelState(model_dir)
    app.extensions["iris_tree"] = state
    store = ModelStore()
    app.extensions["iris_tree_models"] = store
    max_concurrent = workers if workers is not None else default_workers()
    mme = multi_model()
    load = load and not mme  # a multi-model container loads through POST /models
    if load:
        state.load()

    @app.get("/ping")
    def ping() -> Response:
        if mme:
            return Response("", status=200)
        if state.model is None:
            return _text(f"model not loaded: {state.error}", 503)
        return Response("", status=200)

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return jsonify(
            {
                "MaxConcurrentTransforms": max_concurrent,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": MAX_PAYLOAD_MB,
            }
        )

    @app.post("/invocations")
    def invocations() -> Response:
        return predict(state.model, state.error)

    @app.post("/models")
    def load_model_route() -> Response:
        spec = request.get_json(silent=True)
        if not isinstance(spec, dict) or not isinstance(spec.get("model_name"), str) or not spec.get("url"):
            return _text('send JSON {"model_name": "<name>", "url": "<model directory>"}', 400)
        status, message = store.load(spec["model_name"], str(spec["url"]))
        return _text(message, status)

    @app.get("/models")
    def list_models() -> Response:
        return jsonify({"models": [{"modelName": n, "modelUrl": u} for n, (u, _) in sorted(store.models.items())]})

    @app.get("/models/<name>")
    def get_model(name: str) -> Response:
        found = store.models.get(name)
        if found is None:
            return _text(f"model {name} is not loaded", 404)
        return jsonify({"modelName": name, "modelUrl": found[0]})

    @app.delete("/models/<name>")
    def unload_model(name: str) -> Response:
        if not store.unload(name):
            return _text(f"model {name} is not loaded", 404)
        log.info("unloaded model %s", name)
        return _text(f"model {name} unloaded", 200)

    @app.post("/models/<name>/invoke")
    def invoke_model(name: str) -> Response:
        found = store.models.get(name)
        if found is None:
            return _text(f"model {name} is not loaded", 404)
        return predict(found[1], None)

    def predict(model: LoadedModel | None, error: str | None) -> Response:
        content_type = request.headers.get("Content-Type", "").strip()
        if content_type and request.mimetype != CSV:
            return _text(f"unsupported Content-Type {content_type!r}: send {CSV}", 415)
        charset = request.mimetype_params.get("charset", "utf-8")
        try:
            codecs.lookup(charset)
        except LookupError:
            return _text(f"unsupported charset {charset!r}: send utf-8", 415)
        if not _accepts_csv():
            return _text(f"cannot answer with Accept {request.headers.get('Accept')!r}: this model returns {CSV}", 406)
        if model is None:
            return _text(f"model not loaded: {error}", 503)
        body = request.get_data(cache=False)
        if not body.strip():
            return _text(f"empty request body: send CSV rows of 4 numeric features ({CSV}, no header needed)", 400)
        try:
            text = body.decode(charset)
        except UnicodeDecodeError as exc:
            return _text(f"the body is not valid {charset} text (byte {exc.start})", 400)
        try:
            features = parse_feature_csv(text)
        except InputError as exc:
            log.info("bad request: %s", exc)
            return _text(str(exc), 400)
        probabilities = model.predict_proba(features)
        return Response(format_probabilities(probabilities), status=200, mimetype=CSV)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            return _text(f"request body too large: at most {MAX_PAYLOAD_BYTES} bytes", 413)
        return _text(f"{exc.code} {exc.name}", exc.code or 500)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.exception("error while handling %s %s", request.method, request.path)
        return _text(f"internal error: {type(exc).__name__}", 500)

    return app


# --------------------------------------------------------------------------- gunicorn


def default_workers() -> int:
    if multi_model():
        return 1  # the loaded models live in the worker's memory: one worker sees every load
    return _env_int("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1, minimum=1)


def _env_int(name: str, default: int, minimum: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"error: {name}={text!r} is not an integer") from None
    if value < minimum:
        raise SystemExit(f"error: {name}={value} must be >= {minimum}")
    return value


def gunicorn_options() -> dict[str, Any]:
    port = _env_int("SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, minimum=1)
    timeout = _env_int("SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT, minimum=1)
    options: dict[str, Any] = {
        "bind": f"0.0.0.0:{port}",
        "workers": default_workers(),
        "worker_class": "sync",
        "timeout": timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "preload_app": False,  # every worker loads the model itself
    }
    if os.path.isdir("/dev/shm"):
        options["worker_tmp_dir"] = "/dev/shm"  # heartbeat files off the (maybe slow) overlay filesystem
    return options


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
    )


def main(argv: list[str] | None = None, model_dir: str | Path = DEFAULT_MODEL_DIR) -> int:
    """Run gunicorn in this process (it becomes PID 1's arbiter, so it gets SIGTERM). ``argv`` is ignored."""
    from gunicorn.app.base import BaseApplication

    options = gunicorn_options()

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            _configure_logging()
            return create_app(model_dir, workers=options["workers"])

    print(f"serve: gunicorn on {options['bind']} with {options['workers']} worker(s)", flush=True)
    _Server().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
