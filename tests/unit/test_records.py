"""Unit tests for emulator.transform.records: splitting, batching, assembly and DataProcessing (no Docker)."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import random
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from emulator.transform.dataprocessing import DataProcessor
from emulator.transform.records import (
    MIB,
    RECORDIO_MAGIC,
    Assembler,
    Batch,
    InvalidBatchConfig,
    MalformedRecord,
    RecordError,
    RecordTooLarge,
    ResponseMismatch,
    iter_batches,
    iter_chunks,
    iter_payload,
    iter_records,
    open_input,
    payload_limit,
    unframe,
)

MAGIC = struct.pack("<I", RECORDIO_MAGIC)


# ---- helpers ---------------------------------------------------------------------------------------------


def recordio(data: bytes) -> bytes:
    """Frame one record like dmlc-core's RecordIOWriter (split at aligned magics, zero padding)."""
    out = []
    dptr = 0
    for i in range(0, len(data) // 4 * 4, 4):
        if data[i : i + 4] == MAGIC:
            out += [struct.pack("<II", RECORDIO_MAGIC, ((1 if dptr == 0 else 2) << 29) | (i - dptr)), data[dptr:i]]
            dptr = i + 4
    out += [struct.pack("<II", RECORDIO_MAGIC, ((3 if dptr else 0) << 29) | (len(data) - dptr)), data[dptr:]]
    out.append(b"\0" * (-len(data) % 4))
    return b"".join(out)


def tfrecord(data: bytes) -> bytes:
    """Frame one TFRecord (CRCs are not verified by the reader, so dummy values are enough)."""
    return struct.pack("<Q", len(data)) + b"\x11\x22\x33\x44" + data + b"\x55\x66\x77\x88"


def records(data: bytes, split_type: str, **kwargs: int) -> list[bytes]:
    return list(iter_records(io.BytesIO(data), split_type, source="in", **kwargs))


def batches(recs: list[bytes], strategy: str, limit: int | None, split_type: str = "Line") -> list[Batch]:
    return list(iter_batches(recs, strategy, limit, split_type, source="data.csv"))


class GeneratedStream(io.RawIOBase):
    """A file of ``total`` bytes made of repeated ``line``, generated on the fly (nothing held in memory)."""

    def __init__(self, total: int, line: bytes) -> None:
        self._block = line * max(1, 65536 // len(line))
        self._left = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._left)
        done = 0
        while done < n:
            take = min(n - done, len(self._block) - self._pos)
            view[done : done + take] = self._block[self._pos : self._pos + take]
            done += take
            self._pos = (self._pos + take) % len(self._block)
        self._left -= n
        return n


def generated(total: int, line: bytes) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(GeneratedStream(total, line), buffer_size=MIB))


# ---- open_input and gzip ---------------------------------------------------------------------------------


def test_open_input_raw_and_gzip(tmp_path: Path) -> None:
    raw = tmp_path / "a.csv"
    raw.write_bytes(b"1,2\n3,4\n")
    packed = tmp_path / "a.csv.gz"
    packed.write_bytes(gzip.compress(b"1,2\n") + gzip.compress(b"3,4\n"))  # multi-member gzip
    for path, compression in ((raw, None), (raw, "None"), (packed, "Gzip")):
        with open_input(path, compression) as stream:
            assert list(iter_records(stream, "Line")) == [b"1,2", b"3,4"]


def test_open_input_rejects_unknown_compression(tmp_path: Path) -> None:
    with pytest.raises(InvalidBatchConfig, match=r"CompressionType 'Zip'.*'Gzip'"):
        open_input(tmp_path / "x", "Zip")


def test_gzip_declared_but_plain_file_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_bytes(b"1,2\n")
    with open_input(path, "Gzip") as stream, pytest.raises(MalformedRecord, match="not a valid gzip stream"):
        list(iter_records(stream, "Line"))


