"""ShuffleConfig in Pipe mode: every epoch streams the channel in an order drawn from the Seed and the epoch, and
with ShardedByS3Key each epoch's order is dealt out among the hosts anew (no engine; local data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.runtime.pipes import stage_pipe
from emulator.runtime.plan import DataInput
from emulator.training import plan as training_plan

NO_S3: Any = None  # local inputs only: staging never touches S3
NAMES = [f"obj-{i:02d}" for i in range(8)]
EPOCHS = 6


def data(tmp_path: Path) -> Path:
    src = tmp_path / "data"
    src.mkdir()
    for name in NAMES:
        (src / name).write_text(f"<{name}>")
    return src


def streamed(epoch: Any) -> list[str]:
    """The objects one epoch streams, in order (each object's bytes are ``<name>``)."""
    return b"".join(epoch()).decode().strip("<>").split("><")


def epochs_of(item: DataInput, tmp_path: Path, work: str, hosts: int) -> list[list[list[str]]]:
    """[epoch][host] -> the objects that host streams in that epoch."""
    feeds = stage_pipe(item, tmp_path / work, NO_S3, hosts)
    return [[streamed(f) for f in feeds] for _ in range(EPOCHS)]


def test_every_epoch_streams_every_object_once_in_a_seeded_order_that_changes(tmp_path: Path) -> None:
    item = DataInput(str(data(tmp_path)), "/opt/ml/input/data/t", what="t", mode="Pipe", shuffle_seed=7)
    run = epochs_of(item, tmp_path, "w1", 1)
    assert all(sorted(e[0]) == NAMES for e in run)
    assert len({tuple(e[0]) for e in run}) > 1  # the order is drawn anew each epoch
    assert any(e[0] != NAMES for e in run)  # not the key order
    assert epochs_of(item, tmp_path, "w2", 1) == run  # the same seed streams the same sequence again
    other = DataInput(str(tmp_path / "data"), "/opt/ml/input/data/t", what="t", mode="Pipe", shuffle_seed=8)
    assert epochs_of(other, tmp_path, "w3", 1) != run


def test_without_shuffle_config_every_epoch_is_in_key_order(tmp_path: Path) -> None:
    item = DataInput(str(data(tmp_path)), "/opt/ml/input/data/t", what="t", mode="Pipe")
    assert epochs_of(item, tmp_path, "w", 2) == [[NAMES, NAMES]] * EPOCHS


def test_sharded_shuffled_data_moves_across_hosts_between_epochs(tmp_path: Path) -> None:
    src = str(data(tmp_path))
    item = DataInput(src, "/opt/ml/input/data/t", what="t", mode="Pipe", sharded=True, shuffle_seed=3)
    run = epochs_of(item, tmp_path, "w", 2)
    for first, second in run:  # each epoch: the hosts' shares are disjoint and together the whole channel
        assert sorted(first + second) == NAMES
        assert len(first) == len(second) == len(NAMES) // 2
    assert len({frozenset(e[0]) for e in run}) > 1  # what host 0 gets changes between epochs
    plain = DataInput(src, "/opt/ml/input/data/t", what="t", mode="Pipe", sharded=True)
    assert epochs_of(plain, tmp_path, "w0", 2) == [[NAMES[0::2], NAMES[1::2]]] * EPOCHS  # unshuffled: fixed shards


def test_an_augmented_manifest_line_keeps_its_records_together_in_attribute_order(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(f'{{"a": "{n}-a", "b": "{n}-b"}}\n' for n in NAMES))
    item = DataInput(
        str(manifest), "/opt/ml/input/data/t", what="t", mode="Pipe", data_type="AugmentedManifestFile",
        attributes=("a", "b"), shuffle_seed=5,
    )  # fmt: skip
    feed = stage_pipe(item, tmp_path / "w", NO_S3, 1)[0]
    orders = []
    for _ in range(EPOCHS):
        records = b"".join(feed()).decode().strip('"').split('""')  # each record is its attribute's JSON value
        lines = [records[i : i + 2] for i in range(0, len(records), 2)]
        assert [[f"{a[:-2]}-a", f"{a[:-2]}-b"] for a, _ in lines] == lines  # a line's records together, a then b
        orders.append([a[:-2] for a, _ in lines])
    assert all(sorted(o) == NAMES for o in orders)
    assert len({tuple(o) for o in orders}) > 1


def test_the_training_plan_passes_the_seed_of_a_channels_shuffle_config(tmp_path: Path) -> None:
    source = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(tmp_path)}}
    shuffled = {"ChannelName": "a", "InputMode": "Pipe", "ShuffleConfig": {"Seed": 42}, "DataSource": source}
    plain = {"ChannelName": "b", "InputMode": "Pipe", "DataSource": source}
    req = {"AlgorithmSpecification": {"TrainingImage": "x"}, "InputDataConfig": [shuffled, plain]}
    p = training_plan.plan(req, EmulatorConfig(work_dir=str(tmp_path)))
    assert [i.shuffle_seed for i in p.inputs] == [42, None]
