"""Training input modes on the real engine, seen from inside by tests/images/pipe_reader.

The image reads every channel the way real images do (Pipe: ``<ch>_0``, ``<ch>_1``, ... each opened, retried
until it exists, read to EOF; File/FastFile: the files, and a write into the channel dir) and records what it
saw in /opt/ml/model/seen.json. One job covers Pipe (raw; RecordIO with Gzip; an augmented manifest), FastFile
and a Gzip File channel; a second runs two hosts with a sharded S3 Pipe channel.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.constants import LABEL_SESSION
from emulator.runtime import session as _session
from emulator.runtime.docker import DockerClient
from emulator.storage.s3 import S3
from emulator.training import TrainingJob

pytestmark = pytest.mark.docker

MODEL = "/opt/ml/model"


@pytest.fixture(scope="module")
def pipe_reader_image(docker_available: str, image_builder: ModuleType) -> str:
    image: str = image_builder.build_test_image("pipe_reader")
    return image


@pytest.fixture(autouse=True)
def _nothing_left_behind(docker_available: str, fast_config: EmulatorConfig) -> Any:
    yield
    assert DockerClient(fast_config).list_managed(f"{LABEL_SESSION}={_session.SESSION_ID}") == []


def channel(name: str, uri: str, data_type: str = "S3Prefix", **extra: Any) -> dict[str, Any]:
    src: dict[str, Any] = {"S3Uri": uri, "S3DataType": data_type}
    for key in ("AttributeNames", "S3DataDistributionType"):
        if key in extra:
            src[key] = extra.pop(key)
    return {"ChannelName": name, "DataSource": {"S3DataSource": src}, **extra}


def framed(*records: bytes) -> bytes:
    """MXNet RecordIO, written out by hand: magic, length, the record padded to 4 bytes."""
    return b"".join(struct.pack("<II", 0xCED7230A, len(r)) + r + b"\0" * (-len(r) % 4) for r in records)


def seen(result: dict[str, Any], s3: S3 | None = None) -> list[dict[str, Any]]:
    """Every host's seen.json, out of the merged model archive (the hosts write host-named copies)."""
    uri = result["ModelArtifacts"]["S3ModelArtifacts"]
    raw = s3.read_bytes(uri) if s3 else Path(uri).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return [json.load(tf.extractfile(m)) for m in tf.getmembers() if m.name.startswith("seen")]  # type: ignore[arg-type]


def test_pipe_fastfile_gzip_and_augmented_manifest_in_one_job(
    pipe_reader_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "b.txt").write_bytes(b"bbbbb\n")
    (tmp_path / "train" / "a.txt").write_bytes(b"aaa\n")
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "1.gz").write_bytes(gzip.compress(b"hello"))
    (tmp_path / "rec" / "2.gz").write_bytes(gzip.compress(b"recordio!"))
    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "f.bin").write_bytes(b"xy")
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "data.csv.gz").write_bytes(gzip.compress(b"1,2\n"))
    (tmp_path / "img.png").write_bytes(b"\x89PNG")
    (tmp_path / "aug.jsonl").write_text(
        json.dumps({"source-ref": str(tmp_path / "img.png"), "label": {"class": 3}, "unused": 1}) + "\n"
    )
    request = {
        "AlgorithmSpecification": {"TrainingImage": pipe_reader_image, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        "Environment": {"PIPE_EPOCHS": "3", "PIPE_CLOSE_EARLY": "1"},
        "InputDataConfig": [
            channel("train", str(tmp_path / "train"), InputMode="Pipe"),
            channel("rec", str(tmp_path / "rec"), InputMode="Pipe", RecordWrapperType="RecordIO",
                    CompressionType="Gzip"),
            channel("aug", str(tmp_path / "aug.jsonl"), "AugmentedManifestFile", InputMode="Pipe",
                    RecordWrapperType="RecordIO", AttributeNames=["source-ref", "label"]),
            channel("fast", str(tmp_path / "fast"), InputMode="FastFile"),
            channel("gz", str(tmp_path / "gz"), CompressionType="Gzip"),
        ],
    }  # fmt: skip
    result = TrainingJob(request, config=fast_config).run()
    assert result["TrainingJobStatus"] == "Completed", result.get("FailureReason")
    (got,) = seen(result)
    modes = {name: entry["TrainingInputMode"] for name, entry in got["inputdataconfig"].items()}
    assert modes == {"train": "Pipe", "rec": "Pipe", "aug": "Pipe", "fast": "FastFile", "gz": "File"}
    expected = {
        "train": b"aaa\nbbbbb\n",  # the objects in key order, bytes as they are
        "rec": framed(b"hello", b"recordio!"),  # each object decompressed, one record each
        "aug": framed(b"\x89PNG", b'{"class": 3}'),  # the attributes, in AttributeNames order
    }
    for name, data in expected.items():
        epochs = got[name]["epochs"]
        assert all(e["fifo"] for e in epochs)
        # Epoch 0 was closed after one byte; the next epochs came all the same, each whole.
        assert [bytes.fromhex(e["hex"]) for e in epochs] == [data[:1], data, data]
        # Epoch N+1's FIFO appears only once epoch N has been read (the image had to wait for it).
        assert got[name]["next_existed_before_open"][1:] == [False, False]
    assert got["fast"] == {"files": {"f.bin": b"xy".hex()}, "write": "EROFS"}
    assert got["gz"] == {"files": {"data.csv": b"1,2\n".hex()}, "write": "EROFS"}


def test_two_hosts_get_their_shard_of_an_s3_pipe_channel(
    pipe_reader_image: str, fast_config: EmulatorConfig, tmp_path: Path
) -> None:
    with S3(fast_config) as s3:
        s3.client.create_bucket(Bucket="bucket")
        for key in ("k1", "k2", "k3"):
            s3.put_bytes(f"s3://bucket/shards/{key}", key.encode())
        request = {
            "AlgorithmSpecification": {
                "TrainingImage": pipe_reader_image,
                "TrainingInputMode": "Pipe",
                # Each host writes its own seen-<host>.json, so the merged model archive keeps both.
                "ContainerEntrypoint": ["sh", "-c", f"train && mv {MODEL}/seen.json {MODEL}/seen-$(hostname).json"],
            },
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2},
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
            "Environment": {"PIPE_EPOCHS": "2"},
            "InputDataConfig": [channel("train", "s3://bucket/shards/", S3DataDistributionType="ShardedByS3Key")],
        }  # fmt: skip
        result = TrainingJob(request, config=fast_config, s3=s3).run()
        assert result["TrainingJobStatus"] == "Completed", result.get("FailureReason")
        hosts = seen(result, s3)
    streams = sorted(tuple(bytes.fromhex(e["hex"]) for e in h["train"]["epochs"]) for h in hosts)
    assert streams == [(b"k1k3", b"k1k3"), (b"k2", b"k2")]
