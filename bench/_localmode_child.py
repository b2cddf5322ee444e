"""Run one SageMaker SDK local-mode job and print its wall time as one JSON line (run by bench_localmode.py).

Runs with the Python of a separate venv that has ``sagemaker`` installed (never the project's venv), so it
imports nothing from this repository. Usage:

    python _localmode_child.py train     '{"image": ..., "channel": DIR, "root": DIR, "out": DIR}'
    python _localmode_child.py transform '{"image": ..., "model_tar": F, "input": DIR, "root": DIR, "out": DIR,
                                           "port": N, "workers": N}'

The parent sets fake credentials, ``AWS_ENDPOINT_URL`` and the HTTP(S) proxy on 127.0.0.1:9 (any AWS or web
call fails locally instead of leaving the machine) and no instance metadata. Telemetry is switched off here by
replacing the SDK's sender with a no-op: the documented switch (``TelemetryOptOut`` in a config file) would
make every config lookup re-validate the config's JSON schema, which costs local mode seconds per job that a
user without a config file does not pay.

``fit()`` runs with its default ``logs`` (local mode's ``logs_for_job`` is a no-op; ``logs="None"`` would add a
5 s poll sleep). ``transform(wait=False)`` is timed: local mode runs the whole job inside the call, and
``wait=True`` would add a 5 s poll sleep (or CloudWatch calls with ``logs=True``) after it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagemaker.local import LocalSession

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


def session(root: str, port: int = 8080) -> LocalSession:
    import sagemaker.telemetry.telemetry_logging as telemetry
    from sagemaker.local import LocalSession

    telemetry._send_telemetry_request = lambda *args, **kwargs: None

    sess = LocalSession()
    sess.config = {"local": {"local_code": True, "container_root": root, "serving_port": port}}
    return sess


def train(args: dict[str, Any]) -> dict[str, float]:
    from sagemaker.estimator import Estimator

    est = Estimator(
        image_uri=args["image"],
        role=ROLE,
        instance_count=1,
        instance_type="local",
        output_path="file://" + args["out"],
        sagemaker_session=session(args["root"]),
    )
    start = time.perf_counter()
    est.fit({"train": "file://" + args["channel"]})
    elapsed = time.perf_counter() - start
    if not list(Path(args["out"]).rglob("model.tar.gz")):
        raise SystemExit("local mode wrote no model.tar.gz")
    return {"seconds": elapsed}


def transform(args: dict[str, Any]) -> dict[str, float]:
    from sagemaker.model import Model

    sess = session(args["root"], args["port"])
    model = Model(image_uri=args["image"], model_data="file://" + args["model_tar"], role=ROLE, sagemaker_session=sess)
    # BatchStrategy is set in the request: local mode then never reads /execution-parameters' value, which
    # would fail on the documented "MULTI_RECORD" spelling (see docs/benchmarks.md).
    transformer = model.transformer(
        instance_count=1,
        instance_type="local",
        strategy="MultiRecord",
        max_payload=6,
        max_concurrent_transforms=args["workers"],
        output_path="file://" + args["out"],
        accept="text/csv",
        assemble_with="Line",
    )
    start = time.perf_counter()
    transformer.transform("file://" + args["input"], content_type="text/csv", split_type="Line", wait=False)
    elapsed = time.perf_counter() - start
    outputs = list(Path(args["out"]).rglob("*.out"))
    if not outputs:
        raise SystemExit("local mode wrote no transform output")
    lines = sum(p.read_bytes().count(b"\n") for p in outputs)
    return {"seconds": elapsed, "output_lines": lines}


if __name__ == "__main__":
    kind, raw = sys.argv[1], json.loads(sys.argv[2])
    report = train(raw) if kind == "train" else transform(raw)
    print(json.dumps(report))