def test_truncated_gzip_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(b"x" * 10000 + b"\n")[:-12])
    with open_input(path, "Gzip") as stream, pytest.raises(MalformedRecord, match="CompressionType"):
        list(iter_chunks(stream))


# ---- splitting -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a,1\nb,2\n", [b"a,1", b"b,2"]),
        (b"a,1\r\nb,2\r\n", [b"a,1", b"b,2"]),
        (b"a,1\nb,2", [b"a,1", b"b,2"]),  # no trailing newline
        (b"", []),
        (b"\n\n", []),
        (b"a\n\n\nb\n\n", [b"a", b"b"]),  # blank lines are skipped anywhere
        (b" \n\t\n", [b" ", b"\t"]),  # whitespace is data
        (b"a\rb\n", [b"a\rb"]),  # a lone CR is data
        ("é,ü\n".encode(), ["é,ü".encode()]),
    ],
)
def test_line_split(data: bytes, expected: list[bytes]) -> None:
    assert records(data, "Line") == expected


def test_line_longer_than_cap_raises_with_line_number() -> None:
    assert records(b"12345\n123456\r\n", "Line", max_record_bytes=6) == [b"12345", b"123456"]
    with pytest.raises(RecordTooLarge, match="line 3 of in is longer than 6 bytes"):
        records(b"12345\n\n1234567\n", "Line", max_record_bytes=6)
    with pytest.raises(RecordTooLarge):
        records(b"1234567", "Line", max_record_bytes=6)


def test_split_none_is_whole_object() -> None:
    assert records(b"a\nb\n", "None") == [b"a\nb\n"]
    assert records(b"", "None") == []
    with pytest.raises(RecordTooLarge, match=r"larger than 3 bytes.*MaxPayloadInMB=0"):
        records(b"abcd", "None", max_record_bytes=3)


def test_iter_chunks_streams_everything() -> None:
    data = bytes(range(256)) * 1000
    chunks = list(iter_chunks(io.BytesIO(data), 1000))
    assert b"".join(chunks) == data
    assert max(map(len, chunks)) == 1000


def test_unknown_split_type() -> None:
    with pytest.raises(InvalidBatchConfig, match="SplitType 'Csv'"):
        iter_records(io.BytesIO(b""), "Csv")


@pytest.mark.parametrize("size", range(9))
def test_recordio_round_trip_with_padding(size: int) -> None:
    datas = [bytes([65 + size]) * size, b"xyz", b""]
    framed = [recordio(d) for d in datas]
    got = records(b"".join(framed), "RecordIO")
    assert got == framed  # framed verbatim, padding included
    assert all(len(r) % 4 == 0 for r in got)
    assert [unframe(r, "RecordIO") for r in got] == datas


def test_recordio_multipart_record_holding_the_magic() -> None:
    data = b"abcd" + MAGIC + b"efgh" + MAGIC + b"ij" + MAGIC[:2]  # aligned magics split the record
    framed = recordio(data)
    assert framed.count(MAGIC) == 3  # three physical parts
    assert records(framed + recordio(b"next"), "RecordIO") == [framed, recordio(b"next")]
    assert unframe(framed, "RecordIO") == data
    unaligned = b"ab" + MAGIC + b"cd"  # not at a 4-byte boundary: one part
    assert unframe(records(recordio(unaligned), "RecordIO")[0], "RecordIO") == unaligned


def test_recordio_errors() -> None:
    with pytest.raises(MalformedRecord, match=r"byte 0: expected the RecordIO magic 0xced7230a, found 0x64636261"):
        records(b"abcdefgh", "RecordIO")
    with pytest.raises(MalformedRecord, match="truncated"):
        records(recordio(b"hello")[:-3], "RecordIO")
    with pytest.raises(MalformedRecord, match="truncated"):
        records(recordio(b"abcd" + MAGIC + b"x")[:12], "RecordIO")  # ends inside a multi-part record
    with pytest.raises(MalformedRecord, match="flag 3 is out of sequence"):
        records(struct.pack("<II", RECORDIO_MAGIC, 3 << 29), "RecordIO")
    with pytest.raises(RecordTooLarge, match="record at byte 12"):
        records(recordio(b"ok") + recordio(b"x" * 100), "RecordIO", max_record_bytes=64)


