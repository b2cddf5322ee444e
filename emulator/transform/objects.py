"""Batch transform's settings, input objects, output objects and progress display.

Inputs are local files/directories or s3:// prefixes (S3Prefix) or a manifest (ManifestFile), listed
recursively and sorted, and opened as streams (S3 objects are read as they are sent, never downloaded
first). Each output is written to a temp file and published (moved, or uploaded to S3) only once its whole
input object succeeded, as ``<S3OutputPath>/<path relative to the input prefix>.out``.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from emulator.errors import InputNotFound, InvalidSpec
from emulator.storage.locations import OUTPUT_FILE_MODE
from emulator.storage.s3 import S3, is_s3, join_uri, split_s3

logger = logging.getLogger(__name__)

_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class InputObject:
    """One input object: where it is, and its path relative to the input prefix (which names its output)."""

    location: str
    relative: str
    size: int | None = None


# -- listing ------------------------------------------------------------------------------------------------
def list_inputs(data_source: dict[str, Any], s3: Callable[[], S3]) -> list[InputObject]:
    """Every input object of ``TransformInput.DataSource``, sorted by key.

    Raises:
        InputNotFound: nothing is there.
        InvalidSpec: an unsupported S3DataType or a malformed manifest.
    """
    src = data_source["S3DataSource"]
    uri, kind = str(src["S3Uri"]), src.get("S3DataType", "S3Prefix")
    if kind == "ManifestFile":
        objects = _from_manifest(uri, s3)
    elif kind == "S3Prefix":
        objects = _s3_prefix(uri, s3()) if is_s3(uri) else _local_prefix(uri)
    else:
        raise InvalidSpec(
            f"TransformInput.DataSource.S3DataSource.S3DataType {kind} is not emulated; use S3Prefix or ManifestFile"
        )
    if not objects:
        raise InputNotFound(f"no input objects under {uri}; put the data there or fix TransformInput's S3Uri")
    return objects


def _relative(key: str, prefix: str) -> str:
    """A key relative to its prefix's "directory" (the part up to the last '/'), as S3 keys are."""
    base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return key[len(base) :] if key.startswith(base) else key.rsplit("/", 1)[-1]


def _s3_prefix(uri: str, s3: S3) -> list[InputObject]:
    bucket, prefix = split_s3(uri)
    return [
        InputObject(f"s3://{bucket}/{key}", _relative(key, prefix), size)
        for key, size in s3.list_keys(uri)
        if not key.endswith("/")
    ]


def _local_prefix(location: str) -> list[InputObject]:
    path = Path(location.removeprefix("file://")).expanduser()
    if path.is_file():
        return [InputObject(str(path), path.name, path.stat().st_size)]
    if path.is_dir():
        files = _walk(path)
        return [InputObject(str(f), f.relative_to(path).as_posix(), f.stat().st_size) for f in files]
    parent = path.parent  # a partial prefix such as data/part-
    if not parent.is_dir():
        return []
    return [
        InputObject(str(f), f.relative_to(parent).as_posix(), f.stat().st_size)
        for f in _walk(parent)
        if str(f).startswith(str(path))
    ]


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found.extend(Path(root) / name for name in files)
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def _from_manifest(uri: str, s3: Callable[[], S3]) -> list[InputObject]:
    try:
        text = s3().read_bytes(uri) if is_s3(uri) else Path(uri).expanduser().read_bytes()
        entries = json.loads(text)
    except FileNotFoundError:
        raise InputNotFound(f"manifest {uri} does not exist; fix TransformInput's S3Uri") from None
    except ValueError as exc:
        raise InvalidSpec(
            f'manifest {uri} is not JSON ({exc}); write [{{"prefix": "s3://b/p/"}}, "rel1", ...]'
        ) from None
    if not (
        isinstance(entries, list)
        and entries
        and isinstance(entries[0], dict)
        and "prefix" in entries[0]
        and all(isinstance(e, str) for e in entries[1:])
    ):
        raise InvalidSpec(f'manifest {uri} must be a JSON list: [{{"prefix": "s3://b/p/"}}, "rel1", ...]')
    prefix = str(entries[0]["prefix"])
    return [
        InputObject(join_uri(prefix, rel) if is_s3(prefix) else str(Path(prefix) / rel), rel.lstrip("/"))
        for rel in entries[1:]
    ]


# -- reading ------------------------------------------------------------------------------------------------
class _RawReader(io.RawIOBase):
    """A raw file over anything with ``read(n)`` (botocore's StreamingBody), for buffering and gzip."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._body.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


@contextmanager
def open_object(obj: InputObject, compression: str | None, s3: Callable[[], S3]) -> Iterator[BinaryIO]:
    """A stream of one input object's bytes, gunzipped on the fly for ``CompressionType=Gzip``."""
    base: BinaryIO
    if is_s3(obj.location):
        base = cast(BinaryIO, io.BufferedReader(_RawReader(s3().open_read(obj.location)), _BUFFER))
    else:
        try:
            base = open(obj.location, "rb", buffering=_BUFFER)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise InputNotFound(
                f"input {obj.location} does not exist (anymore); fix the manifest or the prefix"
            ) from None
    try:
        if compression == "Gzip":
            with gzip.GzipFile(fileobj=base, mode="rb") as gz:
                yield cast(BinaryIO, io.BufferedReader(cast(Any, gz), _BUFFER))
        else:
            yield base
    finally:
        base.close()


# -- writing ------------------------------------------------------------------------------------------------
class StagedOutput:
    """An output object written to a temp file, published only by :meth:`publish` (never half-written)."""

    def __init__(self, destination: str, work_dir: Path) -> None:
        self.destination = destination
        fd, name = tempfile.mkstemp(prefix="out-", suffix=".part", dir=work_dir)
        os.fchmod(fd, OUTPUT_FILE_MODE)  # mkstemp's 0600 would differ from training and processing outputs
        self.path = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb", buffering=_BUFFER)

    def publish(self, s3: Callable[[], S3]) -> None:
        """Move the finished file to its destination (upload it for s3://)."""
        self.file.close()
        try:
            if is_s3(self.destination):
                s3().upload_file(self.path, self.destination)
            else:
                target = Path(self.destination)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(self.path), target)
        finally:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Drop a failed file."""
        self.file.close()
        self.path.unlink(missing_ok=True)


def output_location(output_path: str, obj: InputObject) -> str:
    """``<S3OutputPath>/<relative input path>.out`` (no job-name folder, unlike SDK local mode)."""
    if is_s3(output_path):
        return join_uri(output_path, obj.relative + ".out")
    return str(Path(output_path.removeprefix("file://")).expanduser() / (obj.relative + ".out"))
