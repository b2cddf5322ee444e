"""The sample algorithm through the SageMaker Python SDK (v2), as a user writes it: the same code runs in the cloud.

Against the emulator, start its API server and export what it prints (scripts/setup.sh does all of this)::

    python -m emulator api-server --port 8765 --state-dir out/api &      # prints the variables to export
    export AWS_ENDPOINT_URL=http://127.0.0.1:8765 AWS_DEFAULT_REGION=us-east-1 \\
           AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator \\
           SAGEMAKER_USER_CONFIG_OVERRIDE=out/api/sdk-config.yaml
    .venv-sdk/bin/python sample_algorithm/sdk_example.py

Steps: upload the data, ``Estimator.fit`` with train and test channels, a batch transform, a real-time endpoint
(``deploy`` + ``predict``, then deleted), a processing job (split a raw CSV) and a two-step pipeline
(processing -> training) started and waited for. Every step prints what it did. ``--only fit --only deploy``
runs a subset; ``--image`` names another image (default: the sample image); ``--role`` another role ARN.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import sagemaker
from sagemaker.deserializers import CSVDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.serializers import CSVSerializer
from sagemaker.workflow.parameters import ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.steps import ProcessingStep, TrainingStep

DATA = Path(__file__).resolve().parents[1] / "contract_tests" / "data"  # small iris CSVs shipped with the repo
INSTANCE = "ml.m5.large"
STEPS = ("fit", "transform", "deploy", "processing", "pipeline")
METRICS = [
    {"Name": "train:accuracy", "Regex": "train_accuracy=([0-9.]+);"},
    {"Name": "test:accuracy", "Regex": "test_accuracy=([0-9.]+);"},  # the channel is named test
]


def say(message: str) -> None:
    print(message, flush=True)


def timed(label: str, started: float) -> None:
    say(f"   ({label}: {time.perf_counter() - started:.1f} s)")


def split_train_test(work: Path) -> tuple[Path, Path]:
    """Every fifth row of the labelled iris CSV is a test row; label first, no header (what `train` reads)."""
    rows = list(csv.reader(io.StringIO((DATA / "iris_train.csv").read_text())))
    (work / "train").mkdir()
    (work / "test").mkdir()
    for name, part in (("train", [r for i, r in enumerate(rows) if i % 5]), ("test", rows[::5])):
        with open(work / name / f"{name}.csv", "w", newline="") as f:
            csv.writer(f).writerows(part)
    return work / "train", work / "test"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=STEPS, help="run only these steps (repeatable)")
    parser.add_argument("--image", default=os.environ.get("IMAGE", "sagemaker-emulator-sample:latest"))
    parser.add_argument("--role", default="arn:aws:iam::123456789012:role/SageMakerRole")
    args = parser.parse_args()
    steps = args.only or list(STEPS)
    if {"transform", "deploy"} & set(steps):
        steps = sorted(set(steps) | {"fit"}, key=STEPS.index)  # both use the trained model

    session = sagemaker.Session()
    bucket = session.default_bucket()
    prefix = f"sdk-example/{time.strftime('%Y%m%d-%H%M%S')}"
    say(f"SageMaker SDK {sagemaker.__version__}, endpoint {os.environ.get('AWS_ENDPOINT_URL', '(AWS)')}")
    say(f"bucket s3://{bucket}, prefix {prefix}, image {args.image}")

    with tempfile.TemporaryDirectory() as tmp:
        train_dir, test_dir = split_train_test(Path(tmp))
        train_uri = session.upload_data(str(train_dir), bucket, f"{prefix}/train")
        test_uri = session.upload_data(str(test_dir), bucket, f"{prefix}/test")
        batch_uri = session.upload_data(str(DATA / "iris_batch.csv"), bucket, f"{prefix}/batch")
        raw_uri = session.upload_data(str(DATA / "iris_raw.csv"), bucket, f"{prefix}/raw")
    say(f"uploaded train, test, batch and raw data under s3://{bucket}/{prefix}/")

    estimator = Estimator(
        image_uri=args.image,
        role=args.role,
        instance_count=1,
        instance_type=INSTANCE,
        output_path=f"s3://{bucket}/{prefix}/model",
        hyperparameters={"max_depth": 3, "criterion": "entropy"},
        metric_definitions=METRICS,
        sagemaker_session=session,
    )
    if "fit" in steps:
        say("\n1. Estimator.fit with train and test channels")
        t = time.perf_counter()
        estimator.fit(
            {
                "train": TrainingInput(train_uri, content_type="text/csv"),
                "test": TrainingInput(test_uri, content_type="text/csv"),
            }
        )
        say(f"   model: {estimator.model_data}")
        job = estimator.latest_training_job.describe()
        say(f"   metrics: {[(m['MetricName'], m['Value']) for m in job.get('FinalMetricDataList', [])]}")
        timed("fit", t)

    if "transform" in steps:
        say("\n2. Batch transform of the unlabelled rows")
        t = time.perf_counter()
        transformer = estimator.transformer(
            instance_count=1,
            instance_type=INSTANCE,
            strategy="MultiRecord",
            assemble_with="Line",
            accept="text/csv",
            output_path=f"s3://{bucket}/{prefix}/transform",
        )
        transformer.transform(batch_uri, content_type="text/csv", split_type="Line")
        transformer.wait()
        out_key = f"{prefix}/transform/iris_batch.csv.out"
        predictions = session.read_s3_file(bucket, out_key).splitlines()
        say(f"   s3://{bucket}/{out_key}: {len(predictions)} rows, first {predictions[0]}")
        timed("transform", t)

    if "deploy" in steps:
        say("\n3. A real-time endpoint: deploy, predict, delete")
        t = time.perf_counter()
        predictor = estimator.deploy(
            initial_instance_count=1,
            instance_type=INSTANCE,
            serializer=CSVSerializer(),
            deserializer=CSVDeserializer(),
        )
        try:
            answer = predictor.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
            say(f"   {predictor.endpoint_name} answered {answer} (setosa, versicolor, virginica)")
        finally:
            predictor.delete_endpoint()
        say("   endpoint deleted")
        timed("deploy + predict", t)

    processor = Processor(
        role=args.role,
        image_uri=args.image,
        instance_count=1,
        instance_type=INSTANCE,
        entrypoint=["processing"],
        sagemaker_session=session,
    )
    if "processing" in steps:
        say("\n4. A processing job: split the raw CSV")
        t = time.perf_counter()
        processor.run(
            inputs=[ProcessingInput(source=raw_uri, destination="/opt/ml/processing/input/raw")],
            outputs=[
                ProcessingOutput(
                    output_name=name,
                    source=f"/opt/ml/processing/output/{name}",
                    destination=f"s3://{bucket}/{prefix}/split/{name}",
                )
                for name in ("train", "test")
            ],
            arguments=["--test-fraction", "0.2", "--seed", "0"],
        )
        described = processor.latest_job.describe()
        say(f"   {described['ProcessingJobName']}: {described['ProcessingJobStatus']}")
        for output in described["ProcessingOutputConfig"]["Outputs"]:
            say(f"   {output['OutputName']}: {output['S3Output']['S3Uri']}")
        timed("processing", t)

    if "pipeline" in steps:
        say("\n5. A pipeline: Preprocess -> Train, started and waited for")
        t = time.perf_counter()
        pipeline_session = PipelineSession(default_bucket=bucket)
        raw = ParameterString("InputData", default_value=raw_uri)
        split_step = ProcessingStep(
            name="Preprocess",
            step_args=Processor(
                role=args.role,
                image_uri=args.image,
                instance_count=1,
                instance_type=INSTANCE,
                entrypoint=["processing"],
                sagemaker_session=pipeline_session,
            ).run(
                inputs=[ProcessingInput(source=raw, destination="/opt/ml/processing/input/raw")],
                outputs=[
                    ProcessingOutput(output_name=name, source=f"/opt/ml/processing/output/{name}")
                    for name in ("train", "test")
                ],
                arguments=["--test-fraction", "0.2", "--seed", "0"],
            ),
        )
        split = split_step.properties.ProcessingOutputConfig.Outputs
        train_step = TrainingStep(
            name="Train",
            step_args=Estimator(
                image_uri=args.image,
                role=args.role,
                instance_count=1,
                instance_type=INSTANCE,
                output_path=f"s3://{bucket}/{prefix}/pipeline-model",
                hyperparameters={"max_depth": 3},
                metric_definitions=METRICS,
                sagemaker_session=pipeline_session,
            ).fit(
                {
                    "train": TrainingInput(split["train"].S3Output.S3Uri, content_type="text/csv"),
                    "test": TrainingInput(split["test"].S3Output.S3Uri, content_type="text/csv"),
                }
            ),
        )
        pipeline = Pipeline(
            name="sdk-example-pipeline",
            parameters=[raw],
            steps=[split_step, train_step],
            sagemaker_session=pipeline_session,
        )
        pipeline.upsert(role_arn=args.role)
        execution = pipeline.start()
        execution.wait()
        status = execution.describe()["PipelineExecutionStatus"]
        say(f"   {execution.arn}: {status}")
        for step in execution.list_steps():
            say(f"   {step['StepName']}: {step['StepStatus']}")
        timed("pipeline", t)
        if status != "Succeeded":
            return 1

    say("\nall steps done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