def test_tfrecord_round_trip_and_errors() -> None:
    datas = [b"first", b"", b"\x00" * 1000]
    framed = [tfrecord(d) for d in datas]
    got = records(b"".join(framed), "TFRecord")
    assert got == framed
    assert [unframe(r, "TFRecord") for r in got] == datas
    with pytest.raises(MalformedRecord, match="TFRecord record at byte 21"):
        records(framed[0] + framed[1][:-1], "TFRecord")
    with pytest.raises(RecordTooLarge):
        records(framed[2], "TFRecord", max_record_bytes=100)


# ---- batching --------------------------------------------------------------------------------------------


def test_multirecord_packs_greedily_and_exactly() -> None:
    rng = random.Random(7)
    recs = [bytes([97 + i % 26]) * rng.randint(1, 300) for i in range(2000)]
    limit = 1000
    got = batches(recs, "MultiRecord", limit)
    assert all(0 < len(b.payload) <= limit for b in got)
    assert b"".join(b.payload for b in got) == b"".join(r + b"\n" for r in recs)  # order kept, none split
    assert sum(b.count for b in got) == len(recs)
    assert [b.first_record for b in got] == [1, *(1 + sum(b.count for b in got[:i]) for i in range(1, len(got)))]
    for batch, nxt in itertools.pairwise(got):
        assert len(batch.payload) + len(recs[nxt.first_record - 1]) + 1 > limit  # nothing more would fit
        assert batch.payload.count(b"\n") == batch.count


def test_multirecord_counts_real_utf8_bytes() -> None:
    recs = ["éé".encode()] * 5  # 4 bytes each, 5 with the newline
    got = batches(recs, "MultiRecord", 10)
    assert [b.payload for b in got] == ["éé\néé\n".encode()] * 2 + ["éé\n".encode()]
    assert [len(b.payload) for b in got] == [10, 10, 5]


def test_multirecord_exact_fit_boundary() -> None:
    got = batches([b"123456789"] * 7, "MultiRecord", 30)  # 10 bytes each on the wire
    assert [b.count for b in got] == [3, 3, 1]
    assert len(got[0].payload) == 30


def test_record_too_large_before_anything_is_yielded() -> None:
    gen = iter_batches([b"x" * 20, b"y"], "MultiRecord", 10, "Line", source="data.csv")
    with pytest.raises(RecordTooLarge, match=r"record 1 of data\.csv is 21 bytes"):
        next(gen)
    seen: list[Batch] = []
    with pytest.raises(RecordTooLarge, match="record 3 of"):
        seen.extend(iter_batches([b"a", b"b", b"x" * 20], "MultiRecord", 10, "Line", source="f"))
    assert seen == []  # the partial batch before it is dropped, never an empty payload


def test_record_too_large_message() -> None:
    with pytest.raises(RecordTooLarge) as info:
        batches([b"a", b"x" * (7 * MIB)], "MultiRecord", 6 * MIB)
    assert str(info.value) == (
        "record 2 of data.csv is 7340033 bytes with its newline, larger than MaxPayloadInMB=6 (6291456 bytes); "
        "raise MaxPayloadInMB (at most 100, or 0 for no limit) or split the record"
    )


def test_single_record_one_per_batch_with_limit() -> None:
    got = batches([b"a", b"bb", b"ccc"], "SingleRecord", 4)
    assert [(b.payload, b.count, b.first_record) for b in got] == [(b"a\n", 1, 1), (b"bb\n", 1, 2), (b"ccc\n", 1, 3)]
    with pytest.raises(RecordTooLarge, match=r"record 2 of data\.csv is 5 bytes with its newline"):
        batches([b"a", b"dddd"], "SingleRecord", 4)


