"""The console's front door inside the API server: routing, the token that guards every change, static files.

Requests reach it only when they are the browser's (unsigned: no ``Authorization`` header, no presigned query)
and ask for ``/`` or ``/console/...``; every signed request goes to SageMaker, the runtime or moto as before.
Every answer checks the ``Host`` header (127.0.0.1 or localhost on this port: a page on another name cannot
read the console through DNS rebinding). A request that changes state (stop, delete an endpoint, invoke) is a
POST carrying ``X-Console-Token``, the token the server put in the page; a page of another origin cannot read it,
and cannot send that header without a CORS preflight the console never allows.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from emulator.api.console import junit
from emulator.api.console.html import Page, render
from emulator.api.console.views import JOB_SECTIONS, RUNNING, SECTIONS, Views
from emulator.api.protocol import ApiError

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from emulator.api.backend import SageMakerBackend

logger = logging.getLogger(__name__)

#: How often a live page asks for its changed parts and new log lines.
POLL_MS = 1000
#: The header that carries the page's token on every state-changing request.
TOKEN_HEADER = "X-Console-Token"
#: The most of an endpoint's answer shown in the invoke box.
MAX_SHOWN_BYTES = 256 * 1024
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
}


class Console:
    """The console of one API server: ``wants(environ)`` tells its requests apart, calling it answers them.

    Args:
        backend: the server's operations (the console reads through them and stops through them).
        port: the server's port (the only ``Host`` the console answers).
        report_path: the contract suite's JUnit XML to show (read again at each view), or None.
    """

    def __init__(self, backend: SageMakerBackend, port: int, *, report_path: Path | None = None) -> None:
        self.views = Views(backend, report_path)
        self.backend = backend
        self.token = secrets.token_urlsafe(32)
        self._hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self._origins = {f"http://{h}" for h in self._hosts}

    @staticmethod
    def wants(environ: WSGIEnvironment) -> bool:
        """Whether a request is the console's: unsigned, for ``/``, ``/favicon.ico`` or ``/console/...``."""
        if environ.get("HTTP_AUTHORIZATION") or "X-Amz-" in environ.get("QUERY_STRING", ""):
            return False
        path = environ.get("PATH_INFO", "")
        return path in ("/", "/console", "/favicon.ico") or path.startswith("/console/")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_HOST", "") not in self._hosts:
            return _text(start_response, 403, "the console answers only at http://" + sorted(self._hosts)[0] + "/")
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        try:
            if method in ("GET", "HEAD"):
                return self._get(path, parse_qs(environ.get("QUERY_STRING", "")), start_response)
            if method == "POST":
                return self._post(path, environ, start_response)
            return _text(start_response, 405, f"{method} is not served by the console")
        except Exception as exc:  # a bug of ours: say so, keep serving
            logger.exception("console %s %s failed", method, path)
            return _json(start_response, 500, {"error": f"the console failed: {exc}"})

    # -- pages -------------------------------------------------------------------------------------------------
    def _get(self, path: str, query: dict[str, list[str]], start_response: StartResponse) -> Iterable[bytes]:
        if path == "/favicon.ico":
            return _respond(start_response, 204, b"", {})
        if path.startswith("/console/static/"):
            return self._static(path.removeprefix("/console/static/"), start_response)
        if path.startswith("/console/api/logs/"):
            return self._logs(path.removeprefix("/console/api/logs/"), query, start_response)
        page = self.page(path)
        if query.get("fragment") == ["1"]:
            return _json(start_response, page.status, page.fragments())
        html = render(page, token=self.token, nav=self.views.nav(), poll_ms=POLL_MS)
        return _respond(start_response, page.status, html.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def page(self, path: str) -> Page:
        """The page at ``path`` (``/``, ``/console/<section>``, ``/console/<section>/<name>``, ...)."""
        parts = [unquote(p) for p in path.removeprefix("/console").strip("/").split("/") if p]
        views = self.views
        if not parts:
            return views.overview()
        if parts == ["report"]:
            return views.report()
        section = SECTIONS.get(parts[0])
        if section is None or section not in views.sections():
            return _missing(path)
        if len(parts) == 1:
            return views.list_page(section)
        if len(parts) == 2 and section.key != "executions":
            return views.detail(section, parts[1])
        if len(parts) == 4 and section.key == "pipelines" and parts[2] == "executions":
            return views.execution(parts[1], parts[3])
        return _missing(path)

    def _static(self, name: str, start_response: StartResponse) -> Iterable[bytes]:
        kind = _STATIC_TYPES.get(Path(name).suffix)
        data = _asset(name) if kind and "/" not in name else None
        if data is None:
            return _text(start_response, 404, f"no static file {name}")
        return _respond(start_response, 200, data, {"Content-Type": kind or "", "Cache-Control": "no-cache"})

    def _logs(self, rest: str, query: dict[str, list[str]], start_response: StartResponse) -> Iterable[bytes]:
        key, _, name = rest.partition("/")
        section = SECTIONS.get(key)
        if section is None or not name or (key not in JOB_SECTIONS and key != "endpoints"):
            return _json(start_response, 404, {"error": f"no logs at {rest}"})
        try:
            cursor = {str(k): int(v) for k, v in json.loads(query.get("cursor", ["{}"])[0] or "{}").items()}
        except (ValueError, AttributeError):
            return _json(start_response, 400, {"error": "cursor is not one the console issued"})
        try:  # the status first: a job that had ended then has written every line read below
            status = self.views.describe(section, unquote(name)).get(
                "EndpointStatus" if key == "endpoints" else section.status_field
            )
        except ApiError as exc:
            return _json(start_response, 404, {"error": exc.message})
        events, new_cursor = self.views.log_events(section, unquote(name), cursor)
        still = status in RUNNING or (key == "endpoints" and status == "InService")
        body = {
            "lines": [[host, text] for _, host, text in events],
            "cursor": json.dumps(new_cursor),
            "hosts": len(new_cursor),
            "done": not still and not events,
        }
        return _json(start_response, 200, body)

    # -- actions -----------------------------------------------------------------------------------------------
    def _post(self, path: str, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        sent = environ.get("HTTP_X_CONSOLE_TOKEN", "")
        if not hmac.compare_digest(sent.encode(), self.token.encode()):
            return _json(start_response, 403, {"error": f"missing or wrong {TOKEN_HEADER}: reload the console page"})
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self._origins:
            return _json(start_response, 403, {"error": f"requests from {origin} are refused"})
        try:
            payload = json.loads(_body(environ) or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            return _json(start_response, 400, {"error": "the body must be a JSON object"})
        action = path.removeprefix("/console/api/")
        try:
            if action == "stop":
                return _json(start_response, 200, self._stop(payload))
            if action == "delete-endpoint":
                name = str(payload.get("name", ""))
                self.backend.delete_endpoint({"EndpointName": name})
                return _json(start_response, 200, {"message": f"endpoint {name} is being deleted"})
            if action == "invoke":
                return _json(start_response, 200, self._invoke(payload))
            if action == "report":
                return _json(start_response, 200, _report(payload))
        except ApiError as exc:
            return _json(start_response, exc.status if exc.status < 500 else 400, {"error": exc.message})
        except junit.ReportError as exc:
            return _json(start_response, 400, {"error": str(exc)})
        return _json(start_response, 404, {"error": f"no action {action}"})

    def _stop(self, payload: dict[str, Any]) -> dict[str, Any]:
        section = SECTIONS.get(str(payload.get("kind", "")))
        name = str(payload.get("name", ""))
        method = self.views.op(section.stop_op) if section is not None and section.stop_op else None
        if section is None or method is None:
            raise ApiError("ValidationException", f"{payload.get('kind')!r} cannot be stopped from the console")
        field = "PipelineExecutionArn" if section.key == "executions" else section.name_field
        method({field: name})
        return {"message": f"stopping {section.noun} {name.rsplit('/', 1)[-1]}"}

    def _invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        from emulator.api.backend import ModelApiError

        headers = {"Content-Type": str(payload.get("contentType") or "application/octet-stream")}
        if payload.get("accept"):
            headers["Accept"] = str(payload["accept"])
        try:
            result = self.backend.invoke_endpoint(
                str(payload.get("name", "")), str(payload.get("body", "")).encode(), headers
            )
        except ModelApiError as exc:
            return {
                "ok": False,
                "status": exc.status,
                "error": "ModelError",
                "message": exc.message,
                "originalStatusCode": exc.original_status_code,
                "originalMessage": exc.original_message,
                "logStreamArn": exc.log_stream_arn,
            }
        except ApiError as exc:
            return {"ok": False, "status": exc.status, "error": exc.code, "message": exc.message}
        body: bytes = result["Body"]
        return {
            "ok": True,
            "contentType": result.get("ContentType"),
            "bytes": len(body),
            "body": body[:MAX_SHOWN_BYTES].decode("utf-8", "replace"),
        }


def _report(payload: dict[str, Any]) -> dict[str, Any]:
    xml = str(payload.get("xml", ""))
    return {"html": junit.render(junit.parse(xml.encode()), str(payload.get("name") or "the picked file"))}


def _missing(path: str) -> Page:
    from emulator.api.console.views import not_found

    return not_found(f"the console has no page {path}. ", '<a href="/">Back to the overview</a>')


@cache
def _asset(name: str) -> bytes | None:
    try:
        return resources.files(__package__).joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _body(environ: WSGIEnvironment) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    data: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    return data


def _respond(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    head = {**_SECURITY_HEADERS, **headers, "Content-Length": str(len(body))}
    start_response(f"{status} {_REASONS.get(status, 'Error')}", list(head.items()))
    return [body]


def _json(start_response: StartResponse, status: int, data: Any) -> list[bytes]:
    return _respond(start_response, status, json.dumps(data).encode(), {"Content-Type": "application/json"})


def _text(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    return _respond(start_response, status, message.encode(), {"Content-Type": "text/plain; charset=utf-8"})
