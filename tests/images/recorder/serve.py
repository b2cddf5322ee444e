#!/usr/bin/env python3
"""A SageMaker `serve` for tests: records every request and behaves as RECORDER_* variables say.

Listens on 0.0.0.0:8080 (threaded, HTTP/1.1 keep-alive). Stdlib only.

Start-up
  RECORDER_EXIT_AT_START=<code>   print a message to stderr and exit with <code> before binding
  RECORDER_BIND_DELAY_S=<s>       sleep before binding the port
  RECORDER_PING_STATUS=<code>     status of GET /ping (default 200)
  RECORDER_PING_DELAY_S=<s>       delay of every GET /ping
  RECORDER_IGNORE_SIGTERM=1       ignore SIGTERM (to test SIGKILL after the grace period)
  RECORDER_TERM_DELAY_S=<s>       on SIGTERM, wait this long before exiting
Batch
  RECORDER_EXECUTION_PARAMETERS=<json>  body of GET /execution-parameters (200); unset -> 404
/invocations
  RECORDER_RESPONSE=<mode>        echo: the body as is (default); sum: per input line, the sum of its
                                  comma-separated numbers; lines: per input line "<n>:<in_flight>:<line>" (n
                                  counts requests, in_flight when it arrived); size: one line
                                  "<bytes> chunked=<True|False>"; env: one line, the SAGEMAKER_* environment as JSON
  RECORDER_RESPONSE_BYTES=<n>     answer n bytes of "x" instead
  RECORDER_CONTENT_TYPE=<type>    Content-Type of answers (default: the request's Accept, else its Content-Type)
  RECORDER_FAIL_ON=<substring>    answer RECORDER_FAIL_STATUS (default 400) with "bad record: <line>" when the
                                  body contains it
  RECORDER_FAIL_FIRST=<n>         answer 503 to the first n invocations (retry tests)
  RECORDER_SLEEP_S=<s>            sleep this long in every invocation
  RECORDER_SLEEP_ON=<substring>   ... only for bodies that contain it
The record: GET /_requests -> JSON list of {method, path, headers, size, sha256, head, chunked, start, end,
  in_flight, n, status}; DELETE /_requests clears it. One line per request is also printed to stdout.
GET /_model -> {"files": [paths under /opt/ml/model], "writable": whether a file can be created there}.
"""

import hashlib
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENV = os.environ
LOCK = threading.Lock()
RECORDS = []
STATE = {"in_flight": 0, "invocations": 0}


def number(name, default=0.0):
    return float(ENV.get(name, default))


def read_body(handler):
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts), True
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length), False


def respond_to(body, count, chunked=False, in_flight=1):
    mode = ENV.get("RECORDER_RESPONSE", "echo")
    if ENV.get("RECORDER_RESPONSE_BYTES"):
        return b"x" * int(ENV["RECORDER_RESPONSE_BYTES"])
    lines = [ln for ln in body.decode("utf-8", "replace").split("\n") if ln]
    if mode == "sum":
        return "".join(f"{sum(float(x) for x in ln.split(',') if x.strip()):g}\n" for ln in lines).encode()
    if mode == "lines":
        return "".join(f"{count}:{in_flight}:{ln}\n" for ln in lines).encode()
    if mode == "size":
        return f"{len(body)} chunked={chunked}\n".encode()
    if mode == "env":
        return (json.dumps({k: v for k, v in sorted(ENV.items()) if k.startswith("SAGEMAKER_")}) + "\n").encode()
    return body


def model_dir(root="/opt/ml/model"):
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    try:
        with open(os.path.join(root, ".recorder-write-test"), "w"):
            pass
        writable = True
    except OSError:
        writable = False
    return {"files": files, "writable": writable}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b"", content_type="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            time.sleep(number("RECORDER_PING_DELAY_S"))
            self.send(int(ENV.get("RECORDER_PING_STATUS", "200")), content_type="text/plain")
        elif self.path == "/execution-parameters" and "RECORDER_EXECUTION_PARAMETERS" in ENV:
            self.send(200, ENV["RECORDER_EXECUTION_PARAMETERS"].encode())
        elif self.path == "/_requests":
            with LOCK:
                data = json.dumps(RECORDS).encode()
            self.send(200, data)
        elif self.path == "/_env":
            self.send(200, json.dumps(dict(ENV)).encode())
        elif self.path == "/_model":
            self.send(200, json.dumps(model_dir()).encode())
        else:
            self.send(404, b"{}")

    def do_DELETE(self):
        if self.path == "/_requests":
            with LOCK:
                RECORDS.clear()
            self.send(200, b"{}")
        else:
            self.send(404, b"{}")

    def do_POST(self):
        start = time.time()
        with LOCK:
            STATE["in_flight"] += 1
            STATE["invocations"] += 1
            in_flight, count = STATE["in_flight"], STATE["invocations"]
        body, chunked = b"", False
        status, answer, ctype = 500, b"recorder failed", "text/plain"
        try:
            body, chunked = read_body(self)
            if self.path == "/invocations":
                status, answer, ctype = self.invocation(body, count, chunked, in_flight)
            else:
                status, answer, ctype = 404, b"{}", "application/json"
        finally:
            # Recorded before answering, so a client that reads /_requests right after its answer sees it.
            with LOCK:
                STATE["in_flight"] -= 1
                RECORDS.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "size": len(body),
                        "sha256": hashlib.sha256(body).hexdigest(),
                        "head": body[:64].decode("utf-8", "replace"),
                        "chunked": chunked,
                        "start": start,
                        "end": time.time(),
                        "in_flight": in_flight,
                        "n": count,
                        "status": status,
                    }
                )
            print(f"recorder: POST {self.path} {len(body)} bytes in_flight={in_flight} -> {status}", flush=True)
        self.send(status, answer, ctype, self.echoed_headers())

    def invocation(self, body, count, chunked, in_flight):
        sleep_on = ENV.get("RECORDER_SLEEP_ON")
        if not sleep_on or sleep_on.encode() in body:
            time.sleep(number("RECORDER_SLEEP_S"))
        if count <= int(ENV.get("RECORDER_FAIL_FIRST", "0")):
            return 503, b"warming up", "text/plain"
        fail_on = ENV.get("RECORDER_FAIL_ON")
        if fail_on and fail_on.encode() in body:
            bad = next(ln for ln in body.decode("utf-8", "replace").split("\n") if fail_on in ln)
            return int(ENV.get("RECORDER_FAIL_STATUS", "400")), f"bad record: {bad}".encode(), "text/plain"
        ctype = ENV.get("RECORDER_CONTENT_TYPE") or self.headers.get("Accept") or self.headers.get("Content-Type")
        return 200, respond_to(body, count, chunked, in_flight), ctype or "application/octet-stream"

    def echoed_headers(self):
        attrs = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        return {"X-Amzn-SageMaker-Custom-Attributes": attrs} if attrs is not None else {}


def on_term(signum, frame):
    print("recorder: SIGTERM", flush=True)
    if ENV.get("RECORDER_IGNORE_SIGTERM") == "1":
        return
    time.sleep(number("RECORDER_TERM_DELAY_S"))
    os._exit(0)


def main():
    signal.signal(signal.SIGTERM, on_term)
    if "RECORDER_EXIT_AT_START" in ENV:
        print("recorder: exiting at start as RECORDER_EXIT_AT_START asks", file=sys.stderr, flush=True)
        return int(ENV["RECORDER_EXIT_AT_START"])
    time.sleep(number("RECORDER_BIND_DELAY_S"))
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    print(f"recorder: listening on 0.0.0.0:8080, argv={sys.argv[1:]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
