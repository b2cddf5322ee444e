"""Batch transform ``DataProcessing``: InputFilter, JoinSource and OutputFilter, applied outside the container.

The JSONPath subset SageMaker documents ($, .name, .*, [*], ['a','b'], [n], [n,m], [start:end]) is parsed
here; CSV rows are JSON arrays of their field texts. Decisions where the documentation is silent are in
the docstring of :mod:`emulator.transform.records`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, cast

from emulator.transform.records import InvalidBatchConfig, MalformedRecord, ResponseMismatch

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
        #: The input is read record by record (InputFilter, or JoinSource=Input keeps the originals).
        self.per_record = self.join or not self._in.identity
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