@pytest.mark.parametrize("limit", [None, 0])
def test_unlimited(limit: int | None) -> None:
    recs = [b"x" * 1000] * 100
    assert len(batches(recs, "MultiRecord", limit)) == 1
    assert len(batches(recs, "SingleRecord", limit)) == 100
    body = b"".join(iter_payload(recs, "Line", chunk_size=4096))
    assert body == batches(recs, "MultiRecord", limit)[0].payload
    assert max(map(len, iter_payload(recs, "Line", chunk_size=4096))) < 4096 + 1001


def test_binary_framing_kept_for_multi_removed_for_single() -> None:
    datas = [b"a", b"bcdef", b"ghij"]
    for frame, split in ((recordio, "RecordIO"), (tfrecord, "TFRecord")):
        recs = records(b"".join(frame(d) for d in datas), split)
        multi = batches(recs, "MultiRecord", None, split)
        assert [b.payload for b in multi] == [b"".join(frame(d) for d in datas)]
        single = batches(recs, "SingleRecord", None, split)
        assert [b.payload for b in single] == datas
        limited = batches(recs, "MultiRecord", len(frame(b"a")) + len(frame(b"bcdef")), split)
        assert [b.count for b in limited] == [2, 1]


def test_split_none_ignores_strategy_and_checks_limit() -> None:
    obj = b"a\nb\n"
    for strategy in ("SingleRecord", "MultiRecord"):
        assert [b.payload for b in batches([obj], strategy, 4, "None")] == [obj]  # no newline added
        with pytest.raises(RecordTooLarge, match="is 4 bytes, larger"):
            batches([obj], strategy, 3, "None")


def test_strategy_spellings_and_validation() -> None:
    assert batches([b"a", b"b"], "MULTI_RECORD", None)[0].count == 2
    assert len(batches([b"a", b"b"], "SINGLE_RECORD", None)) == 2
    with pytest.raises(InvalidBatchConfig, match="BatchStrategy 'Batch'"):
        batches([b"a"], "Batch", None)
    with pytest.raises(InvalidBatchConfig, match=">= 0"):
        batches([b"a"], "MultiRecord", -1)


def test_input_filter_is_measured_and_originals_kept() -> None:
    got = list(
        iter_batches(
            [b"id1,aaaa", b"id2,bbbb"], "MultiRecord", 10, "Line", input_filter=lambda r: r[4:], keep_records=True
        )
    )
    assert [(b.payload, b.records) for b in got] == [(b"aaaa\nbbbb\n", (b"id1,aaaa", b"id2,bbbb"))]
    assert batches([b"a"], "MultiRecord", None)[0].records == ()  # not kept unless asked


def test_input_filter_errors_name_the_record() -> None:
    dp = DataProcessor({"InputFilter": "$[3]"}, "text/csv", None, split_type="Line")
    with pytest.raises(MalformedRecord, match=r"record 2 of f.csv: InputFilter '\$\[3\]' does not fit"):
        list(
            iter_batches(
                [b"1,2,3,4", b"1,2"], "MultiRecord", None, "Line", input_filter=dp.filter_input, source="f.csv"
            )
        )


def test_payload_limit() -> None:
    assert payload_limit(6) == 6291456
    assert payload_limit(0) is None
    assert payload_limit(None) is None


def test_million_records_batch_linearly() -> None:
    # Measured informally: ~0.5 s for split + batch of 1,000,000 lines (local mode's getsizeof loop is quadratic).
    data = b"".join(b"%07d,1.0,2.0\n" % i for i in range(1_000_000))  # 16 bytes per line on the wire
    got = list(iter_batches(iter_records(io.BytesIO(data), "Line"), "MultiRecord", 6 * MIB, "Line"))
    per_batch = 6 * MIB // 16
    assert [b.count for b in got] == [per_batch, per_batch, 1_000_000 - 2 * per_batch]
    assert all(len(b.payload) <= 6 * MIB for b in got)
    assert b"".join(b.payload for b in got) == data


