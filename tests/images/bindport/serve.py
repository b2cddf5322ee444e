#!/usr/bin/env python3
"""`serve` on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (8080 if unset); a second listener on the low end of
$SAGEMAKER_SAFE_PORT_RANGE when it is set. GET /ping: 200. POST /invocations: the port that served it and the
SAGEMAKER_* environment, as JSON."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200 if self.path == "/ping" else 404, b"")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {k: v for k, v in os.environ.items() if k.startswith("SAGEMAKER_")}
        self.answer(200, json.dumps({"port": self.server.server_address[1], "env": env}).encode())


def main():
    safe = os.environ.get("SAGEMAKER_SAFE_PORT_RANGE")
    if safe:
        extra = ThreadingHTTPServer(("0.0.0.0", int(safe.split("-")[0])), Handler)
        threading.Thread(target=extra.serve_forever, daemon=True).start()
    print(f"bindport: serving on {PORT}, extra port range {safe}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
