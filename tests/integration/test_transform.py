"""TransformJob on the real Docker engine with the recorder image (tests/images/recorder)."""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.storage.s3 import S3
from emulator.transform import TransformJob

pytestmark = pytest.mark.docker

MIB = 1024 * 1024


@pytest.fixture
def config(fast_config: EmulatorConfig) -> EmulatorConfig:
    return fast_config.with_(stream_logs=False)


def request(inputs: Path | str, outputs: Path | str, **overrides: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
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
        req[key] = {**req[key], **value} if isinstance(value, dict) and isinstance(req.get(key), dict) else value
    return req


def run(
    image: str, config: EmulatorConfig, req: dict[str, Any], env: dict[str, str] | None = None, **kwargs: Any
) -> tuple[TransformJob, dict[str, Any]]:
    models = {"recorder": {"PrimaryContainer": {"Image": image, "Environment": env or {}}}}
    job = TransformJob(req, models=models, config=config, **kwargs)
    return job, job.run()


def lines(n: int, width: int = 10) -> str:
    return "".join(f"{i},{'v' * width}\n" for i in range(n))


def test_batches_fit_max_payload_run_concurrently_and_stay_in_order(
    recorder_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    text = lines(40_000, 60)  # about 2.9 MB
    (tmp_path / "in" / "rows.csv").write_text(text)
    req = request(tmp_path / "in", tmp_path / "out", MaxConcurrentTransforms=4, MaxPayloadInMB=1)
    env = {"RECORDER_RESPONSE": "size", "RECORDER_SLEEP_S": "0.3"}
    _, result = run(recorder_image, config, req, env)
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    sizes = [int(line.split()[0]) for line in (tmp_path / "out" / "rows.csv.out").read_text().splitlines()]
    assert max(sizes) <= MIB
    assert sum(sizes) == len(text)
    ordered = lines(40_000, 60)
    assert len(sizes) == 3
    # answers are written in request order: the sizes add up to record boundaries of the input, in order
    offset = 0
    for size in sizes:
        offset += size
        assert ordered[offset - 1] == "\n"


def test_concurrency_reaches_max_concurrent_transforms_and_order_holds(
    recorder_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.csv").write_text(lines(200))
    env = {"RECORDER_RESPONSE": "lines", "RECORDER_SLEEP_ON": "3", "RECORDER_SLEEP_S": "0.05"}
    req = request(tmp_path / "in", tmp_path / "out", MaxConcurrentTransforms=4, BatchStrategy="SingleRecord")
    _, result = run(recorder_image, config, req, env)
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    out = (tmp_path / "out" / "x.csv.out").read_text().splitlines()
    assert [line.split(":", 2)[2] for line in out] == lines(200).splitlines()
    arrival = [int(line.split(":", 1)[0]) for line in out]
    assert arrival != sorted(arrival)  # answers came back out of order and were put back in order
    assert max(int(line.split(":", 2)[1]) for line in out) == 4


@pytest.mark.parametrize("spelling", ["MULTI_RECORD", "MultiRecord"])
def test_execution_parameters_and_batch_env(
    recorder_image: str, config: EmulatorConfig, tmp_path: Path, spelling: str
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text(lines(100))
    params = {"MaxConcurrentTransforms": 2, "BatchStrategy": spelling, "MaxPayloadInMB": 3}
    env = {"RECORDER_EXECUTION_PARAMETERS": json.dumps(params), "RECORDER_RESPONSE": "env"}
    _, result = run(recorder_image, config, request(tmp_path / "in", tmp_path / "out"), env)
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    assert (result["MaxConcurrentTransforms"], result["MaxPayloadInMB"], result["BatchStrategy"]) == (
        2,
        3,
        "MultiRecord",
    )
    seen = [json.loads(line) for line in (tmp_path / "out" / "a.csv.out").read_text().splitlines()]
    assert seen == [{"SAGEMAKER_BATCH": "true"}]  # one MultiRecord request; nothing the request did not set


def test_batch_env_when_the_request_sets_it(recorder_image: str, config: EmulatorConfig, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("1\n")
    req = request(
        tmp_path / "in", tmp_path / "out", MaxConcurrentTransforms=2, MaxPayloadInMB=5, BatchStrategy="SingleRecord"
    )
    _, result = run(recorder_image, config, req, {"RECORDER_RESPONSE": "env"})
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    assert json.loads((tmp_path / "out" / "a.csv.out").read_text()) == {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "5",
    }


def test_max_payload_0_is_sent_chunked(recorder_image: str, config: EmulatorConfig, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "blob.bin").write_bytes(os.urandom(9 * MIB))
    req = request(
        tmp_path / "in",
        tmp_path / "out",
        MaxPayloadInMB=0,
        TransformInput={"SplitType": "None", "ContentType": "application/octet-stream"},
        TransformOutput={"AssembleWith": "None", "Accept": "text/plain"},
    )
    _, result = run(recorder_image, config, req, {"RECORDER_RESPONSE": "size"})
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    assert (tmp_path / "out" / "blob.bin.out").read_text() == f"{9 * MIB} chunked=True\n"


def test_gzip_input_and_data_processing_join(recorder_image: str, config: EmulatorConfig, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv.gz").write_bytes(gzip.compress(b"a,1,2\nb,3,4\nc,5,6\n"))
    dp = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    req = request(tmp_path / "in", tmp_path / "out", DataProcessing=dp, TransformInput={"CompressionType": "Gzip"})
    _, result = run(recorder_image, config, req, {"RECORDER_RESPONSE": "sum"})
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    assert (tmp_path / "out" / "rows.csv.gz.out").read_text() == "a,3\nb,7\nc,11\n"


def test_a_failed_file_has_no_output_and_the_others_do(
    recorder_image: str, config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "in" / "nested").mkdir(parents=True)
    (tmp_path / "in" / "good.csv").write_text(lines(50))
    (tmp_path / "in" / "nested" / "bad.csv").write_text("1,2\nexplode,3\n")
    (tmp_path / "in" / "nested" / "zgood.csv").write_text(lines(5))
    job, result = run(
        recorder_image, config, request(tmp_path / "in", tmp_path / "out"), {"RECORDER_FAIL_ON": "explode"}
    )
    assert result["TransformJobStatus"] == "Failed"
    assert "nested/bad.csv, records 1-2: Received client error (400)" in result["FailureReason"]
    assert "bad record: explode,3" in result["FailureReason"]
    outputs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert outputs == ["good.csv.out", "nested", "nested/zgood.csv.out"]
    assert [f.status for f in job.files] == ["Completed", "Failed", "Completed"]


def test_s3_in_and_out(recorder_image: str, config: EmulatorConfig) -> None:
    with S3(config) as s3:
        s3.client.create_bucket(Bucket="data")
        s3.put_bytes("s3://data/in/2024/01.csv", lines(1000).encode())
        s3.put_bytes("s3://data/in/2024/02.csv", lines(10).encode())
        models = {"recorder": {"PrimaryContainer": {"Image": recorder_image}}}
        job = TransformJob(request("s3://data/in/", "s3://data/results"), models=models, config=config, s3=s3)
        result = job.run()
        assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
        keys = [k for k, _ in s3.list_keys("s3://data/results/")]
        assert keys == ["results/2024/01.csv.out", "results/2024/02.csv.out"]  # no job-name folder
        assert s3.read_bytes("s3://data/results/2024/01.csv.out") == lines(1000).encode()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def rss_peak() -> Iterator[dict[str, int]]:
    """Samples this process's RSS every 20 ms; yields {"start": ..., "peak": ...} (peak filled at the end)."""
    stats = {"start": _rss_bytes(), "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            stats["peak"] = max(stats["peak"], _rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    yield stats
    stop.set()
    thread.join()


@pytest.mark.slow
def test_memory_stays_flat_on_a_200_mb_input(
    recorder_image: str, config: EmulatorConfig, tmp_path: Path, rss_peak: dict[str, int]
) -> None:
    (tmp_path / "in").mkdir()
    row = ",".join(["1.2345"] * 150) + "\n"  # about 1 KB per record
    path = tmp_path / "in" / "big.csv"
    with open(path, "w") as f:
        for _ in range(200):
            f.write(row * 1000)
    size = path.stat().st_size
    req = request(tmp_path / "in", tmp_path / "out", MaxConcurrentTransforms=2, MaxPayloadInMB=6)
    _, result = run(recorder_image, config, req, {"RECORDER_RESPONSE": "size"})
    assert result["TransformJobStatus"] == "Completed", result.get("FailureReason")
    sent = sum(int(line.split()[0]) for line in (tmp_path / "out" / "big.csv.out").read_text().splitlines())
    assert sent == size
    growth = rss_peak["peak"] - rss_peak["start"]
    assert growth < 100 * MIB, f"RSS grew by {growth / MIB:.0f} MiB for a {size / MIB:.0f} MiB input"
