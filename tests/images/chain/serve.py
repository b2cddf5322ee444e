#!/usr/bin/env python3
"""`serve` for inference-pipeline tests, on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (8080 if unset). Stdlib only.

POST /invocations answers JSON {"input": <the first request's body>, "steps": [...]}: a request whose body is
such JSON (the previous container's answer) gets one more step, any other body starts the list. A step is
{"name": $CHAIN_NAME, "host": the container's hostname, "process": a token of this server process, "port",
"content_type", "accept", "custom_attributes", "env": the SAGEMAKER_* variables, "model": the files under
/opt/ml/model}.
  CHAIN_CONTENT_TYPE=<type>   Content-Type of the answer (default application/json)
  CHAIN_FAIL_ON=<substring>   answer 400 "<name> refuses: <body>" when the body contains it
  CHAIN_EXECUTION_PARAMETERS=<json>  body of GET /execution-parameters (else 404)
GET /ping: 200. Every request prints one line "chain <name>: <method> <path> <content type>".
"""

import json
import os
import signal
import socket
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENV = os.environ
PORT = int(ENV.get("SAGEMAKER_BIND_TO_PORT", "8080"))
NAME = ENV.get("CHAIN_NAME", socket.gethostname())
#: Tells the processes apart (instances of one pipeline share their ContainerHostname).
PROCESS = uuid.uuid4().hex


def model_files():
    found = []
    for root, _dirs, files in os.walk("/opt/ml/model"):
        found += [os.path.relpath(os.path.join(root, f), "/opt/ml/model") for f in files]
    return sorted(found)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def answer(self, status, body, content_type="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        print(f"chain {NAME}: GET {self.path}", flush=True)
        if self.path == "/ping":
            self.answer(200, b"")
        elif self.path == "/execution-parameters" and "CHAIN_EXECUTION_PARAMETERS" in ENV:
            self.answer(200, ENV["CHAIN_EXECUTION_PARAMETERS"].encode())
        else:
            self.answer(404, b"{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print(f"chain {NAME}: POST {self.path} {self.headers.get('Content-Type')}", flush=True)
        text = body.decode("utf-8", "replace")
        if ENV.get("CHAIN_FAIL_ON") and ENV["CHAIN_FAIL_ON"] in text:
            self.answer(400, f"{NAME} refuses: {text}".encode(), "text/plain")
            return
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or "steps" not in doc:
                raise ValueError
        except ValueError:
            doc = {"input": text, "steps": []}
        doc["steps"].append(
            {
                "name": NAME,
                "host": socket.gethostname(),
                "process": PROCESS,
                "port": self.server.server_address[1],
                "content_type": self.headers.get("Content-Type"),
                "accept": self.headers.get("Accept"),
                "custom_attributes": self.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
                "env": {k: v for k, v in ENV.items() if k.startswith("SAGEMAKER_")},
                "model": model_files(),
            }
        )
        attrs = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        extra = {"X-Amzn-SageMaker-Custom-Attributes": attrs} if attrs else {}
        self.answer(200, json.dumps(doc).encode(), ENV.get("CHAIN_CONTENT_TYPE", "application/json"), extra)


def main():
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # PID 1 ignores SIGTERM unless it handles it
    print(f"chain {NAME}: serving on {PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
