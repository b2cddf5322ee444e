"""One step of the seed code in SageMaker SDK local mode; prints its wall time as a JSON line (for bench_sdk.py).

Runs with the SDK venv's Python (scripts/ensure_sdk_venv.sh), never the project's, and imports nothing from this
repository. The parent sets fake credentials and points every AWS endpoint and the HTTP(S) proxy at a closed port
on 127.0.0.1, bounds the run with a timeout and removes the containers local mode leaves. Usage:

    python _sdk_localmode_child.py STEP '{"image": ..., "data": DIR, "root": DIR, "out": DIR, "port": N}'

STEP is fit, transform, deploy, processing or pipeline; the code is the seed code with ``instance_type="local"``
and ``file://`` locations. A step that fails prints ``{"error": ...}`` and exits 1.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def _session(args: dict[str, Any], pipeline: bool = False) -> Any:
    import sagemaker.telemetry.telemetry_logging as telemetry
    from sagemaker.local import LocalSession
    from sagemaker.workflow.pipeline_context import LocalPipelineSession

    telemetry._send_telemetry_request = lambda *a, **k: None  # as _localmode_child.py: no telemetry call
    sess = LocalPipelineSession() if pipeline else LocalSession()
    sess.config = {"local": {"local_code": True, "container_root": args["root"], "serving_port": args["port"]}}
    return sess


def _estimator(args: dict[str, Any], sess: Any) -> Any:
    from sagemaker.estimator import Estimator

    return Estimator(
        image_uri=args["image"],
        role=ROLE,
        instance_count=1,
        instance_type="local",
        output_path="file://" + args["out"],
        hyperparameters={"max_depth": 3, "criterion": "entropy"},
        sagemaker_session=sess,
    )


def _fitted(args: dict[str, Any], sess: Any) -> Any:
    est = _estimator(args, sess)
    est.fit({"train": "file://" + args["data"] + "/train", "test": "file://" + args["data"] + "/test"})
    return est


def fit(args: dict[str, Any]) -> None:
    _fitted(args, _session(args))


def transform(args: dict[str, Any]) -> None:
    est = _fitted(args, _session(args))
    start = time.perf_counter()
    transformer = est.transformer(
        instance_count=1,
        instance_type="local",
        strategy="MultiRecord",
        assemble_with="Line",
        accept="text/csv",
        output_path="file://" + args["out"] + "/transform",
    )
    transformer.transform("file://" + args["data"] + "/batch", content_type="text/csv", split_type="Line")
    transformer.wait()
    _report(start)


def deploy(args: dict[str, Any]) -> None:
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.serializers import CSVSerializer

    est = _fitted(args, _session(args))
    start = time.perf_counter()
    predictor = est.deploy(
        initial_instance_count=1, instance_type="local", serializer=CSVSerializer(), deserializer=CSVDeserializer()
    )
    try:
        predictor.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    finally:
        predictor.delete_endpoint()
    _report(start)


def _processor(args: dict[str, Any], sess: Any) -> Any:
    from sagemaker.processing import Processor

    return Processor(
        role=ROLE,
        image_uri=args["image"],
        instance_count=1,
        instance_type="local",
        entrypoint=["processing"],
        sagemaker_session=sess,
    )


def _split_args(args: dict[str, Any]) -> dict[str, Any]:
    from sagemaker.processing import ProcessingInput, ProcessingOutput

    return {
        "inputs": [
            ProcessingInput(source="file://" + args["data"] + "/raw", destination="/opt/ml/processing/input/raw")
        ],
        "outputs": [
            ProcessingOutput(
                output_name=name,
                source=f"/opt/ml/processing/output/{name}",
                destination="file://" + args["out"] + f"/split/{name}",
            )
            for name in ("train", "test")
        ],
        "arguments": ["--test-fraction", "0.2", "--seed", "0"],
    }


def processing(args: dict[str, Any]) -> None:
    _processor(args, _session(args)).run(**_split_args(args))


def pipeline(args: dict[str, Any]) -> None:
    from sagemaker.inputs import TrainingInput
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep

    sess = _session(args, pipeline=True)
    split_step = ProcessingStep(name="Preprocess", step_args=_processor(args, sess).run(**_split_args(args)))
    split = split_step.properties.ProcessingOutputConfig.Outputs
    train_step = TrainingStep(
        name="Train",
        step_args=_estimator(args, sess).fit(
            {
                "train": TrainingInput(split["train"].S3Output.S3Uri, content_type="text/csv"),
                "test": TrainingInput(split["test"].S3Output.S3Uri, content_type="text/csv"),
            }
        ),
    )
    pipe = Pipeline(name="sdk-bench-pipeline", steps=[split_step, train_step], sagemaker_session=sess)
    pipe.upsert(role_arn=ROLE)
    execution = pipe.start()
    execution.wait()  # the seed code waits; local mode's execution has no wait()


def _report(start: float) -> None:
    print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
    raise SystemExit(0)


if __name__ == "__main__":
    step, raw = sys.argv[1], json.loads(sys.argv[2])
    Path(raw["out"]).mkdir(parents=True, exist_ok=True)
    import sagemaker.estimator
    import sagemaker.local
    import sagemaker.processing
    import sagemaker.workflow.pipeline  # noqa: F401  (imports are not part of the figure)

    _START = time.perf_counter()
    try:
        {"fit": fit, "transform": transform, "deploy": deploy, "processing": processing, "pipeline": pipeline}[step](
            raw
        )
    except Exception as exc:  # the failure is the figure: report it as data, with the SDK call that raised it
        frames = [
            f"{Path(f.filename).name}:{f.name}()"
            for f in traceback.extract_tb(exc.__traceback__)
            if "/sagemaker/" in f.filename and f.name != "wrapper"  # not the SDK's decorators
        ]
        where = f"in {frames[0]} ... {frames[-1]}: " if frames else ""
        print(json.dumps({"error": f"{where}{type(exc).__name__}: {exc}"[:400]}), flush=True)
        raise SystemExit(1) from None
    print(json.dumps({"seconds": time.perf_counter() - _START}), flush=True)
