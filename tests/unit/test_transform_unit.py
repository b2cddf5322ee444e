"""TransformJob without a Docker engine: the fake engine of _fakes.py runs the recorder in-process."""

from __future__ import annotations

import _thread
import gzip
import hashlib
import io
import json
import signal
import struct
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from _fakes import CONFIG, IMAGE, FakeDocker
from botocore.model import ListShape, MapShape, Shape, StructureShape

from emulator.errors import InputNotFound, Interrupted, InvalidSpec
from emulator.runtime.session import Session
from emulator.spec import operation_model
from emulator.storage.s3 import S3
from emulator.transform import BatchSettingsError, TransformJob, resolve_settings
from emulator.transform.progress import FileProgress, ProgressPrinter


# -- DescribeTransformJob's output shape ---------------------------------------------------------------------
def validate_output(operation: str, data: Mapping[str, Any]) -> list[str]:
    """Every way ``data`` does not fit the output shape of ``operation`` in botocore's SageMaker model."""
    errors: list[str] = []
    shape = operation_model(operation).output_shape
    assert shape is not None, operation
    _walk(shape, data, operation, errors)
    return errors


def _walk(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return
        errors.extend(f"{path}.{name}: missing (required)" for name in shape.required_members if name not in value)
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{path}.{key}: not in the shape")
            else:
                _walk(shape.members[key], item, f"{path}.{key}", errors)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", errors)
    elif isinstance(shape, MapShape):
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected a mapping")
            return
        for key, item in value.items():
            _walk(shape.key, key, f"{path} key", errors)
            _walk(shape.value, item, f"{path}.{key}", errors)
    else:
        _scalar(shape, value, path, errors)


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (datetime,),
    "blob": (bytes,),
}


def _scalar(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    wanted = _TYPES[shape.type_name]
    if not isinstance(value, wanted) or (shape.type_name != "boolean" and isinstance(value, bool)):
        errors.append(f"{path}: expected {shape.type_name}, got {type(value).__name__}")
    elif getattr(shape, "enum", None) and value not in getattr(shape, "enum", []):
        errors.append(f"{path}: {value!r} is not one of {getattr(shape, 'enum', [])}")
    elif isinstance(value, str) and len(value) > shape.metadata.get("max", len(value)):
        errors.append(f"{path}: longer than {shape.metadata['max']}")


# -- helpers ------------------------------------------------------------------------------------------------
def request(inputs: Path | str, outputs: Path | str, **overrides: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "TransformJobName": "unit-job",
        "ModelName": "recorder",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(inputs)}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": str(outputs), "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(req.get(key), dict):
            req[key] = {**req[key], **value}
        else:
            req[key] = value
    return req


def run(
    req: dict[str, Any], env: dict[str, str] | None = None, docker: FakeDocker | None = None, **kwargs: Any
) -> tuple[TransformJob, dict[str, Any], FakeDocker]:
    docker = docker or FakeDocker()
    models = {"recorder": {"PrimaryContainer": {"Image": IMAGE, "Environment": env or {}}}}
    job = TransformJob(req, models=models, config=CONFIG, docker=docker, **kwargs)
    result = job.run()
    assert validate_output("DescribeTransformJob", result) == []
    return job, result, docker


def requests_seen(docker: FakeDocker) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = docker.only().recorder.RECORDS
    return [r for r in seen if r["path"] == "/invocations"]


def csv_lines(n: int, start: int = 0) -> str:
    return "".join(f"{i},{i * 2}\n" for i in range(start, start + n))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text(csv_lines(300))
    (d / "sub" / "b.csv").write_text(csv_lines(200, 1000))
    return d


# -- settings -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("req", "params", "expected"),
    [
        ({}, None, (1, 6, "MultiRecord")),
        (
            {},
            {"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6},
            (8, 6, "MultiRecord"),
        ),
        ({}, {"BatchStrategy": "SINGLE_RECORD"}, (1, 6, "SingleRecord")),
        ({}, {"BatchStrategy": "SingleRecord", "MaxPayloadInMB": 2}, (1, 2, "SingleRecord")),
        (
            {"MaxConcurrentTransforms": 2, "BatchStrategy": "MultiRecord"},
            {"MaxConcurrentTransforms": 8, "BatchStrategy": "SINGLE_RECORD"},
            (2, 6, "MultiRecord"),
        ),
        ({"MaxConcurrentTransforms": 0}, {"MaxConcurrentTransforms": 4}, (4, 6, "MultiRecord")),
        ({"MaxPayloadInMB": 0}, {"MaxPayloadInMB": 6}, (1, 0, "MultiRecord")),
    ],
)
def test_request_wins_over_execution_parameters_over_defaults(
    req: dict[str, Any], params: dict[str, Any] | None, expected: tuple[int, int, str]
) -> None:
    s = resolve_settings(req, params)
    assert (s.max_concurrent, s.max_payload_mb, s.strategy) == expected


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"BatchStrategy": "multi"}, "BatchStrategy='multi'"),
        ({"MaxConcurrentTransforms": 0}, "MaxConcurrentTransforms=0"),
        ({"MaxPayloadInMB": 101}, "MaxPayloadInMB=101"),
        ({"MaxPayloadInMB": "6"}, "MaxPayloadInMB='6'"),
        ({"MaxConcurrentTransforms": 20, "MaxPayloadInMB": 6}, "20 x 6"),
    ],
)
def test_bad_execution_parameters_are_named(params: dict[str, Any], match: str) -> None:
    with pytest.raises(BatchSettingsError, match=match):
        resolve_settings({}, params)


