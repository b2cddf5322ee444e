"""Training input modes without an engine: the plan's refusals and DataInputs, staging (Gzip, augmented
manifests), the RecordIO framing, the epoch streams and the Pipe-mode feeder against a fake seam."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.errors import InvalidSpec
from emulator.runtime.docker import ContainerState, _tar_of
from emulator.runtime.pipes import Feeds, PipeFeeder, feeding, stage_pipe
from emulator.runtime.plan import DataInput
from emulator.storage.staging import epoch_stream, recordio, stage_augmented_manifest, stage_data
from emulator.training import plan as training_plan

CONFIG = EmulatorConfig()
NO_S3: Any = None  # local inputs only: staging never touches S3


def request(*channels: dict[str, Any], mode: str = "File") -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": mode},
        "InputDataConfig": list(channels),
    }


def channel(name: str, uri: str = "/data", data_type: str = "S3Prefix", **extra: Any) -> dict[str, Any]:
    src: dict[str, Any] = {"S3Uri": uri, "S3DataType": data_type}
    if "AttributeNames" in extra:
        src["AttributeNames"] = extra.pop("AttributeNames")
    return {"ChannelName": name, "DataSource": {"S3DataSource": src}, **extra}


def unframe(stream: bytes) -> list[bytes]:
    """RecordIO records back out of a stream, read as MXNet's reader does."""
    records = []
    while stream:
        magic, word = struct.unpack("<II", stream[:8])
        assert magic == 0xCED7230A
        assert word >> 29 == 0  # a whole record, never a continued one
        length = word & ((1 << 29) - 1)
        records.append(stream[8 : 8 + length])
        stream = stream[8 + length + (-length % 4) :]
    return records


# -- the plan ---------------------------------------------------------------------------------------------


def test_pipe_channel_overrides_the_job_mode_in_plan_and_inputdataconfig() -> None:
    plan = training_plan.plan(
        request(channel("train", InputMode="Pipe", RecordWrapperType="RecordIO", CompressionType="Gzip"),
                channel("test")),
        CONFIG,
    )  # fmt: skip
    train, test = plan.inputs
    assert (train.mode, train.record_io, train.gunzip) == ("Pipe", True, True)
    assert (test.mode, test.record_io, test.gunzip) == ("File", False, False)
    idc = json.loads(plan.hosts[0].spec.files["/opt/ml/input/config/inputdataconfig.json"])
    assert idc["train"]["TrainingInputMode"] == "Pipe"
    assert idc["train"]["RecordWrapperType"] == "RecordIO"
    assert idc["test"]["TrainingInputMode"] == "File"


def test_job_level_pipe_and_fastfile_reach_every_channel() -> None:
    for mode in ("Pipe", "FastFile"):
        plan = training_plan.plan(request(channel("a"), channel("b"), mode=mode), CONFIG)
        assert [i.mode for i in plan.inputs] == [mode, mode]


def test_augmented_manifest_keeps_its_attribute_order() -> None:
    ch = channel("a", "/m.jsonl", "AugmentedManifestFile", InputMode="Pipe", RecordWrapperType="RecordIO",
                 AttributeNames=["source-ref", "label"])  # fmt: skip
    (item,) = training_plan.plan(request(ch), CONFIG).inputs
    assert item.attributes == ("source-ref", "label")
    assert item.data_type == "AugmentedManifestFile"


@pytest.mark.parametrize(
    ("ch", "words"),
    [
        (channel("a", data_type="ManifestFile", InputMode="FastFile"), "FastFile reads S3Prefix"),
        (channel("a", InputMode="FastFile", CompressionType="Gzip"), "no CompressionType Gzip"),
        (channel("a", data_type="AugmentedManifestFile", AttributeNames=["x"]), "needs InputMode Pipe"),
        (channel("a", data_type="AugmentedManifestFile", InputMode="Pipe", AttributeNames=["x"]), "RecordIO"),
        (channel("a", data_type="AugmentedManifestFile", InputMode="Pipe", RecordWrapperType="RecordIO"),
         "AttributeNames"),
        (channel("a", RecordWrapperType="RecordIO"), "for InputMode Pipe only"),
    ],
)  # fmt: skip
def test_combinations_the_platform_does_not_offer_are_refused(ch: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidSpec, match=words) as err:
        training_plan.plan(request(ch), CONFIG)
    assert "\n" not in str(err.value)


# -- staging ----------------------------------------------------------------------------------------------