def test_streaming_200mb_keeps_memory_bounded() -> None:
    total = 200 * 1000 * 1000
    line = b"x" * 4095 + b"\n"
    tracemalloc.start()
    try:
        count = size = 0
        for batch in iter_batches(iter_records(generated(total, line), "Line"), "MultiRecord", 6 * MIB, "Line"):
            count += batch.count
            size += len(batch.payload)
        chunked = sum(map(len, iter_chunks(generated(total, line))))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert chunked == total
    assert count == total // 4096 + 1  # the last line is cut short (no newline)...
    assert size == total + 1  # ...and gets one in its payload
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_gzip_streaming_keeps_memory_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(64):
            out.write((b"1.0," * 255 + b"2.0\n") * 1024)  # 1 MiB of 1 KiB lines
    tracemalloc.start()
    try:
        with open_input(path, "Gzip") as stream:
            n = sum(b.count for b in iter_batches(iter_records(stream, "Line"), "MultiRecord", 6 * MIB, "Line"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 64 * 1024
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"


# ---- output assembly -------------------------------------------------------------------------------------


def assemble(bodies: list[bytes], assemble_with: str | None) -> bytes:
    out = io.BytesIO()
    assembler = Assembler(out, assemble_with)
    for body in bodies:
        assembler.add(body)
    assert assembler.bytes_written == len(out.getvalue())
    return out.getvalue()


def test_assemble_none_concatenates_raw() -> None:
    assert assemble([b"a", b"b\n", b"", b"\x00c"], "None") == b"ab\n\x00c"
    assert assemble([b"a", b"b"], None) == b"ab"


def test_assemble_line_adds_one_newline_and_no_blank_lines() -> None:
    assert assemble([b"1", b"2\n", b"3\n4\n", b"5\r\n"], "Line") == b"1\n2\n3\n4\n5\r\n"
    assert b"\n\n" not in assemble([b"a\nb\n", b"c\n", b"d"], "Line")
    assert assemble([b"", b"x"], "Line") == b"\nx\n"  # an empty result keeps its line


def test_assemble_chunks_and_validation() -> None:
    out = io.BytesIO()
    assembler = Assembler(out, "Line")
    assembler.add_chunks(iter([b"ab", b"c\n", b""]))
    assembler.add_chunks(iter([b"d", b"e"]))
    assert out.getvalue() == b"abc\nde\n"
    with pytest.raises(InvalidBatchConfig, match="AssembleWith 'Lines'"):
        Assembler(io.BytesIO(), "Lines")


# ---- DataProcessing --------------------------------------------------------------------------------------

CSV_JOIN = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}


def csv_processor(spec: dict[str, str]) -> DataProcessor:
    return DataProcessor(spec, "text/csv", "text/csv", split_type="Line", assemble_with="Line")


@pytest.mark.parametrize(
    "spec",
    [
        None,
        {},
        {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"},
        {"InputFilter": "", "JoinSource": None},
    ],
)
def test_defaults_are_inactive_for_any_content_type(spec: dict[str, str] | None) -> None:
    dp = DataProcessor(spec, "application/x-recordio-protobuf", "image/png", split_type="RecordIO")
    assert not dp.active
    assert dp.filter_input(b"\x00\x01") == b"\x00\x01"
    assert dp.process_output([b"x"], b"raw") == [b"raw"]


def test_contract_csv_example_filter_join_output_filter() -> None:
    dp = csv_processor(CSV_JOIN)
    assert dp.active
    inputs = [b"id1,5.1,3.5", b"id2,4.9,3.0", b'id3,"a,b",1e3']
    assert [dp.filter_input(r) for r in inputs] == [b"5.1,3.5", b"4.9,3.0", b'"a,b",1e3']  # text kept verbatim
    (batch,) = iter_batches(inputs, "MultiRecord", None, "Line", input_filter=dp.filter_input, keep_records=True)
    assert batch.payload == b'5.1,3.5\n4.9,3.0\n"a,b",1e3\n'
    assert dp.process_output(batch.records, b"0.10\n1.0\n0.90\n") == [b"id1,0.10\n", b"id2,1.0\n", b"id3,0.90\n"]


def test_contract_csv_join_appends_output_row() -> None:
    dp = csv_processor({"JoinSource": "Input"})
    assert dp.filter_input(b"1,2,3") == b"1,2,3"
    assert dp.process_output([b"1,2,3"], b"1\n") == [b"1,2,3,1\n"]
    assert dp.process_output([b"1,2,3"], b"1,0.5") == [b"1,2,3,1,0.5\n"]


def test_csv_output_filter_union_of_index_and_slice() -> None:
    dp = csv_processor({"JoinSource": "Input", "OutputFilter": "$[0,5:]"})
    assert dp.process_output([b"a,b,c,d,e"], b"p,q\n") == [b"a,p,q\n"]
    dp = csv_processor({"OutputFilter": "$[-2:]"})
    assert dp.process_output([b"r"], b"1,2,3\n4,5,6\n") == [b"2,3\n5,6\n"]
    assert csv_processor({"OutputFilter": "$[0]"}).process_output([b"r"], b"7,8") == [b"7"]


def test_csv_join_response_line_count_mismatch() -> None:
    dp = csv_processor(CSV_JOIN)
    with pytest.raises(ResponseMismatch, match="records 4-6 has 2 lines for 3 input lines"):
        dp.process_output([b"a,1", b"b,2", b"c,3"], b"1\n2\n", first_record=4)


def test_output_filter_index_out_of_range_names_the_field() -> None:
    dp = csv_processor({"JoinSource": "Input", "OutputFilter": "$[0,9]"})
    with pytest.raises(MalformedRecord, match=r"OutputFilter '\$\[0,9\]' .*index 9 is out of range for an array of 3"):
        dp.process_output([b"a,b"], b"1\n")


def test_contract_json_object_join() -> None:
    spec = {"InputFilter": "$.features", "JoinSource": "Input", "OutputFilter": "$['id','SageMakerOutput']"}
    dp = DataProcessor(spec, "application/json", "application/json", split_type="Line")
    record = b'{"id": 7, "features": [1.5, 2], "note": "\xc3\xa9"}'
    assert dp.filter_input(record) == b"[1.5,2]"
    assert dp.process_output([record], b'{"label": 1}') == [b'{"id":7,"SageMakerOutput":{"label":1}}']
    full = DataProcessor({"JoinSource": "Input"}, "application/json", "application/json")
    assert json.loads(full.process_output([record], b"0.25")[0]) == {
        "id": 7,
        "features": [1.5, 2],
        "note": "é",
        "SageMakerOutput": 0.25,
    }


def test_contract_json_non_object_join() -> None:
    dp = DataProcessor({"JoinSource": "Input"}, "application/json", "application/json")
    assert dp.process_output([b"[1, 2, 3]"], b"[0.5]") == [b'{"SageMakerInput":[1,2,3],"SageMakerOutput":[0.5]}']
    assert dp.process_output([b'"text"'], b'"pos"') == [b'{"SageMakerInput":"text","SageMakerOutput":"pos"}']


def test_json_multirecord_response_as_lines_or_array() -> None:
    dp = DataProcessor({"JoinSource": "Input", "OutputFilter": "$.SageMakerOutput"}, "application/json", None)
    recs = [b'{"a":1}', b'{"a":2}']
    assert dp.process_output(recs, b'"x"\n"y"\n') == [b'"x"', b'"y"']
    assert dp.process_output(recs, b'["x", "y"]') == [b'"x"', b'"y"']
    with pytest.raises(ResponseMismatch, match="neither 2 JSON documents"):
        dp.process_output(recs, b'["x", "y", "z"]')


def test_json_reserved_key_and_bad_json() -> None:
    dp = DataProcessor({"JoinSource": "Input"}, "application/json", "application/json")
    with pytest.raises(MalformedRecord, match="already has the key 'SageMakerOutput'"):
        dp.process_output([b'{"SageMakerOutput": 1}'], b"2")
    with pytest.raises(MalformedRecord, match="response is not valid JSON"):
        dp.process_output([b"{}"], b"not json")


def test_jsonlines_join_and_filters() -> None:
    spec = {"InputFilter": "$.x", "JoinSource": "Input", "OutputFilter": "$['id','SageMakerOutput']"}
    dp = DataProcessor(spec, "application/jsonlines", "application/jsonlines; charset=utf-8", split_type="Line")
    inputs = [b'{"id":"a","x":[1]}', b'{"id":"b","x":[2]}']
    (batch,) = iter_batches(inputs, "MultiRecord", None, "Line", input_filter=dp.filter_input, keep_records=True)
    assert batch.payload == b"[1]\n[2]\n"
    out = dp.process_output(batch.records, b'{"p":0.1}\n{"p":0.9}\n')
    assert out == [b'{"id":"a","SageMakerOutput":{"p":0.1}}\n', b'{"id":"b","SageMakerOutput":{"p":0.9}}\n']
    assert assemble(out, "Line") == b"".join(out)  # lines already end with a newline


def test_jsonlines_split_none_joins_line_by_line() -> None:
    dp = DataProcessor({"JoinSource": "Input"}, "application/jsonlines", None, split_type="None")
    obj = b'{"a":1}\n{"a":2}\n'
    assert dp.process_output([obj], b"1\n2\n") == [b'{"a":1,"SageMakerOutput":1}\n', b'{"a":2,"SageMakerOutput":2}\n']


def test_csv_input_filter_on_a_whole_object() -> None:
    dp = DataProcessor({"InputFilter": "$[1:]"}, "text/csv", None, split_type="None")
    assert dp.filter_input(b"a,1\r\n\nb,2\n") == b"1\n2\n"
    assert dp.filter_input(b"a,1") == b"1"


def test_output_filter_without_join() -> None:
    dp = DataProcessor({"OutputFilter": "$.scores[0]"}, "text/csv", "application/json", split_type="Line")
    assert dp.process_output([b"1,2"], b'{"scores": [0.7, 0.3]}') == [b"0.7"]
    assert dp.process_output([b"1,2", b"3,4"], b'{"scores":[1]}\n{"scores":[2]}\n') == [b"1\n2\n"]


@pytest.mark.parametrize(
    ("path", "doc", "expected"),
    [
        ("$", {"a": 1}, {"a": 1}),
        ("$.a", {"a": [1, 2]}, [1, 2]),
        ("$['a']", {"a": 1}, 1),
        ('$["a","b"]', {"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2}),
        ("$.f.['c1','c2']", {"f": {"c1": 1, "c2": 2, "c3": 3}}, {"c1": 1, "c2": 2}),
        ("$.*", {"a": 1, "b": 2}, {"a": 1, "b": 2}),
        ("$[*].id", [{"id": 1}, {"id": 2}], [1, 2]),
        ("$.a[*]", {"a": [1, 2]}, [1, 2]),
        ("$[1]", [1, 2, 3], 2),
        ("$[-1]", [1, 2, 3], 3),
        ("$[0,-1]", [1, 2, 3], [1, 3]),
        ("$[ 1 , 0 ]", [1, 2, 3], [2, 1]),
        ("$[1:]", [1, 2, 3], [2, 3]),
        ("$[:2]", [1, 2, 3], [1, 2]),
        ("$[-2:]", [1, 2, 3], [2, 3]),
        ("$[1:-1]", [1, 2, 3, 4], [2, 3]),
        ("$[0,2:]", [1, 2, 3, 4], [1, 3, 4]),
        ("$[5:]", [1, 2], []),
        ("$.a.b[0]", {"a": {"b": ["x"]}}, "x"),
    ],
)
def test_jsonpath_subset(path: str, doc: object, expected: object) -> None:
    dp = DataProcessor({"InputFilter": path}, "application/json", None)
    assert json.loads(dp.filter_input(json.dumps(doc).encode())) == expected


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("features", "must start with '\\$'"),
        ("$..a", "recursive descent"),
        ("$[1:2:3]", "slice"),
        ("$[?(@.a)]", "slice"),
        ("$['a.b']", "nested children"),
        ("$['a',0]", "cannot be mixed"),
        ("$[0", "never closed"),
        ("$.", "unexpected '.'"),
        ("$[" + "0," * 40 + "0]", "at most 63"),
    ],
)
def test_invalid_jsonpath_names_the_field(path: str, why: str) -> None:
    with pytest.raises(InvalidBatchConfig, match=f"InputFilter .*{why}"):
        DataProcessor({"InputFilter": path}, "application/json", None)
    with pytest.raises(InvalidBatchConfig, match=r"^OutputFilter "):
        DataProcessor({"OutputFilter": path}, "application/json", None)


def test_jsonpath_misses_on_data() -> None:
    dp = DataProcessor({"InputFilter": "$.a"}, "application/json", None)
    with pytest.raises(
        MalformedRecord, match=r"InputFilter '\$\.a' does not fit the record: the object has no key 'a'"
    ):
        dp.filter_input(b'{"b": 1}')
    with pytest.raises(MalformedRecord, match="needs an object, found list"):
        dp.filter_input(b"[1]")
    with pytest.raises(MalformedRecord, match="input record is not valid JSON"):
        dp.filter_input(b"{oops")
    with pytest.raises(MalformedRecord, match="not UTF-8"):
        dp.filter_input(b"\xff")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spec": {"JoinSource": "Input"}, "split_type": "None"}, "needs SplitType=Line and AssembleWith=Line"),
        ({"spec": {"JoinSource": "Input"}, "assemble_with": "None"}, "needs SplitType=Line and AssembleWith=Line"),
        ({"spec": {"InputFilter": "$.id"}}, "InputFilter '\\$.id' cannot apply to text/csv"),
        ({"spec": {"OutputFilter": "$[0][1]"}}, "OutputFilter .* cannot apply to text/csv"),
        ({"spec": {"JoinSource": "Input"}, "accept": "application/json"}, "Accept .* to match ContentType"),
        ({"spec": {"InputFilter": "$[1:]"}, "content_type": "application/x-npy"}, "ContentType to be one of"),
        ({"spec": {"OutputFilter": "$[0]"}, "accept": "image/png"}, "Accept to be one of"),
        ({"spec": {"InputFilter": "$[1:]"}, "split_type": "RecordIO"}, "SplitType=RecordIO"),
        ({"spec": {"JoinSource": "Both"}}, "JoinSource 'Both'"),
        ({"spec": {"Filter": "$"}}, "unknown keys \\['Filter'\\]"),
    ],
)
def test_dataprocessing_validation(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"content_type": "text/csv", "accept": "text/csv", "split_type": "Line"}
    args["assemble_with"] = "Line"
    args.update(kwargs)
    with pytest.raises(InvalidBatchConfig, match=match):
        DataProcessor(**args)  # type: ignore[arg-type]


def test_errors_are_value_errors() -> None:
    for exc in (RecordTooLarge, MalformedRecord, ResponseMismatch, InvalidBatchConfig):
        assert issubclass(exc, RecordError)
        assert issubclass(exc, ValueError)


def test_records_iterator_is_lazy() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * 100

    gen = iter_batches(endless(), "MultiRecord", 1010, "Line")
    assert next(gen).count == 10
    assert next(gen).count == 10