@pytest.mark.parametrize("spelling", ["MULTI_RECORD", "MultiRecord"])
def test_execution_parameters_from_the_container_are_used(tmp_path: Path, data: Path, spelling: str) -> None:
    params = {"MaxConcurrentTransforms": 3, "BatchStrategy": spelling, "MaxPayloadInMB": 1}
    job, result, docker = run(request(data, tmp_path / "out"), {"RECORDER_EXECUTION_PARAMETERS": json.dumps(params)})
    assert result["TransformJobStatus"] == "Completed"
    assert (result["MaxConcurrentTransforms"], result["MaxPayloadInMB"], result["BatchStrategy"]) == (
        3,
        1,
        "MultiRecord",
    )
    assert job.settings is not None
    assert job.settings.sources["BatchStrategy"] == "execution-parameters"
    assert len(requests_seen(docker)) == 2  # one MultiRecord request per file


def test_a_bad_execution_parameters_answer_fails_the_job(tmp_path: Path, data: Path) -> None:
    _, result, docker = run(request(data, tmp_path / "out"), {"RECORDER_EXECUTION_PARAMETERS": "[1]"})
    assert result["TransformJobStatus"] == "Failed"
    assert "not a JSON object" in result["FailureReason"]
    assert docker.removed == list(docker.containers)


def test_batch_env_vars_only_when_the_request_sets_them(tmp_path: Path, data: Path) -> None:
    _, _, docker = run(request(data, tmp_path / "o1", Environment={"B": "job"}), {"A": "model", "B": "model"})
    env = docker.only().spec.environment
    assert env == {"A": "model", "B": "job", "SAGEMAKER_BATCH": "true"}
    req = request(data, tmp_path / "o2", MaxConcurrentTransforms=3, MaxPayloadInMB=2, BatchStrategy="SingleRecord")
    _, _, docker = run(req)
    env = docker.only().spec.environment
    assert env == {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "3",
    }
    assert docker.only().spec.labels["sagemaker-emulator.kind"] == "transform"


