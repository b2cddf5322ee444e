"""The Line block cutter (``iter_line_blocks``, ``iter_line_batches``): the same batches as the per-record path.

The reference is the per-record path (``iter_records`` + ``iter_batches``), which has its own tests in
test_records.py; every case here is run through both and compared, with read sizes small enough that records
and CRLF pairs straddle the edges of the chunks read.
"""

from __future__ import annotations

import gzip
import io
import random
import tracemalloc
from pathlib import Path

import pytest

from emulator.transform.records import (
    MIB,
    Batch,
    RecordTooLarge,
    iter_batches,
    iter_line_batches,
    iter_line_blocks,
    iter_payload,
    iter_records,
    open_input,
)


def reference(data: bytes, strategy: str, limit: int | None) -> list[Batch]:
    return list(iter_batches(iter_records(io.BytesIO(data), "Line"), strategy, limit, "Line", source="in"))


def cut(data: bytes, strategy: str, limit: int | None, chunk_size: int) -> list[Batch]:
    return list(iter_line_batches(io.BytesIO(data), strategy, limit, source="in", chunk_size=chunk_size))


def blocks(data: bytes, chunk_size: int) -> bytes:
    return b"".join(iter_line_blocks(io.BytesIO(data), chunk_size=chunk_size))


CASES = {
    "plain": b"a,1\nbb,2\nccc,3\n",
    "no trailing newline": b"a,1\nbb,2\nccc",
    "crlf": b"a,1\r\nbb,2\r\nccc,3\r\n",
    "crlf, no trailing newline": b"a\r\nb\r\nc",
    "mixed endings": b"a\nb\r\nc\nd\r\n",
    "empty lines": b"\n\na\n\n\nb\n\r\n\r\nc\n\n",
    "only empty lines": b"\n\r\n\n",
    "empty": b"",
    "lone cr is data": b"a\rb\nc\r",
    "cr before newline at the end": b"x\r\n",
    "one long line": b"y" * 37 + b"\n" + b"z" * 5,
}


@pytest.mark.parametrize("data", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64])
def test_blocks_are_the_per_record_payload(data: bytes, chunk_size: int) -> None:
    expected = b"".join(iter_payload(iter_records(io.BytesIO(data), "Line"), "Line"))
    assert blocks(data, chunk_size) == expected
    assert all(b.endswith(b"\n") and not b.startswith(b"\n") for b in iter_line_blocks(io.BytesIO(data), chunk_size=3))


@pytest.mark.parametrize("data", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("strategy", ["MultiRecord", "SingleRecord"])
@pytest.mark.parametrize("limit", [None, 40, 64])
@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_batches_match_the_per_record_path(data: bytes, strategy: str, limit: int | None, chunk_size: int) -> None:
    assert cut(data, strategy, limit, chunk_size) == reference(data, strategy, limit)


def test_random_inputs_match() -> None:
    rng = random.Random(16)
    pieces = [b"", b"a", b"bb,1.5", b"\xc3\xa9\xc3\xa9", b"x" * 30, b"\r", b"q\rr"]
    for _ in range(300):
        data = b"".join(rng.choice(pieces) + rng.choice([b"\n", b"\r\n", b"\n\n"]) for _ in range(rng.randint(0, 40)))
        data += rng.choice([b"", b"tail", b"tail\r"])
        strategy = rng.choice(["MultiRecord", "SingleRecord"])
        limit = rng.choice([None, 32, 33, 50, 200])
        chunk = rng.choice([1, 2, 3, 8, 17, 4096])
        assert cut(data, strategy, limit, chunk) == reference(data, strategy, limit), (data, strategy, limit, chunk)


def test_multirecord_fills_each_payload_up_to_the_limit() -> None:
    data = b"123456789\n" * 7  # 10 bytes a record
    got = cut(data, "MultiRecord", 30, chunk_size=4)
    assert [(b.count, b.first_record, len(b.payload)) for b in got] == [(3, 1, 30), (3, 4, 30), (1, 7, 10)]
    assert b"".join(b.payload for b in got) == data


def test_a_record_over_max_payload_is_refused_with_its_number() -> None:
    data = b"a\nb\n" + b"x" * 20 + b"\r\nc\n"
    with pytest.raises(RecordTooLarge, match=r"record 3 of in is 21 bytes with its newline, larger than"):
        cut(data, "MultiRecord", 10, chunk_size=3)
    with pytest.raises(RecordTooLarge, match=r"record 3 of in is 21 bytes"):
        cut(data, "SingleRecord", 10, chunk_size=64)


def test_a_line_over_the_reader_cap_is_refused_with_its_line_number() -> None:
    data = b"ok\n\nabcdefgh\nz\n"  # line 3 is 8 bytes
    for chunk in (1, 4, 64):
        with pytest.raises(RecordTooLarge, match="line 3 of in is longer than 6 bytes"):
            list(iter_line_blocks(io.BytesIO(data), source="in", max_record_bytes=6, chunk_size=chunk))
    # A line of exactly the cap fits, CRLF or not, at the end or not.
    for data in (b"abcdef\r\nz\n", b"abcdef\nz", b"z\nabcdef", b"z\nabcdef\r\n"):
        assert blocks_with_cap(data, 6) == data.replace(b"\r\n", b"\n").rstrip(b"\n") + b"\n"
    with pytest.raises(RecordTooLarge, match="line 2 of in"):
        blocks_with_cap(b"z\nabcdefg", 6)


def blocks_with_cap(data: bytes, cap: int) -> bytes:
    return b"".join(iter_line_blocks(io.BytesIO(data), source="in", max_record_bytes=cap, chunk_size=2))


def test_gzip_input_and_memory_stay_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(64):
            out.write((b"1.0," * 255 + b"2.0\r\n") * 1024)  # 1 MiB of CRLF lines
    tracemalloc.start()
    try:
        with open_input(path, "Gzip") as stream:
            got = [(b.count, len(b.payload)) for b in iter_line_batches(stream, "MultiRecord", 6 * MIB)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(n for n, _ in got) == 64 * 1024
    assert sum(size for _, size in got) == 64 * 1024 * 1024  # CRLF went out as LF
    assert max(size for _, size in got) <= 6 * MIB
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"
