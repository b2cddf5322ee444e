"""Build the sample algorithm's pipeline with the SageMaker Python SDK (v2) and print its definition (JSON).

    pip install "sagemaker>=2.200,<3"
    python sample_algorithm/make_pipeline.py --output out/pipeline.json
    python -m emulator pipeline run out/pipeline.json --param InputData=out/data/iris.csv

The SDK only builds the definition here: nothing is sent to AWS (no credentials are needed). The same
pipeline, written out, is sample_algorithm/pipeline.yaml; it needs no SDK.

Steps: Preprocess (processing: split) -> Train -> Evaluate (processing evaluate, property file
EvaluationReport) -> CheckAccuracy (accuracy >= AccuracyThreshold?) -> IrisModel-CreateModel +
BatchTransform, else AccuracyTooLow (Fail).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROLE = "arn:aws:iam::000000000000:role/SageMakerEmulator"
INSTANCE_TYPE = "ml.m5.large"


def _session(region: str) -> Any:
    import boto3
    from sagemaker.workflow.pipeline_context import PipelineSession

    # Dummy credentials: the SDK makes boto3 clients, but building a definition sends no request.
    boto = boto3.Session(region_name=region, aws_access_key_id="local", aws_secret_access_key="local")
    return PipelineSession(boto_session=boto, default_bucket="sagemaker-emulator-sample")


def _prefix(output_prefix: Any, *parts: str) -> Any:
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.functions import Join

    return Join(on="/", values=[output_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])


def _parameters() -> SimpleNamespace:
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

    return SimpleNamespace(
        input_data=ParameterString("InputData", default_value="out/data/iris.csv"),
        output_prefix=ParameterString("OutputPrefix", default_value="out/pipeline"),
        image=ParameterString("ImageUri", default_value="sagemaker-emulator-sample:latest"),
        test_fraction=ParameterFloat("TestFraction", default_value=0.2),
        max_depth=ParameterInteger("MaxDepth", default_value=3),
        threshold=ParameterFloat("AccuracyThreshold", default_value=0.8),
    )


def _processor(p: SimpleNamespace, session: Any) -> Any:
    from sagemaker.processing import Processor

    return Processor(
        role=ROLE,
        image_uri=p.image,
        instance_count=1,
        instance_type=INSTANCE_TYPE,
        entrypoint=["processing"],
        volume_size_in_gb=30,
        max_runtime_in_seconds=3600,
        sagemaker_session=session,
    )


def _preprocess(p: SimpleNamespace, session: Any) -> Any:
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.workflow.steps import ProcessingStep

    raw = ProcessingInput(source=p.input_data, destination="/opt/ml/processing/input/raw", input_name="raw")
    outputs = [
        ProcessingOutput(
            output_name=name,
            source=f"/opt/ml/processing/output/{name}",
            destination=_prefix(p.output_prefix, "preprocess", name),
        )
        for name in ("train", "test")
    ]
    arguments = ["--test-fraction", p.test_fraction.to_string(), "--seed", "0"]
    return ProcessingStep(
        name="Preprocess",
        description="Split the raw iris CSV into train and test CSVs (label first, no header).",
        step_args=_processor(p, session).run(inputs=[raw], outputs=outputs, arguments=arguments),
    )


def _train(p: SimpleNamespace, session: Any, split: Any) -> Any:
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.workflow.steps import TrainingStep

    estimator = Estimator(
        image_uri=p.image,
        role=ROLE,
        instance_count=1,
        instance_type=INSTANCE_TYPE,
        volume_size=30,
        max_run=3600,
        output_path=_prefix(p.output_prefix, "model"),
        hyperparameters={"max_depth": p.max_depth, "criterion": "gini"},
        metric_definitions=[
            {"Name": "train:accuracy", "Regex": "train_accuracy=([0-9.]+);"},
            {"Name": "validation:accuracy", "Regex": "validation_accuracy=([0-9.]+);"},
        ],
        disable_profiler=True,
        debugger_hook_config=False,
        sagemaker_session=session,
    )
    channels = {
        "train": TrainingInput(split["train"].S3Output.S3Uri, content_type="text/csv"),
        "validation": TrainingInput(split["test"].S3Output.S3Uri, content_type="text/csv"),
    }
    return TrainingStep(name="Train", description="Fit the decision tree.", step_args=estimator.fit(inputs=channels))


def _evaluate(p: SimpleNamespace, session: Any, split: Any, train: Any, report: Any) -> Any:
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.workflow.steps import ProcessingStep

    inputs = [
        ProcessingInput(
            source=train.properties.ModelArtifacts.S3ModelArtifacts,
            destination="/opt/ml/processing/model",
            input_name="model",
        ),
        ProcessingInput(source=split["test"].S3Output.S3Uri, destination="/opt/ml/processing/test", input_name="test"),
    ]
    output = ProcessingOutput(
        output_name="evaluation",
        source="/opt/ml/processing/evaluation",
        destination=_prefix(p.output_prefix, "evaluation"),
    )
    return ProcessingStep(
        name="Evaluate",
        description="Accuracy of the trained model on the test split, as a property file.",
        property_files=[report],
        step_args=_processor(p, session).run(inputs=inputs, outputs=[output], arguments=["evaluate"]),
    )


def _deploy(p: SimpleNamespace, session: Any, split: Any, train: Any) -> list[Any]:
    """The IfSteps: register the model (a ModelStep compiles to '<name>-CreateModel'), batch-transform the test rows."""
    from sagemaker.model import Model
    from sagemaker.transformer import Transformer
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.steps import TransformStep

    model = Model(
        image_uri=p.image,
        model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
        role=ROLE,
        sagemaker_session=session,
    )
    create_model = ModelStep(name="IrisModel", step_args=model.create(instance_type=INSTANCE_TYPE))
    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_count=1,
        instance_type=INSTANCE_TYPE,
        strategy="MultiRecord",
        assemble_with="Line",
        accept="text/csv",
        output_path=_prefix(p.output_prefix, "transform"),
        sagemaker_session=session,
    )
    transform = TransformStep(
        name="BatchTransform",
        description="Class probabilities for every test row, joined to the row (label first).",
        step_args=transformer.transform(
            data=split["test"].S3Output.S3Uri,
            content_type="text/csv",
            split_type="Line",
            input_filter="$[1:]",
            join_source="Input",
        ),
    )
    return [create_model, transform]


def build_pipeline(region: str = "us-east-1") -> Any:
    """The pipeline, as SageMaker SDK objects (``.definition()`` gives the JSON)."""
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.properties import PropertyFile

    session = _session(region)
    p = _parameters()
    preprocess = _preprocess(p, session)
    split = preprocess.properties.ProcessingOutputConfig.Outputs
    train = _train(p, session, split)
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = _evaluate(p, session, split, train, report)
    accuracy = JsonGet(step_name=evaluate.name, property_file=report, json_path="metrics.accuracy.value")
    fail = FailStep(
        name="AccuracyTooLow",
        error_message=Join(on=" ", values=["model accuracy", accuracy, "is below the threshold", p.threshold]),
    )
    check = ConditionStep(
        name="CheckAccuracy",
        conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=p.threshold)],
        if_steps=_deploy(p, session, split, train),
        else_steps=[fail],
    )
    return Pipeline(
        name="IrisPipeline",
        parameters=[p.input_data, p.output_prefix, p.image, p.test_fraction, p.max_depth, p.threshold],
        steps=[preprocess, train, evaluate, check],
        sagemaker_session=session,
    )


def definition(region: str = "us-east-1") -> dict[str, Any]:
    """The pipeline definition as a dict (what ``pipeline.definition()`` returns, parsed)."""
    document: dict[str, Any] = json.loads(build_pipeline(region).definition())
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="write the JSON here (default: stdout)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    try:
        import sagemaker  # noqa: F401
    except ImportError:
        print(
            "error: the SageMaker SDK is not installed (pip install 'sagemaker>=2.200,<3'); "
            "sample_algorithm/pipeline.yaml is the same pipeline without it",
            file=sys.stderr,
        )
        return 2
    text = json.dumps(definition(args.region), indent=2) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