def test_gzip_file_channel_is_staged_decompressed_without_the_suffix(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.csv.gz").write_bytes(gzip.compress(b"1,2\n"))
    (src / "sub" / "b").write_bytes(gzip.compress(b"three"))
    ((mount,),) = stage_data(str(src), "/opt/ml/input/data/t", tmp_path / "w", NO_S3, 1, what="t", gunzip=True)
    staged = Path(mount[0])
    assert staged != src  # never the user's files: a decompressed copy
    assert (staged / "a.csv").read_bytes() == b"1,2\n"
    assert (staged / "sub" / "b").read_bytes() == b"three"
    assert not list(staged.rglob("*.gz*"))


def test_gzip_channel_with_plain_data_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "plain.csv").write_text("not gzip")
    with pytest.raises(InvalidSpec, match="is not gzip data; fix CompressionType"):
        stage_data(str(tmp_path / "plain.csv"), "/t", tmp_path / "w", NO_S3, 1, what="channel 't'", gunzip=True)


def test_augmented_manifest_records_in_attribute_order_and_sharded_by_line(tmp_path: Path) -> None:
    (tmp_path / "img1").write_bytes(b"\x89PNG1")
    (tmp_path / "img2").write_bytes(b"\x89PNG2")
    lines = [{"source-ref": str(tmp_path / f"img{i}"), "label": {"class": i}, "other": 0} for i in (1, 2)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    attrs = ["label", "source-ref"]
    (every,) = {tuple(h) for h in stage_augmented_manifest(str(manifest), tmp_path / "w", NO_S3, 2, attrs, what="a")}
    assert [p.read_bytes() for p in every] == [b'{"class": 1}', b"\x89PNG1", b'{"class": 2}', b"\x89PNG2"]
    shards = stage_augmented_manifest(str(manifest), tmp_path / "s", NO_S3, 2, attrs, what="a", sharded=True)
    assert [[p.read_bytes() for p in h] for h in shards] == [[b'{"class": 1}', b"\x89PNG1"],
                                                             [b'{"class": 2}', b"\x89PNG2"]]  # fmt: skip
    with pytest.raises(InvalidSpec, match="line 1 has no attribute 'nope'"):
        stage_augmented_manifest(str(manifest), tmp_path / "x", NO_S3, 1, ["nope"], what="a")


# -- RecordIO and the epoch streams -----------------------------------------------------------------------


@pytest.mark.parametrize("record", [b"", b"a", b"abcd", b"hello", b"x" * 1001])
def test_recordio_frames_round_trip_with_padding(record: bytes) -> None:
    framed = recordio(record)
    assert len(framed) % 4 == 0
    assert unframe(framed) == [record]


def test_epoch_stream_of_files_raw_gunzipped_and_wrapped(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(gzip.compress(b"first"))
    b.write_bytes(gzip.compress(b"second!"))
    assert b"".join(epoch_stream([a, b], gunzip=True, record_io=False)) == b"firstsecond!"
    assert unframe(b"".join(epoch_stream([a, b], gunzip=True, record_io=True))) == [b"first", b"second!"]
    assert b"".join(epoch_stream([b], gunzip=False, record_io=False)) == b.read_bytes()


def test_stage_pipe_streams_a_channel_in_key_order_per_host(tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.mkdir()
    for name in ("c", "a", "b"):
        (src / name).write_text(name)
    item = DataInput(str(src), "/opt/ml/input/data/t", what="t", mode="Pipe", sharded=True)
    epochs = stage_pipe(item, tmp_path / "w", NO_S3, 2)
    assert [b"".join(e()) for e in epochs] == [b"ac", b"b"]
    assert [b"".join(e()) for e in epochs] == [b"ac", b"b"]  # every epoch streams the same again


# -- the feeder -------------------------------------------------------------------------------------------


class PipeDocker:
    """The seam calls a feeder makes: state() and exec_stdin(); each exec records its FIFO and bytes."""

    def __init__(self, epochs_before_exit: int, codes: dict[int, int] | None = None) -> None:
        self.fed: list[tuple[str, bytes]] = []
        self.states = ["created", "created", "running"]
        self._left = epochs_before_exit
        self._codes = codes or {}
        self.done = threading.Event()

    def state(self, container_id: str) -> ContainerState:
        status = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return ContainerState(status, 0, False)

    def exec_stdin(self, container_id: str, argv: list[str], chunks: Iterable[bytes]) -> int | None:
        if self._left == 0:  # the container has exited: the engine refuses the exec
            self.states = ["exited"]
            self.done.set()
            return None
        self._left -= 1
        assert argv[:2] == ["sh", "-c"]
        self.fed.append((argv[-1], b"".join(chunks)))
        return self._codes.get(len(self.fed) - 1, 0)


def test_feeder_waits_for_the_start_then_feeds_epoch_after_epoch() -> None:
    docker: Any = PipeDocker(epochs_before_exit=3, codes={1: 141})  # epoch 1: the reader closed it early
    feeder = PipeFeeder(docker, "c1", "/opt/ml/input/data/train", lambda: iter([b"ab", b"c"]))
    feeder.start()
    assert docker.done.wait(10)
    feeder.close()
    assert docker.fed == [(f"/opt/ml/input/data/train_{n}", b"abc") for n in range(3)]
    assert feeder.epochs_fed == 2  # the one closed early is not counted as fed


def test_feeder_says_once_what_the_image_lacks_and_stops() -> None:
    warnings: list[str] = []
    docker: Any = PipeDocker(epochs_before_exit=5, codes={0: 127})
    feeder = PipeFeeder(docker, "c1", "/opt/ml/input/data/t", lambda: iter([b"x"]), warn=warnings.append)
    feeder.start()
    feeder._thread.join(10)  # it ends by itself: no second epoch after a feed the image cannot take
    assert not feeder._thread.is_alive()
    assert len(docker.fed) == 1
    assert len(warnings) == 1
    assert "needs sh, cat and mkfifo" in warnings[0]


def test_feeding_starts_one_feeder_per_host_channel_and_closes_them() -> None:
    docker: Any = PipeDocker(epochs_before_exit=0)
    feeds: list[Feeds] = [[("/d/a", lambda: iter([b"1"])), ("/d/b", lambda: iter([b"2"]))], []]
    with feeding(docker, ["h1", "h2"], feeds) as feeders:
        assert len(feeders) == 2
    assert not any(f._thread.is_alive() for f in feeders)


def test_the_epoch_0_fifo_is_a_fifo_entry_in_the_archive_written_before_the_start() -> None:
    with tarfile.open(fileobj=io.BytesIO(_tar_of({}, [], ["/opt/ml/input/data/train_0"]))) as tf:
        member = tf.getmember("opt/ml/input/data/train_0")
        assert member.isfifo()
        assert member.mode == 0o644
        assert tf.getmember("opt/ml/input/data").isdir()


def test_fastfile_single_file_channel_is_a_read_only_dir_of_its_own(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("1,2\n")
    ((file_mode,),) = stage_data(str(data), "/opt/ml/input/data/t", tmp_path / "w1", NO_S3, 1, what="t")
    assert file_mode == (str(data), "/opt/ml/input/data/t/train.csv")  # File: the file alone is bound
    ((fast,),) = stage_data(str(data), "/opt/ml/input/data/t", tmp_path / "w2", NO_S3, 1, what="t", dir_read_only=True)
    assert fast[1] == "/opt/ml/input/data/t"  # FastFile: the whole channel dir is the (read-only) mount
    assert (Path(fast[0]) / "train.csv").read_text() == "1,2\n"


def test_cli_input_mode_flag_sets_the_job_mode_and_a_spec_channel_keeps_its_own(tmp_path: Path) -> None:
    from emulator.cli import app
    from emulator.cli.train import training_request

    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(request(channel("own", InputMode="File"))))
    args = app.build_parser().parse_args(["train", "--spec", str(spec), "--input-mode", "Pipe", "--channel", "t=d"])
    plan = training_plan.plan(training_request(args), CONFIG)
    assert plan.request["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    assert {i.what: i.mode for i in plan.inputs} == {"channel 'own'": "File", "channel 't'": "Pipe"}
    with pytest.raises(SystemExit):
        app.build_parser().parse_args(["train", "--image", "x", "--input-mode", "Pipes"])


def test_what_keeps_a_fifo_unfed_is_said_in_the_job_log_under_the_host() -> None:
    lines: list[tuple[str, str]] = []
    docker: Any = PipeDocker(epochs_before_exit=5, codes={0: 127})  # no sh/cat in the image
    feeds: list[Feeds] = [[("/opt/ml/input/data/t", lambda: iter([b"x"]))]]
    with feeding(docker, ["c1"], feeds, ["algo-1"], lambda host, line: lines.append((host, line))) as feeders:
        feeders[0]._thread.join(10)
    assert len(lines) == 1
    assert lines[0][0] == "algo-1"
    assert "could not feed /opt/ml/input/data/t_0 (exit code 127)" in lines[0][1]
