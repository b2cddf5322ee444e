"""``serve``: the inference server SageMaker starts with ``docker run IMAGE serve``.

gunicorn (sync workers) serves a Flask app on ``0.0.0.0:8080``:

- ``GET /ping``: 200 with an empty body once the model is loaded, 503 (and the reason) otherwise;
- ``POST /invocations``: ``text/csv`` rows of the 4 features (a header row is skipped; a labelled row, label
  first as in the train and test CSVs, has its label dropped) ->
  ``text/csv``, one line per row with the class probabilities (column order: ``classes`` in
  ``/opt/ml/model/metadata.json``). 415 for another Content-Type, 406 for an Accept that excludes
  text/csv, 400 for malformed rows, 413 over 6 MiB;
- ``GET /execution-parameters``: batch transform settings.

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
    max_concurrent = workers if workers is not None else default_workers()
    if load:
        state.load()

    @app.get("/ping")
    def ping() -> Response:
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
        model = state.model
        if model is None:
            return _text(f"model not loaded: {state.error}", 503)
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
