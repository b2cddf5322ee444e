#!/usr/bin/env python3
"""`serve` on 0.0.0.0:8080 with the multi-model API of the SageMaker contract (section 2.6).

POST /models {"model_name", "url"}: 200; 409 if loaded; 507 once MME_TEST_CAPACITY (default 1000) are loaded;
400 if the url is not a readable directory. GET /models, GET /models/<name> (404 unknown), DELETE /models/<name>
(404 unknown). POST /models/<name>/invoke: 404 unknown, else JSON: the model's name, the files under its url and
the content of its `answer.txt`, the X-Amzn-SageMaker-* headers, SAGEMAKER_MULTI_MODEL and whether the url is
writable. GET /requests: every
request so far, in order ("METHOD PATH [model_name]"), for the tests (not part of the contract).
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CAPACITY = int(os.environ.get("MME_TEST_CAPACITY", "1000"))
MODELS = {}
LOG = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, extra=""):
        with LOCK:
            LOG.append(f"{self.command} {self.path}{extra}")

    def do_GET(self):
        if self.path == "/ping":
            return self.answer(200, {})
        if self.path == "/requests":
            with LOCK:
                return self.answer(200, list(LOG))
        self.record()
        if self.path.split("?")[0] == "/models":
            with LOCK:
                models = [{"modelName": n, "modelUrl": u} for n, u in MODELS.items()]
            return self.answer(200, {"models": models})
        name = self.path[len("/models/") :]
        with LOCK:
            url = MODELS.get(name)
        if url is None:
            return self.answer(404, {"error": f"model {name} is not loaded"})
        return self.answer(200, {"modelName": name, "modelUrl": url})

    def do_DELETE(self):
        self.record()
        name = self.path[len("/models/") :]
        with LOCK:
            found = MODELS.pop(name, None)
        self.answer(200 if found else 404, {})

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/models":
            req = json.loads(data)
            name, url = req["model_name"], req["url"]
            self.record(f" {name}")
            with LOCK:
                if name in MODELS:
                    return self.answer(409, {"error": "loaded already"})
                if len(MODELS) >= CAPACITY:
                    return self.answer(507, {"error": "out of memory"})
                if not os.path.isdir(url):
                    return self.answer(400, {"error": f"{url} is not a directory"})
                MODELS[name] = url
            return self.answer(200, {"status": "loaded"})
        self.record()
        name = self.path[len("/models/") :].removesuffix("/invoke")
        with LOCK:
            url = MODELS.get(name)
        if url is None:
            return self.answer(404, {"error": f"model {name} is not loaded"})
        files = sorted(os.path.relpath(os.path.join(d, f), url) for d, _, fs in os.walk(url) for f in fs)
        try:
            with open(os.path.join(url, "answer.txt"), encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            text = str(exc)
        headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-amzn-sagemaker")}
        self.answer(
            200,
            {
                "model": name,
                "files": files,
                "answer": text,
                "headers": headers,
                "body": data.decode(),
                "env": os.environ.get("SAGEMAKER_MULTI_MODEL"),
                "writable": os.access(url, os.W_OK),
            },
        )


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"multimodel: serving on 8080 (capacity {CAPACITY})", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
