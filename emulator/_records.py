"""The streaming data path of batch transform: split, batch, assemble, and DataProcessing.

Pure code: no Docker, no HTTP, no threads. Everything streams (an input is never read whole) and runs in
linear time, so multi-GB inputs work in bounded memory.

Public API:

* ``open_input(path, compression)`` opens an input object, gunzipping it on the fly for ``Gzip``.
* ``iter_records(stream, split_type)`` splits it like ``TransformInput.SplitType``.
* ``iter_chunks(stream)`` streams a ``SplitType=None`` object for ``MaxPayloadInMB=0`` (chunked upload).
* ``unframe(record, split_type)`` is the data inside a RecordIO/TFRecord record.
* ``payload_limit(max_payload_in_mb)`` is the byte limit (``None`` = unlimited) for a MaxPayloadInMB.
* ``iter_batches(records, strategy, max_payload_bytes, split_type)`` packs records into request ``Batch``es.
* ``iter_payload(records, split_type)`` is one unlimited MultiRecord body as a stream of chunks.
* ``Assembler(out, assemble_with)`` writes an output object like ``TransformOutput.AssembleWith``.
* ``DataProcessor(spec, content_type, accept)`` applies ``DataProcessing`` (InputFilter, JoinSource,
  OutputFilter).
* Errors: ``RecordError`` and its subclasses (all ``ValueError``).

Decisions where the SageMaker documentation is silent:

* Line: a record is a line without its ``\\n`` or ``\\r\\n`` (a lone ``\\r`` is data). Empty lines are
  skipped anywhere in the file, so they never become empty requests or output lines. Every Line payload,
  SingleRecord included, is its records joined by ``\\n`` and ended by ``\\n``; CRLF input goes out as LF.
  One line may be at most ``max_record_bytes`` (100 MiB, the largest MaxPayloadInMB).
* An empty object yields no records and so no requests (its ``.out`` is empty), for every SplitType.
* RecordIO/TFRecord: records are yielded framed, exactly as on disk. MultiRecord sends the frames
  verbatim (header, data, padding); SingleRecord sends only the data ("padding removed": the API says
  this for TFRecord too, which has no padding, so it means the framing). A RecordIO record split into
  parts (cflag 1/2/3, because its data holds the magic) is one record. TFRecord CRCs are not verified.
* Batch sizes count the bytes on the wire. A record that cannot fit raises ``RecordTooLarge`` as soon as
  it is read; the partial batch before it is dropped (the object fails anyway) and no empty payload is
  ever produced. ``BatchStrategy`` is ignored for ``SplitType=None``; both API (``MultiRecord``) and env
  (``MULTI_RECORD``) spellings are accepted.
* AssembleWith=Line appends ``\\n`` to a body unless it already ends with one; an empty body becomes one
  empty line, so output lines stay aligned with records.
* DataProcessing: JSON output is compact (``{"a":1}``) UTF-8; CSV fields keep their text and are
  re-quoted minimally. A multi-name selection (``$['id','x']``) yields an object, a union or slice an
  array, a single name or index the value itself; a missing key or index out of range is an error.
  The join needs one response line per input line (CSV, JSON Lines); for JSON, a MultiRecord response
  is one JSON document per line or one array with an item per record. An input object that already has
  ``SageMakerOutput`` is an error. Accept defaults to ContentType.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final, cast

logger = logging.getLogger(__name__)

MIB: Final = 1024 * 1024
#: Largest record the readers hold in memory (MaxPayloadInMB is at most 100).
MAX_RECORD_BYTES: Final = 100 * MIB
#: Read size for raw streaming and for the chunks of ``iter_payload``.
CHUNK_SIZE: Final = MIB
SPLIT_TYPES: Final = ("None", "Line", "RecordIO", "TFRecord")
RECORDIO_MAGIC: Final = 0xCED7230A
_MAGIC_BYTES: Final = struct.pack("<I", RECORDIO_MAGIC)
_STRATEGIES: Final = {
    "SingleRecord": "SingleRecord",
    "SINGLE_RECORD": "SingleRecord",
    "MultiRecord": "MultiRecord",
    "MULTI_RECORD": "MultiRecord",
}


# ---- errors: the lead re-parents these under emulator.errors.EmulatorError --------------------------------


class RecordError(ValueError):
    """Raised when batch-transform data cannot be split, batched, assembled or processed."""


class RecordTooLarge(RecordError):
    """Raised when one record does not fit in a request of MaxPayloadInMB (or in the reader's record cap)."""


class MalformedRecord(RecordError):
    """Raised when data is not what SplitType, CompressionType or ContentType say it is."""


class ResponseMismatch(RecordError):
    """Raised when a MultiRecord response cannot be matched one-to-one with the records that were sent."""


class InvalidBatchConfig(RecordError):
    """Raised when SplitType, BatchStrategy, CompressionType, AssembleWith or DataProcessing is invalid."""


# ---- reading and splitting -------------------------------------------------------------------------------


def open_input(path: str | os.PathLike[str], compression: str | None) -> BinaryIO:
    """Open a local input object for streaming; ``CompressionType="Gzip"`` is decompressed on the fly.

    Raises:
        InvalidBatchConfig: ``compression`` is not ``None``, ``"None"`` or ``"Gzip"``.
    """
    if compression in (None, "None"):
        return open(path, "rb")
    if compression == "Gzip":
        return cast(BinaryIO, gzip.open(path, "rb"))
    raise InvalidBatchConfig(f"CompressionType {compression!r} is not supported; use 'None' or 'Gzip'")


def iter_records(
    stream: BinaryIO, split_type: str, *, source: str | None = None, max_record_bytes: int = MAX_RECORD_BYTES
) -> Iterator[bytes]:
    """Split a stream into records like ``TransformInput.SplitType`` (see the module doc for the rules).

    ``SplitType=None`` yields the whole object as one record (at most ``max_record_bytes``: pass the
    payload limit to fail fast; use ``iter_chunks`` to stream larger objects). RecordIO and TFRecord
    records are yielded framed.

    Raises:
        InvalidBatchConfig: unknown ``split_type``.
        RecordTooLarge: a record is longer than ``max_record_bytes``.
        MalformedRecord: bad RecordIO/TFRecord framing, or a broken gzip stream.
    """
    name = source or _stream_name(stream)
    readers: dict[str, Callable[[BinaryIO, str, int], Iterator[bytes]]] = {
        "None": _read_whole,
        "Line": _iter_lines,
        "RecordIO": _iter_recordio,
        "TFRecord": _iter_tfrecord,
    }
    if split_type not in readers:
        raise InvalidBatchConfig(f"SplitType {split_type!r} is not supported; use one of {', '.join(SPLIT_TYPES)}")
    return _guarded(readers[split_type](stream, name, max_record_bytes), name)


def iter_chunks(stream: BinaryIO, chunk_size: int = CHUNK_SIZE, *, source: str | None = None) -> Iterator[bytes]:
    """Yield an object as raw chunks, for a ``SplitType=None`` body sent chunked (``MaxPayloadInMB=0``)."""

    def chunks() -> Iterator[bytes]:
        while chunk := stream.read(chunk_size):
            yield chunk

    return _guarded(chunks(), source or _stream_name(stream))


def unframe(record: bytes, split_type: str) -> bytes:
    """Return the data inside a framed RecordIO or TFRecord record (other records are returned as is)."""
    if split_type == "TFRecord":
        return record[12:-4]
    if split_type != "RecordIO":
        return record
    parts = []
    pos = 0
    while pos < len(record):
        length = struct.unpack_from("<I", record, pos + 4)[0] & 0x1FFFFFFF
        parts.append(record[pos + 8 : pos + 8 + length])
        pos += 8 + ((length + 3) & ~3)
    return parts[0] if len(parts) == 1 else _MAGIC_BYTES.join(parts)


def _stream_name(stream: BinaryIO) -> str:
    name = getattr(stream, "name", None)
    return str(name) if isinstance(name, str | bytes | os.PathLike) else "<stream>"


def _guarded(records: Iterator[bytes], name: str) -> Iterator[bytes]:
    try:
        yield from records
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise MalformedRecord(
            f"{name} is not a valid gzip stream ({exc}); check TransformInput.CompressionType"
        ) from exc


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) in (0, size):
        return data
    parts = [data]
    got = len(data)
    while got < size and (more := stream.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _read_whole(stream: BinaryIO, name: str, cap: int) -> Iterator[bytes]:
    data = _read_exact(stream, cap + 1)
    if len(data) > cap:
        raise RecordTooLarge(
            f"{name} is larger than {cap} bytes and SplitType=None sends it as one record; "
            "set a SplitType, or MaxPayloadInMB=0 to stream the object"
        )
    if data:
        yield data


def _iter_lines(stream: BinaryIO, name: str, cap: int) -> Iterator[bytes]:
    readline = stream.readline
    lineno = 0
    while line := readline(cap + 2):  # + "\r\n", so that a line of exactly cap bytes fits
        lineno += 1
        if line.endswith(b"\r\n"):
            line = line[:-2]
        elif line.endswith(b"\n"):
            line = line[:-1]
        if len(line) > cap:
            raise RecordTooLarge(
                f"line {lineno} of {name} is longer than {cap} bytes, the largest record the emulator holds; "
                "split the line, or use SplitType=None with MaxPayloadInMB=0 to stream the object"
            )
        if line:
            yield line


def _truncated(name: str, kind: str, offset: int) -> MalformedRecord:
    return MalformedRecord(
        f"{name} ends in the middle of a {kind} record at byte {offset}; the file is truncated or not {kind}"
    )


def _iter_recordio(stream: BinaryIO, name: str, cap: int) -> Iterator[bytes]:
    offset = 0
    frames: list[bytes] = []
    size = 0
    while True:
        header = _read_exact(stream, 8)
        if not header and not frames:
            return
        if len(header) < 8:
            raise _truncated(name, "RecordIO", offset)
        magic, lrecord = struct.unpack("<II", header)
        if magic != RECORDIO_MAGIC:
            raise MalformedRecord(
                f"{name} byte {offset}: expected the RecordIO magic 0xced7230a, found {magic:#010x}; "
                "the file is not MXNet RecordIO (check SplitType)"
            )
        cflag, length = lrecord >> 29, lrecord & 0x1FFFFFFF
        if cflag > 3 or (cflag in (0, 1)) != (not frames):
            raise MalformedRecord(f"{name} byte {offset}: RecordIO continuation flag {cflag} is out of sequence")
        padded = (length + 3) & ~3
        size += 8 + padded
        if size > cap:
            raise RecordTooLarge(f"{name}: the RecordIO record at byte {offset} is larger than {cap} bytes")
        data = _read_exact(stream, padded)
        if len(data) < padded:
            raise _truncated(name, "RecordIO", offset)
        offset += 8 + padded
        frames += (header, data)
        if cflag in (0, 3):
            yield b"".join(frames)
            frames, size = [], 0


def _iter_tfrecord(stream: BinaryIO, name: str, cap: int) -> Iterator[bytes]:
    offset = 0
    while header := _read_exact(stream, 12):
        if len(header) < 12:
            raise _truncated(name, "TFRecord", offset)
        (length,) = struct.unpack_from("<Q", header)
        if length + 16 > cap:
            raise RecordTooLarge(f"{name}: the TFRecord at byte {offset} is {length} bytes, more than {cap}")
        rest = _read_exact(stream, length + 4)
        if len(rest) < length + 4:
            raise _truncated(name, "TFRecord", offset)
        offset += 16 + length
        yield header + rest


# ---- batching --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """One ``/invocations`` request: its payload and which input records it carries."""

    payload: bytes
    #: Number of records in the payload.
    count: int
    #: 1-based position in the object of the first record.
    first_record: int
    #: The original (unfiltered) input records, if ``keep_records`` was set (needed for JoinSource=Input).
    records: tuple[bytes, ...] = ()


def payload_limit(max_payload_in_mb: int | None) -> int | None:
    """Bytes allowed per request for a MaxPayloadInMB; ``None`` for 0/None (no limit, chunked)."""
    return max_payload_in_mb * MIB if max_payload_in_mb else None


def iter_batches(
    records: Iterable[bytes],
    strategy: str,
    max_payload_bytes: int | None,
    split_type: str,
    *,
    input_filter: Callable[[bytes], bytes] | None = None,
    keep_records: bool = False,
    source: str = "<input>",
) -> Iterator[Batch]:
    """Pack records into request payloads like ``BatchStrategy`` + ``MaxPayloadInMB``, in linear time.

    MultiRecord packs as many whole records, in order, as fit in ``max_payload_bytes`` counting the real
    bytes sent (Line separators and binary framing included); SingleRecord sends one each. ``None`` or 0
    means no limit (a whole MultiRecord object is then one batch in memory; see ``iter_payload``).
    ``input_filter`` (``DataProcessor.filter_input``) is applied to each record before it is measured.

    Raises:
        InvalidBatchConfig: unknown strategy or split type, or a negative limit.
        RecordTooLarge: a record cannot fit; raised before anything holding it is yielded.
    """
    if strategy not in _STRATEGIES:
        raise InvalidBatchConfig(f"BatchStrategy {strategy!r} is not supported; use 'SingleRecord' or 'MultiRecord'")
    if split_type not in SPLIT_TYPES:
        raise InvalidBatchConfig(f"SplitType {split_type!r} is not supported; use one of {', '.join(SPLIT_TYPES)}")
    if max_payload_bytes is not None and max_payload_bytes < 0:
        raise InvalidBatchConfig(f"max_payload_bytes must be >= 0, got {max_payload_bytes}")
    multi = _STRATEGIES[strategy] == "MultiRecord" and split_type != "None"
    return _batches(records, multi, max_payload_bytes or None, split_type, input_filter, keep_records, source)


def _batches(
    records: Iterable[bytes],
    multi: bool,
    limit: int | None,
    split_type: str,
    input_filter: Callable[[bytes], bytes] | None,
    keep: bool,
    source: str,
) -> Iterator[Batch]:
    line = split_type == "Line"
    # A bytearray holds the pending payload: tiny records cost their bytes, not a bytes object each.
    buf = bytearray()
    originals: list[bytes] = []
    count = 0
    first = 1
    for n, record in enumerate(records, 1):
        wire = record if input_filter is None else _filtered(input_filter, record, n, source)
        if not multi:
            wire = wire + b"\n" if line else unframe(wire, split_type)
            if limit is not None and len(wire) > limit:
                raise _too_large(n, source, len(wire), limit, line)
            yield Batch(wire, 1, n, (record,) if keep else ())
            continue
        need = len(wire) + line
        if limit is not None:
            if need > limit:
                raise _too_large(n, source, need, limit, line)
            if len(buf) + need > limit:
                yield Batch(bytes(buf), count, first, tuple(originals))
                buf, originals, count, first = bytearray(), [], 0, n
        buf += wire
        if line:
            buf += b"\n"
        count += 1
        if keep:
            originals.append(record)
    if count:
        yield Batch(bytes(buf), count, first, tuple(originals))


def _filtered(input_filter: Callable[[bytes], bytes], record: bytes, n: int, source: str) -> bytes:
    try:
        return input_filter(record)
    except RecordError as exc:
        raise type(exc)(f"record {n} of {source}: {exc}") from exc


def _too_large(n: int, source: str, size: int, limit: int, line: bool) -> RecordTooLarge:
    newline = " with its newline" if line else ""
    return RecordTooLarge(
        f"record {n} of {source} is {size} bytes{newline}, larger than MaxPayloadInMB={limit / MIB:g} "
        f"({limit} bytes); raise MaxPayloadInMB (at most 100, or 0 for no limit) or split the record"
    )


def iter_payload(records: Iterable[bytes], split_type: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Stream one MultiRecord body holding every record (``MaxPayloadInMB=0``), in chunks of ~chunk_size."""
    sep = b"\n" if split_type == "Line" else b""
    parts: list[bytes] = []
    size = 0
    for record in records:
        parts += (record, sep)
        size += len(record) + len(sep)
        if size >= chunk_size:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


# ---- output assembly -------------------------------------------------------------------------------------


class Assembler:
    """Write one output object from its ordered response bodies, like ``TransformOutput.AssembleWith``.

    ``None`` concatenates the bodies as raw bytes; ``Line`` ends each body with exactly one newline.
    """

    def __init__(self, out: BinaryIO, assemble_with: str | None) -> None:
        if assemble_with not in (None, "None", "Line"):
            raise InvalidBatchConfig(f"AssembleWith {assemble_with!r} is not supported; use 'None' or 'Line'")
        self._out = out
        self._line = assemble_with == "Line"
        self.bytes_written = 0

    def add(self, body: bytes) -> None:
        """Append one response body (or one DataProcessing output record)."""
        self.add_chunks((body,))

    def add_chunks(self, chunks: Iterable[bytes]) -> None:
        """Append one response body that arrives as a stream of chunks."""
        last = b""
        for chunk in chunks:
            if chunk:
                self._out.write(chunk)
                self.bytes_written += len(chunk)
                last = chunk
        if self._line and not last.endswith(b"\n"):
            self._out.write(b"\n")
            self.bytes_written += 1


# ---- DataProcessing: the JSONPath subset -----------------------------------------------------------------

_DOC_PATHS = "$, .name, .*, [*], ['a','b'], [n], [n,m] (negatives allowed), [start:end]"
_NAME_RE: Final = re.compile(r"[^.\[\]*'\"\s]+")
_SLICE_RE: Final = re.compile(r"(-?\d+)?\s*:\s*(-?\d+)?")
_INT_RE: Final = re.compile(r"-?\d+")


@dataclass(frozen=True, slots=True)
class _Key:
    name: str


@dataclass(frozen=True, slots=True)
class _Keys:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Select:
    items: tuple[int | tuple[int | None, int | None], ...]


@dataclass(frozen=True, slots=True)
class _All:
    pass


_Step = _Key | _Keys | _Index | _Select | _All


class _PathMiss(Exception):
    pass


class _JsonPath:
    """A compiled path of SageMaker's JSONPath subset; calling it selects from a parsed record."""

    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        if len(text) > 63:
            raise InvalidBatchConfig(f"{field} {text!r} is {len(text)} characters; SageMaker allows at most 63")
        self.steps = self._parse()
        self.identity = not self.steps
        #: CSV rows are flat arrays of strings: one index step at most.
        self.csv_ok = len(self.steps) <= 1 and all(isinstance(s, _Index | _Select | _All) for s in self.steps)

    def _bad(self, why: str) -> InvalidBatchConfig:
        return InvalidBatchConfig(f"{self.field} {self.text!r} is not a supported JSONPath: {why}; use {_DOC_PATHS}")

    def _parse(self) -> tuple[_Step, ...]:
        text = self.text
        if not text.startswith("$"):
            raise self._bad("it must start with '$'")
        steps: list[_Step] = []
        i = 1
        while i < len(text):
            if text.startswith("..", i):
                raise self._bad("recursive descent '..' is not supported")
            if text.startswith(".[", i):
                i += 1  # "$.field1.['child1','child2']" is documented as valid
            elif text.startswith(".*", i):
                steps.append(_All())
                i += 2
                continue
            elif text[i] == "." and (m := _NAME_RE.match(text, i + 1)):
                steps.append(_Key(m.group()))
                i = m.end()
                continue
            if text[i] != "[":
                raise self._bad(f"unexpected {text[i]!r} at position {i}")
            end = text.find("]", i)
            if end < 0:
                raise self._bad(f"'[' at position {i} is never closed")
            steps.append(self._bracket(text[i + 1 : end]))
            i = end + 1
        return tuple(steps)

    def _bracket(self, inner: str) -> _Step:
        items = [item.strip() for item in inner.split(",")]
        if items == ["*"]:
            return _All()
        quoted = [len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"" for s in items]
        if all(quoted):
            names = tuple(s[1:-1] for s in items)
            if any("." in name or "[" in name for name in names):
                raise self._bad("nested children inside brackets are not supported")
            return _Key(names[0]) if len(names) == 1 else _Keys(names)
        if any(quoted):
            raise self._bad("names and indexes cannot be mixed in one bracket")
        selected: list[int | tuple[int | None, int | None]] = []
        for item in items:
            if _INT_RE.fullmatch(item):
                selected.append(int(item))
            elif m := _SLICE_RE.fullmatch(item):
                start, end = m.groups()
                selected.append((None if start is None else int(start), None if end is None else int(end)))
            else:
                raise self._bad(f"[{inner}] is not an index, index list or [start:end] slice")
        if len(selected) == 1 and isinstance(selected[0], int):
            return _Index(selected[0])
        return _Select(tuple(selected))

    def __call__(self, doc: object) -> object:
        try:
            return _select(doc, self.steps)
        except _PathMiss as exc:
            raise MalformedRecord(f"{self.field} {self.text!r} does not fit the record: {exc}") from None


def _select(node: object, steps: tuple[_Step, ...]) -> object:
    if not steps:
        return node
    step, rest = steps[0], steps[1:]
    if isinstance(step, _Key):
        return _select(_key(node, step.name), rest)
    if isinstance(step, _Keys):
        return {name: _select(_key(node, name), rest) for name in step.names}
    if isinstance(step, _Index):
        return _select(_item(node, step.index), rest)
    if isinstance(step, _Select):
        out: list[object] = []
        for sel in step.items:
            if isinstance(sel, int):
                out.append(_select(_item(node, sel), rest))
            else:
                out.extend(_select(child, rest) for child in _array(node)[sel[0] : sel[1]])
        return out
    if isinstance(node, dict):
        return {name: _select(child, rest) for name, child in node.items()}
    return [_select(child, rest) for child in _array(node)]


def _array(node: object) -> list[object]:
    if not isinstance(node, list):
        raise _PathMiss(f"an array is needed, found {type(node).__name__}")
    return node


def _key(node: object, name: str) -> object:
    if not isinstance(node, dict):
        raise _PathMiss(f"key {name!r} needs an object, found {type(node).__name__}")
    if name not in node:
        raise _PathMiss(f"the object has no key {name!r}")
    return cast(object, node[name])


def _item(node: object, index: int) -> object:
    array = _array(node)
    if not -len(array) <= index < len(array):
        raise _PathMiss(f"index {index} is out of range for an array of {len(array)} elements")
    return array[index]


# ---- DataProcessing: filters and join ----------------------------------------------------------------------

_FORMATS: Final = {"text/csv": "csv", "application/json": "json", "application/jsonlines": "jsonl"}
_DP_KEYS: Final = ("InputFilter", "JoinSource", "OutputFilter")


def _format_of(content_type: str | None) -> str | None:
    return None if content_type is None else _FORMATS.get(content_type.split(";", 1)[0].strip().lower())


class DataProcessor:
    """Apply a transform job's ``DataProcessing`` outside the container, like SageMaker does.

    The container only sees ``filter_input(record)``; ``process_output`` joins each response record with its
    original input (``JoinSource=Input``) and applies ``OutputFilter``. ``active`` is False for the defaults,
    in which case callers should skip both calls.

    Raises:
        InvalidBatchConfig: bad JSONPath, unsupported content type, or an invalid join setup.
    """

    def __init__(
        self,
        spec: Mapping[str, str | None] | None,
        content_type: str | None,
        accept: str | None,
        *,
        split_type: str = "None",
        assemble_with: str | None = "None",
    ) -> None:
        spec = dict(spec or {})
        if unknown := sorted(set(spec) - set(_DP_KEYS)):
            raise InvalidBatchConfig(f"DataProcessing has unknown keys {unknown}; valid keys are {list(_DP_KEYS)}")
        join_source = spec.get("JoinSource") or "None"
        if join_source not in ("None", "Input"):
            raise InvalidBatchConfig(f"DataProcessing.JoinSource {join_source!r} is invalid; use 'None' or 'Input'")
        self.join = join_source == "Input"
        self._in = _JsonPath(spec.get("InputFilter") or "$", "InputFilter")
        self._out = _JsonPath(spec.get("OutputFilter") or "$", "OutputFilter")
        self.active = self.join or not (self._in.identity and self._out.identity)
        self._in_fmt = _format_of(content_type)
        self._out_fmt = _format_of(accept or content_type)
        if self.active:
            self._validate(content_type, accept or content_type, split_type, assemble_with)

    def _validate(self, content_type: str | None, accept: str | None, split_type: str, assemble: str | None) -> None:
        supported = ", ".join(_FORMATS)
        if split_type not in ("None", "Line"):
            raise InvalidBatchConfig(
                f"DataProcessing works on {supported} text; it cannot be used with SplitType={split_type}"
            )
        if (self.join or not self._in.identity) and self._in_fmt is None:
            raise InvalidBatchConfig(
                f"DataProcessing needs TransformInput.ContentType to be one of {supported}, got {content_type!r}"
            )
        if (self.join or not self._out.identity) and self._out_fmt is None:
            raise InvalidBatchConfig(
                f"DataProcessing needs TransformOutput.Accept to be one of {supported}, got {accept!r}"
            )
        if self.join and self._in_fmt != self._out_fmt:
            raise InvalidBatchConfig(
                f"JoinSource=Input needs TransformOutput.Accept ({accept!r}) to match ContentType ({content_type!r})"
            )
        if self.join and self._in_fmt == "csv" and (split_type != "Line" or assemble != "Line"):
            raise InvalidBatchConfig(
                "JoinSource=Input with text/csv needs SplitType=Line and AssembleWith=Line, "
                f"got SplitType={split_type} and AssembleWith={assemble}"
            )
        for path, fmt in ((self._in, self._in_fmt), (self._out, self._out_fmt)):
            if fmt == "csv" and not path.csv_ok:
                raise InvalidBatchConfig(
                    f"{path.field} {path.text!r} cannot apply to text/csv: CSV rows are arrays, "
                    "so use one index step such as $[0], $[1:] or $[0,-1]"
                )

    def filter_input(self, record: bytes) -> bytes:
        """Return what the container receives for one input record (``InputFilter`` applied)."""
        if self._in.identity:
            return record
        text = _decode(record, "input record", "utf-8-sig")
        if self._in_fmt == "json":
            return _dump(self._in(_load(text, "input record"))).encode()
        fmt = self._in_fmt
        return _map_lines(text, lambda line: self._format(self._in(_parse_line(line, fmt, "input")), fmt)).encode()

    def process_output(self, records: Sequence[bytes], response: bytes, *, first_record: int = 1) -> list[bytes]:
        """Turn one response into output records: join with ``records`` (the originals), then ``OutputFilter``.

        Joined CSV and JSON Lines outputs end with a newline, so AssembleWith None and Line agree; without a
        join, a filtered response keeps its own line structure.

        Raises:
            ResponseMismatch: the response does not hold one result per record (JoinSource=Input).
            MalformedRecord: a record or the response does not parse, or OutputFilter does not fit it.
        """
        if not self.join:
            if self._out.identity:
                return [response]
            return [self._filter_output(_decode(response, "response"))]
        fmt = self._out_fmt
        inputs = [_decode(r, "input record", "utf-8-sig") for r in records]
        text = _decode(response, "response")
        if fmt == "json":
            docs = [_load(inp, "input record") for inp in inputs]
            values = self._response_docs(text, len(docs), first_record)
            return [_dump(self._out(_join_json(doc, value))).encode() for doc, value in zip(docs, values, strict=True)]
        # CSV and JSON Lines: one result line per input line, even for a SplitType=None object
        inputs = [line for text_ in inputs for line in _lines(text_) if line]
        results = self._response_lines(text, len(inputs), first_record)
        out: list[bytes] = []
        for inp, result in zip(inputs, results, strict=True):
            if fmt == "csv":
                row = _parse_csv(inp) + _parse_csv(result)
                out.append((self._format(self._out(row), "csv") + "\n").encode())
            else:
                doc = _join_json(_load(inp, "input record"), _load(result, "response"))
                out.append((_dump(self._out(doc)) + "\n").encode())
        return out

    def _filter_output(self, text: str) -> bytes:
        fmt = self._out_fmt
        if fmt == "json":
            try:
                doc = json.loads(text)
            except ValueError:  # several documents, one per line (MultiRecord)
                return _map_lines(text, lambda line: _dump(self._out(_load(line, "response")))).encode()
            return _dump(self._out(doc)).encode()
        return _map_lines(text, lambda line: self._format(self._out(_parse_line(line, fmt, "response")), fmt)).encode()

    def _response_lines(self, text: str, n: int, first: int) -> list[str]:
        lines = _lines(text)
        if lines and not lines[-1]:
            lines.pop()
        if len(lines) != n:
            raise ResponseMismatch(
                f"the response for {_span(first, n)} has {len(lines)} lines for {n} input lines; with "
                "JoinSource=Input the container must return exactly one line per record, in order"
            )
        return lines

    def _response_docs(self, text: str, n: int, first: int) -> list[object]:
        if n == 1:
            return [_load(text, "response")]
        lines = [line for line in _lines(text) if line.strip()]
        if len(lines) == n:
            return [_load(line, "response") for line in lines]
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, list) and len(doc) == n:
            return cast(list[object], doc)
        raise ResponseMismatch(
            f"the response for {_span(first, n)} is neither {n} JSON documents, one per line, nor a JSON array "
            f"of {n} items; with JoinSource=Input the container must return one result per record, in order"
        )

    @staticmethod
    def _format(value: object, fmt: str | None) -> str:
        if fmt != "csv":
            return _dump(value)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(value if isinstance(value, list) else [value])
        return buf.getvalue()


def _span(first: int, n: int) -> str:
    return f"records {first}-{first + n - 1}" if n > 1 else f"record {first}"


def _join_json(doc: object, value: object) -> object:
    if not isinstance(doc, dict):
        return {"SageMakerInput": doc, "SageMakerOutput": value}
    if "SageMakerOutput" in doc:
        raise MalformedRecord(
            "an input object already has the key 'SageMakerOutput', which JoinSource=Input reserves for the "
            "result; rename that key in the input"
        )
    doc["SageMakerOutput"] = value
    return doc


def _parse_csv(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _parse_line(line: str, fmt: str | None, what: str) -> object:
    return _parse_csv(line) if fmt == "csv" else _load(line, what)


def _lines(text: str) -> list[str]:
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _map_lines(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to each non-empty line, keeping a final newline if there was one."""
    out = "\n".join(fn(line) for line in _lines(text) if line)
    return out + "\n" if text.endswith("\n") and out else out


def _decode(data: bytes, what: str, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise MalformedRecord(f"the {what} is not UTF-8 text ({exc}); DataProcessing needs CSV or JSON text") from exc


def _load(text: str, what: str) -> object:
    try:
        return cast(object, json.loads(text))
    except ValueError as exc:
        raise MalformedRecord(f"the {what} is not valid JSON ({exc}): {text[:80]!r}") from exc


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