# -- batching, order, concurrency ---------------------------------------------------------------------------
def test_order_is_kept_with_concurrent_requests(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.csv").write_text(csv_lines(120))
    env = {"RECORDER_RESPONSE": "lines", "RECORDER_SLEEP_ON": "7", "RECORDER_SLEEP_S": "0.05"}
    req = request(tmp_path / "in", tmp_path / "out", MaxConcurrentTransforms=4, BatchStrategy="SingleRecord")
    _, result, docker = run(req, env)
    assert result["TransformJobStatus"] == "Completed"
    out = (tmp_path / "out" / "x.csv.out").read_text().splitlines()
    assert [line.split(":", 2)[2] for line in out] == csv_lines(120).splitlines()
    seen = requests_seen(docker)
    assert len(seen) == 120
    assert max(r["in_flight"] for r in seen) == 4
    arrival = [int(line.split(":", 1)[0]) for line in out]
    assert arrival != sorted(arrival)  # answers came back out of order and were put back in order


def test_multi_record_batches_never_exceed_max_payload(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    text = "".join(f"{i},{'v' * 100}\n" for i in range(30_000))  # about 3.2 MB
    (tmp_path / "in" / "big.csv").write_text(text)
    _, result, docker = run(request(tmp_path / "in", tmp_path / "out", MaxPayloadInMB=1))
    assert result["TransformJobStatus"] == "Completed"
    sizes = [r["size"] for r in requests_seen(docker)]
    assert max(sizes) <= 1024 * 1024
    assert sum(sizes) == len(text)
    assert len(sizes) == 4
    assert (tmp_path / "out" / "big.csv.out").read_text() == text  # no blank line after each response


def test_max_payload_0_streams_the_object_chunked(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "whole.bin").write_bytes(b"\x00\x01" * 300_000)
    req = request(
        tmp_path / "in",
        tmp_path / "out",
        MaxPayloadInMB=0,
        TransformInput={"SplitType": "None", "ContentType": "application/octet-stream"},
        TransformOutput={"AssembleWith": "None", "Accept": "application/octet-stream"},
    )
    _, result, docker = run(req, {"RECORDER_RESPONSE": "size"})
    assert result["TransformJobStatus"] == "Completed"
    (seen,) = requests_seen(docker)
    assert seen["chunked"] is True
    assert "Content-Length" not in seen["headers"]
    assert seen["size"] == 600_000
    assert (tmp_path / "out" / "whole.bin.out").read_text() == "600000 chunked=True\n"


def test_split_none_object_larger_than_max_payload_fails_its_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "big.bin").write_bytes(b"x" * (1024 * 1024 + 1))
    req = request(tmp_path / "in", tmp_path / "out", MaxPayloadInMB=1, TransformInput={"SplitType": "None"})
    _, result, docker = run(req)
    assert result["TransformJobStatus"] == "Failed"
    assert "big.bin" in result["FailureReason"]
    assert "MaxPayloadInMB=0" in result["FailureReason"]
    assert requests_seen(docker) == []
    assert not (tmp_path / "out").exists()


def _tfrecord(data: bytes) -> bytes:
    return struct.pack("<Q", len(data)) + b"\0" * 4 + data + b"\0" * 4  # CRCs are not checked


@pytest.mark.parametrize(
    ("strategy", "sent"),
    [
        ("SingleRecord", [b"one", b"two", b"three"]),
        ("MultiRecord", [_tfrecord(b"one") + _tfrecord(b"two") + _tfrecord(b"three")]),
    ],
)
def test_tfrecord_single_record_sends_the_data_and_multi_record_the_frames(
    tmp_path: Path, strategy: str, sent: list[bytes]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "r.tfrecord").write_bytes(b"".join(_tfrecord(d) for d in (b"one", b"two", b"three")))
    req = request(
        tmp_path / "in",
        tmp_path / "out",
        BatchStrategy=strategy,
        TransformInput={"SplitType": "TFRecord", "ContentType": "application/x-tfrecord"},
        TransformOutput={"AssembleWith": "None", "Accept": "application/octet-stream"},
    )
    _, result, docker = run(req)
    assert result["TransformJobStatus"] == "Completed"
    assert [r["sha256"] for r in requests_seen(docker)] == [hashlib.sha256(d).hexdigest() for d in sent]
    assert (tmp_path / "out" / "r.tfrecord.out").read_bytes() == b"".join(sent)


def test_gzip_input_is_decompressed_before_sending(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "z.csv.gz").write_bytes(gzip.compress(csv_lines(50).encode()))
    _, result, _ = run(request(tmp_path / "in", tmp_path / "out", TransformInput={"CompressionType": "Gzip"}))
    assert result["TransformJobStatus"] == "Completed"
    assert (tmp_path / "out" / "z.csv.gz.out").read_text() == csv_lines(50)


def test_data_processing_filters_and_joins_outside_the_container(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text("a,1,2\nb,3,4\n")
    dp = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    _, result, docker = run(request(tmp_path / "in", tmp_path / "out", DataProcessing=dp), {"RECORDER_RESPONSE": "sum"})
    assert result["TransformJobStatus"] == "Completed"
    assert requests_seen(docker)[0]["head"] == "1,2\n3,4\n"
    assert (tmp_path / "out" / "rows.csv.out").read_text() == "a,3\nb,7\n"
    assert result["DataProcessing"] == dp


# -- outputs and failures -----------------------------------------------------------------------------------
def test_outputs_keep_the_path_relative_to_the_prefix_with_no_job_folder(tmp_path: Path, data: Path) -> None:
    run(request(data, tmp_path / "out"))
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["a.csv.out", "sub/b.csv.out"]
    assert (tmp_path / "out" / "sub" / "b.csv.out").read_text() == csv_lines(200, 1000)


def test_a_partial_prefix_and_a_single_file(tmp_path: Path, data: Path) -> None:
    _, _, _ = run(request(str(data / "a"), tmp_path / "o1"))
    assert [p.name for p in (tmp_path / "o1").iterdir()] == ["a.csv.out"]
    _, _, _ = run(request(data / "sub" / "b.csv", tmp_path / "o2"))
    assert [p.name for p in (tmp_path / "o2").iterdir()] == ["b.csv.out"]


def test_a_failing_record_fails_only_its_file(tmp_path: Path, data: Path) -> None:
    (data / "bad.csv").write_text("1,2\n3,4\nboom,5\n" + "6,7\n" * 100)
    req = request(data, tmp_path / "out", BatchStrategy="SingleRecord")
    job, result, docker = run(req, {"RECORDER_FAIL_ON": "boom"})
    assert result["TransformJobStatus"] == "Failed"
    reason = result["FailureReason"]
    assert reason.startswith("ClientError: input ")
    assert "bad.csv, record 3: Received client error (400) from primary" in reason
    assert "bad record: boom,5" in reason
    assert not (tmp_path / "out" / "bad.csv.out").exists()
    assert (tmp_path / "out" / "a.csv.out").read_text() == csv_lines(300)
    assert (tmp_path / "out" / "sub" / "b.csv.out").exists()
    assert [f.status for f in job.files] == ["Completed", "Failed", "Completed"]
    # the failed file stops there: at most the window of requests already queued (2 x MaxConcurrentTransforms)
    assert len([r for r in requests_seen(docker) if r["head"] == "6,7\n"]) <= 2
    assert not list((tmp_path / "out").rglob("*.part"))


def test_server_errors_are_retried(tmp_path: Path, data: Path) -> None:
    _, result, docker = run(request(data / "a.csv", tmp_path / "out"), {"RECORDER_FAIL_FIRST": "2"})
    assert result["TransformJobStatus"] == "Completed"
    assert len(requests_seen(docker)) == 3


def test_retries_stop_at_invocations_max_retries(tmp_path: Path, data: Path) -> None:
    req = request(data / "a.csv", tmp_path / "out", ModelClientConfig={"InvocationsMaxRetries": 1})
    _, result, docker = run(req, {"RECORDER_FAIL_FIRST": "5"})
    assert result["TransformJobStatus"] == "Failed"
    assert "Received server error (503)" in result["FailureReason"]
    assert len(requests_seen(docker)) == 2


def test_client_errors_are_not_retried(tmp_path: Path, data: Path) -> None:
    _, result, docker = run(request(data / "a.csv", tmp_path / "out"), {"RECORDER_FAIL_ON": "5,10"})
    assert result["TransformJobStatus"] == "Failed"
    assert len(requests_seen(docker)) == 1


def test_timeouts_are_retried_then_fail(tmp_path: Path, data: Path) -> None:
    req = request(
        data / "a.csv",
        tmp_path / "out",
        ModelClientConfig={"InvocationsTimeoutInSeconds": 1, "InvocationsMaxRetries": 1},
    )
    _, result, docker = run(req, {"RECORDER_SLEEP_S": "1.5"})
    assert result["TransformJobStatus"] == "Failed"
    assert "Received server error (0) from primary" in result["FailureReason"]
    assert "timed out" in result["FailureReason"]
    assert docker.only().recorder.STATE["invocations"] == 2  # counted on arrival; the answers never came


def test_a_container_that_dies_fails_the_job(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()

    def kill(p: FileProgress) -> None:
        docker.only().exit(1)

    _, result, _ = run(request(data, tmp_path / "out", BatchStrategy="SingleRecord"), docker=docker, progress=kill)
    assert result["TransformJobStatus"] == "Failed"
    assert "exited with status 1" in result["FailureReason"]
    assert docker.removed == list(docker.containers)
    assert not (tmp_path / "out").exists()


def test_describe_has_the_platform_shape(tmp_path: Path, data: Path) -> None:
    _, result, _ = run(request(data, tmp_path / "out", ModelClientConfig={"InvocationsMaxRetries": 0}))
    assert result["TransformJobStatus"] == "Completed"
    assert result["TransformJobArn"] == "arn:aws:sagemaker:us-east-1:000000000000:transform-job/unit-job"
    assert result["CreationTime"] <= result["TransformStartTime"] <= result["TransformEndTime"]
    assert "FailureReason" not in result
    assert validate_output("DescribeTransformJob", {**result, "Bogus": 1}) == [
        "DescribeTransformJob.Bogus: not in the shape"
    ]


# -- inputs -------------------------------------------------------------------------------------------------
def test_a_manifest_lists_the_inputs(tmp_path: Path, data: Path) -> None:
    manifest = tmp_path / "inputs.manifest"
    manifest.write_text(json.dumps([{"prefix": str(data)}, "sub/b.csv", "a.csv"]))
    req = request(
        manifest,
        tmp_path / "out",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": str(manifest)}}},
    )
    job, result, _ = run(req)
    assert result["TransformJobStatus"] == "Completed"
    assert [Path(f.output).relative_to(tmp_path / "out").as_posix() for f in job.files] == [
        "sub/b.csv.out",
        "a.csv.out",
    ]


def test_s3_in_and_out_through_moto(tmp_path: Path) -> None:
    with S3(CONFIG) as s3:
        s3.client.create_bucket(Bucket="bucket")
        s3.put_bytes("s3://bucket/input/part-1.csv", csv_lines(10).encode())
        s3.put_bytes("s3://bucket/input/nested/part-2.csv", csv_lines(5).encode())
        docker = FakeDocker()
        models = {"recorder": {"PrimaryContainer": {"Image": IMAGE}}}
        job = TransformJob(
            request("s3://bucket/input/", "s3://bucket/output"), models=models, config=CONFIG, docker=docker, s3=s3
        )
        result = job.run()
        assert result["TransformJobStatus"] == "Completed"
        assert [k for k, _ in s3.list_keys("s3://bucket/output/")] == [
            "output/nested/part-2.csv.out",
            "output/part-1.csv.out",
        ]
        assert s3.read_bytes("s3://bucket/output/part-1.csv.out") == csv_lines(10).encode()


def test_missing_inputs_and_bad_requests_fail_before_any_container(tmp_path: Path) -> None:
    docker = FakeDocker()
    models = {"recorder": {"PrimaryContainer": {"Image": IMAGE}}}
    with pytest.raises(InputNotFound, match="no input objects"):
        TransformJob(request(tmp_path / "nothing", tmp_path / "out"), models=models, config=CONFIG, docker=docker).run()
    with pytest.raises(InvalidSpec, match="6 x 20 = 120"):
        TransformJob(request(tmp_path, tmp_path, MaxConcurrentTransforms=6, MaxPayloadInMB=20), models=models)
    with pytest.raises(InvalidSpec, match="no such model"):
        TransformJob(request(tmp_path, tmp_path), models={})
    with pytest.raises(InvalidSpec, match="DataProcessing"):
        TransformJob(request(tmp_path, tmp_path, DataProcessing={"InputFilter": "$..a"}), models=models)
    with pytest.raises(InvalidSpec, match="SplitType"):
        TransformJob(request(tmp_path, tmp_path, TransformInput={"SplitType": "Lines"}), models=models)
    assert docker.containers == {}


def test_the_image_extension_needs_no_model_registry(tmp_path: Path, data: Path) -> None:
    req = request(data / "a.csv", tmp_path / "out")
    del req["ModelName"]
    job = TransformJob(req, image=IMAGE, config=CONFIG, docker=FakeDocker())
    assert job.run()["ModelName"] == "recorder"


# -- stop and Ctrl-C ---------------------------------------------------------------------------------------
def _until(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the job"
        time.sleep(0.01)


def _new_job(req: dict[str, Any], docker: FakeDocker, env: dict[str, str] | None = None, **kw: Any) -> TransformJob:
    models = {"recorder": {"PrimaryContainer": {"Image": IMAGE, "Environment": env or {}}}}
    return TransformJob(req, models=models, docker=docker, **{"config": CONFIG, **kw})


def _assert_stopped_and_clean(job: TransformJob, result: dict[str, Any], docker: FakeDocker, out: Path) -> None:
    assert result["TransformJobStatus"] == "Stopped", result.get("FailureReason")
    assert "FailureReason" not in result
    assert result["TransformStartTime"] <= result["TransformEndTime"]
    assert validate_output("DescribeTransformJob", result) == []
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []  # nothing published
    assert docker.removed == list(docker.containers)  # every container removed
    assert {f.status for f in job.files} <= {"Stopped"}


def test_stop_from_another_thread_mid_run_sends_no_more_and_publishes_nothing(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()
    stopped_at: list[int] = []

    def stop_after_20_records(p: FileProgress) -> None:
        if p.records >= 20 and not stopped_at:
            stopped_at.append(p.records)
            stopper = threading.Thread(target=job.stop)  # another thread, joined so the count below is exact
            stopper.start()
            stopper.join(5)

    req = request(data, tmp_path / "out", BatchStrategy="SingleRecord", MaxConcurrentTransforms=2)
    work = tmp_path / "work"
    work.mkdir()
    config = CONFIG.with_(work_dir=str(work))
    job = _new_job(req, docker, {"RECORDER_SLEEP_S": "0.01"}, progress=stop_after_20_records, config=config)
    result = job.start().wait(timeout_s=20)
    assert job.done
    _assert_stopped_and_clean(job, result, docker, tmp_path / "out")
    assert [f.status for f in job.files] == ["Stopped"]  # a.csv was cut short; sub/b.csv never opened
    # no new batch after the stop: at most the window already in flight (2 x MaxConcurrentTransforms)
    assert stopped_at == [20]
    assert 20 <= len(requests_seen(docker)) <= 20 + 2 * 2
    assert docker.only().signals[0] == signal.SIGTERM  # stopped with the grace period, then removed
    assert list(work.iterdir()) == []  # the staged partial outputs are gone with the job's work dir


def test_stop_abandons_requests_in_flight(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()
    job = _new_job(request(data / "a.csv", tmp_path / "out"), docker, {"RECORDER_SLEEP_S": "30"}).start()
    _until(lambda: bool(docker.containers) and docker.only().recorder.STATE.get("invocations", 0) >= 1)
    began = time.monotonic()
    threading.Thread(target=job.stop).start()
    result = job.wait(timeout_s=15)
    assert time.monotonic() - began < 10  # did not wait for the 30 s answer
    _assert_stopped_and_clean(job, result, docker, tmp_path / "out")
    assert [f.status for f in job.files] == ["Stopped"]


def test_stop_while_the_container_starts(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()
    job = _new_job(request(data, tmp_path / "out"), docker, {"RECORDER_PING_STATUS": "503"}).start()
    _until(lambda: bool(docker.containers) and docker.only().server is not None)
    began = time.monotonic()
    job.stop()
    result = job.wait(timeout_s=15)
    assert time.monotonic() - began < CONFIG.startup_timeout_s  # did not wait for the startup timeout
    _assert_stopped_and_clean(job, result, docker, tmp_path / "out")
    assert docker.only().signals[0] == signal.SIGTERM
    assert job.files == []


def test_stop_before_start_runs_nothing(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()
    job = _new_job(request(data, tmp_path / "out"), docker)
    job.stop()
    result = job.run()  # no Ctrl-C: run() returns the Describe shape
    assert result["TransformJobStatus"] == "Stopped"
    assert docker.containers == {}
    job.stop()  # any number of times, also after the end
    assert job.describe()["TransformJobStatus"] == "Stopped"


def test_ctrl_c_in_run_stops_cleans_up_and_raises_interrupted(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()
    job = _new_job(request(data, tmp_path / "out"), docker, {"RECORDER_SLEEP_S": "30"})

    def press_ctrl_c() -> None:
        _until(lambda: bool(docker.containers) and docker.only().recorder.STATE.get("invocations", 0) >= 1)
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    began = time.monotonic()
    with pytest.raises(Interrupted, match="transform job unit-job was interrupted") as caught:
        job.run()
    assert time.monotonic() - began < 15
    assert caught.value.exit_code == 130
    assert job.done  # the clean-up finished before run() raised
    _assert_stopped_and_clean(job, job.describe(), docker, tmp_path / "out")


def test_describe_is_a_snapshot_while_it_runs(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()
    job = _new_job(request(data, tmp_path / "out"), docker, {"RECORDER_SLEEP_S": "30"}).start()
    _until(lambda: job.describe().get("BatchStrategy") == "MultiRecord")
    snapshot = job.describe()
    snapshot["TransformInput"]["ContentType"] = "changed"
    assert job.describe()["TransformInput"]["ContentType"] == "text/csv"
    assert snapshot["TransformJobStatus"] == "InProgress"
    job.stop()
    assert job.wait(timeout_s=15)["TransformJobStatus"] == "Stopped"


def test_a_shared_session_is_used_and_not_closed(tmp_path: Path, data: Path) -> None:
    docker = FakeDocker()
    with Session(CONFIG, docker=docker) as session:
        models = {"recorder": {"PrimaryContainer": {"Image": IMAGE}}}
        job = TransformJob(request(data / "a.csv", tmp_path / "out"), models=models, session=session)
        assert job.config is CONFIG
        assert job.run()["TransformJobStatus"] == "Completed"
        assert len(docker.containers) == 1
        assert session.docker is docker


# -- progress -----------------------------------------------------------------------------------------------
def test_progress_reports_each_file(tmp_path: Path, data: Path) -> None:
    events: list[FileProgress] = []
    run(request(data, tmp_path / "out", MaxPayloadInMB=1), progress=lambda p: events.append(FileProgress(**vars(p))))
    done = [e for e in events if e.done]
    assert [(e.name, e.records, e.failed) for e in done] == [("a.csv", 300, False), ("sub/b.csv", 200, False)]


def test_progress_printer_writes_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out, interval_s=0)
    printer(FileProgress("a.csv", 2 * 2**20, records=10, bytes_sent=2**20, requests=1))
    printer(FileProgress("a.csv", 2 * 2**20, records=20, bytes_sent=2 * 2**20, requests=2, done=True))
    assert out.getvalue().splitlines() == [
        "a.csv: 10 records, 1.0/2.0 MiB sent, 0.0 MiB out, 1 requests",
        "a.csv: 20 records, 2.0/2.0 MiB sent, 0.0 MiB out, 2 requests done",
    ]
