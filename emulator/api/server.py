"""One HTTP server on 127.0.0.1 that AWS clients reach with ``AWS_ENDPOINT_URL`` alone.

Routing, as AWS's own front doors do it:

- ``X-Amz-Target: SageMaker.<Operation>`` -> :class:`~emulator.api.backend.SageMakerBackend` (JSON 1.1, checked
  with botocore's model);
- ``POST /endpoints/<name>/invocations`` -> sagemaker-runtime InvokeEndpoint;
- an unsigned ``GET /`` or ``/console/...`` (a browser) -> the local console (:mod:`emulator.api.console`);
- everything else (S3, STS, CloudWatch Logs) -> moto's backends in this process, which route by the SigV4
  credential scope.

``with ApiServer(state_dir=...) as server: os.environ.update(server.environment())`` is the fixture form;
``python -m emulator api-server`` the command.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, unquote

from emulator.api import DEFAULT_PORT
from emulator.api.backend import ModelApiError, SageMakerBackend
from emulator.api.console import Console
from emulator.api.logs import CloudWatchLogs
from emulator.api.protocol import ApiError, error_body, parse_request, serialize_output
from emulator.api.store import Store
from emulator.config import EmulatorConfig
from emulator.runtime.session import Session
from emulator.serving.invocations import output_header_names

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from emulator.runtime.docker import DockerSeam

logger = logging.getLogger(__name__)

#: moto's default account: its STS answers with it, and its Logs and S3 backends are keyed by it.
ACCOUNT_ID = "123456789012"

DEFAULT_BUCKET = "sagemaker-emulator"
_SAGEMAKER_TARGET = "SageMaker."


class ApiServer:
    """The API server: a threaded WSGI server on 127.0.0.1 in a background thread; a context manager.

    Args:
        port: the port (0: any free one).
        state_dir: where the SQLite records and, from stop to start, S3's objects live (None: in memory, gone with
            the server).
        config: the emulator's settings (the S3 endpoint is always this server).
        docker: the Docker seam the jobs use (None: the engine; unit tests pass a fake). A seam rather than a
            whole Session, because the session's S3 must be this server, whose URL is known only once it binds.
        contract_report: the contract suite's JUnit XML the console shows (None: none, the page can open one).
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        state_dir: Path | str | None = None,
        config: EmulatorConfig | None = None,
        *,
        docker: DockerSeam | None = None,
        contract_report: Path | str | None = None,
    ) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        self._moto = DomainDispatcherApplication(create_backend_app)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log lines on the user's terminal
        self.state_dir = Path(state_dir).expanduser() if state_dir else None
        self._server = make_server("127.0.0.1", port, self, threaded=True)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        base = config or EmulatorConfig()
        self.config = base.with_(s3_endpoint_url=self.url, account_id=ACCOUNT_ID, stream_logs=False)
        self.session = Session(self.config, docker=docker)
        self.store = Store(self.state_dir / "state.sqlite" if self.state_dir else None)
        self.backend = SageMakerBackend(self.session, self.store, CloudWatchLogs(ACCOUNT_ID, self.config.region))
        report = Path(contract_report).expanduser() if contract_report else None
        self.console = Console(self.backend, self.port, report_path=report)
        self._thread: threading.Thread | None = None

    # -- life ----------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Serve in a background thread; earlier records are loaded and InService endpoints come back."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-server", daemon=True)
        self._thread.start()
        client = self.session.s3.client
        try:
            client.head_bucket(Bucket=DEFAULT_BUCKET)
        except Exception:  # not there yet: the SDK's default bucket must exist
            client.create_bucket(Bucket=DEFAULT_BUCKET)
        self._load_s3()
        self.backend.restore()
        logger.debug("API server on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop what runs (removing every container), then the server; idempotent."""
        try:
            self.backend.close()
            self._save_s3()
        finally:
            self._server.shutdown()
            self._server.server_close()
            self.session.close()
            self.store.close()

    # S3 lives in moto's memory: without these, a restarted server would describe models whose artifacts are gone.
    def _save_s3(self) -> None:
        """Keep every S3 object in ``STATE_DIR/s3/<bucket>/<quoted key>``, for the next server on this state."""
        if self.state_dir is None:
            return
        root = self.state_dir / "s3"
        shutil.rmtree(root, ignore_errors=True)
        client = self.session.s3.client
        for bucket in client.list_buckets().get("Buckets", []):
            directory = root / bucket["Name"]
            directory.mkdir(parents=True, exist_ok=True)
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
                for obj in page.get("Contents", []):
                    body = client.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                    try:
                        (directory / quote(obj["Key"], safe="")).write_bytes(body)
                    except OSError as exc:  # e.g. a key too long for a file name: keep the others
                        logger.warning("s3://%s/%s is not kept across the restart: %s", bucket["Name"], obj["Key"], exc)

    def _load_s3(self) -> None:
        """Put back what :meth:`_save_s3` kept (objects already there are left as they are)."""
        root = self.state_dir / "s3" if self.state_dir is not None else None
        if root is None or not root.is_dir():
            return
        client = self.session.s3.client
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        for directory in sorted(d for d in root.iterdir() if d.is_dir()):
            if directory.name not in existing:
                client.create_bucket(Bucket=directory.name)
            for path in sorted(directory.iterdir()):
                key = unquote(path.name)
                try:
                    client.head_object(Bucket=directory.name, Key=key)
                except Exception:  # not there: put it back
                    client.put_object(Bucket=directory.name, Key=key, Body=path.read_bytes())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """The variables that point AWS clients (boto3, the SageMaker SDK) at this server and nowhere else."""
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": self.config.region,
            "AWS_REGION": self.config.region,
            "AWS_ACCESS_KEY_ID": "emulator",
            "AWS_SECRET_ACCESS_KEY": "emulator",
        }
        if self.state_dir is not None:
            env["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(self.write_sdk_config(self.state_dir / "sdk-config.yaml"))
        return env

    def write_sdk_config(self, path: Path) -> Path:
        """The SageMaker SDK's config file: the default bucket here (no STS call) and telemetry off."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "SchemaVersion: '1.0'\n"
            "SageMaker:\n"
            "  PythonSDK:\n"
            "    Modules:\n"
            "      TelemetryOptOut: true\n"
            "      Session:\n"
            f"        DefaultS3Bucket: {DEFAULT_BUCKET}\n",
            encoding="utf-8",
        )
        return path

    # -- WSGI ----------------------------------------------------------------------------------------------
    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        path = environ.get("PATH_INFO", "")
        if target.startswith(_SAGEMAKER_TARGET):
            return self._sagemaker(target[len(_SAGEMAKER_TARGET) :], environ, start_response)
        if path.startswith("/endpoints/") and environ.get("REQUEST_METHOD") == "POST":
            return self._runtime(path, environ, start_response)
        if Console.wants(environ):
            return self.console(environ, start_response)
        result: Iterable[bytes] = self._moto(environ, start_response)
        return result

    def _sagemaker(self, operation: str, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        try:
            handler = self.backend.handler(operation)
            if handler is None:
                raise ApiError(
                    "UnknownOperationException", f"The operation {operation} is not served by the emulator.", 400
                )
            params = parse_request(operation, _body(environ))
            body = serialize_output(operation, handler(params))
        except ApiError as exc:
            return _respond(start_response, exc.status, error_body(exc), {"x-amzn-ErrorType": exc.code})
        except Exception as exc:  # a bug of ours: answer it as the platform's InternalFailure, keep serving
            logger.exception("%s failed", operation)
            err = ApiError("InternalFailure", f"{operation} failed in the emulator: {exc}", 500)
            return _respond(start_response, 500, error_body(err), {"x-amzn-ErrorType": err.code})
        return _respond(start_response, 200, body, {"Content-Type": "application/x-amz-json-1.1"})

    def _runtime(self, path: str, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[2] != "invocations":
            err = ApiError("UnknownOperationException", f"The runtime path {path} is not served by the emulator.")
            return _respond(start_response, 404, error_body(err), {"x-amzn-ErrorType": err.code})
        name = unquote(parts[1])
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        try:
            result = self.backend.invoke_endpoint(name, _body(environ), _CaseInsensitive(headers))
        except ModelApiError as exc:
            body = {
                "ErrorCode": "ModelError",
                "Message": exc.message,
                "message": exc.message,
                "OriginalStatusCode": exc.original_status_code,
                "OriginalMessage": exc.original_message,
                "LogStreamArn": exc.log_stream_arn,
            }
            return _respond(start_response, 424, json.dumps(body).encode(), {"x-amzn-ErrorType": "ModelError"})
        except ApiError as exc:
            return _respond(start_response, exc.status, error_body(exc), {"x-amzn-ErrorType": exc.code})
        out_headers = {
            header: str(result[member])
            for member, header in output_header_names().items()
            if result.get(member) is not None
        }
        return _respond(start_response, 200, result["Body"], out_headers)


class _CaseInsensitive(dict[str, str]):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in headers.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())


def _body(environ: WSGIEnvironment) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    data: bytes = stream.read(length) if length else b""
    return data


def _respond(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 424: "Failed Dependency", 500: "Internal Server Error"}
    head = [*headers.items(), ("Content-Length", str(len(body)))]
    if not any(k.lower() == "content-type" for k, _ in head):
        head.append(("Content-Type", "application/json"))
    start_response(f"{status} {reason.get(status, 'Error')}", head)
    return [body]
