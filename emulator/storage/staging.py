"""Input data (training channels, processing inputs): a local path or an s3:// location, staged for File mode.

Local data is bind-mounted read-only (the user's files can never be changed through the channel);
S3 data is downloaded into the job's work dir first. ``ShardedByS3Key`` gives host i every n-th object
of the sorted key list (round-robin; the platform's exact assignment is unverified).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from emulator.constants import RECORDIO_MAGIC
from emulator.errors import InputNotFound, InvalidSpec
from emulator.storage.s3 import S3, is_s3, split_s3


def stage_data(
    uri: str,
    target: str,
    work: Path,
    s3: S3,
    hosts: int,
    *,
    what: str,
    data_type: str = "S3Prefix",
    sharded: bool = False,
    gunzip: bool = False,
    dir_read_only: bool = False,
) -> list[list[tuple[str, str]]]:
    """For each host, the read-only (host path, container path) mounts that put ``uri``'s data at ``target``.

    A local directory or file is mounted as it is (a file appears inside ``target``); S3 objects, manifests,
    shards and (``gunzip``) gzip-compressed objects are placed into per-host dirs under ``work`` first, the
    latter decompressed and without their ``.gz`` suffix. ``dir_read_only`` (FastFile): a single local file is
    linked into a staged dir too, so that the whole channel dir is the read-only mount.
    """
    if data_type == "ManifestFile":
        files = _manifest_files(uri, s3, what)
    elif is_s3(uri):
        bucket, prefix = split_s3(uri)
        files = [(f"s3://{bucket}/{k}", _rel(k, prefix)) for k, _ in s3.list_keys(uri) if not k.endswith("/")]
        if not files:
            raise InputNotFound(f"{what}: no objects under {uri}; upload the data or fix the S3Uri")
    else:
        path = Path(uri.removeprefix("file://")).expanduser().resolve()
        if not path.exists():
            raise InputNotFound(f"{what}: local path {uri!r} does not exist; fix the path or create it")
        if (not sharded or hosts == 1) and not gunzip and not (dir_read_only and path.is_file()):
            mount = (str(path), target if path.is_dir() else f"{target}/{path.name}")
            return [[mount] for _ in range(hosts)]
        files = (
            [(str(p), p.relative_to(path).as_posix()) for p in sorted(path.rglob("*")) if p.is_file()]
            if path.is_dir()
            else [(str(path), path.name)]
        )

    per_host: list[list[tuple[str, str]]] = []
    for i in range(hosts if sharded else 1):
        host_dir = work / f"host-{i}"
        host_dir.mkdir(parents=True, exist_ok=True)
        for source, rel in files[i::hosts] if sharded else files:
            if gunzip:
                _place_gunzipped(source, host_dir / rel.removesuffix(".gz"), s3, what)
            else:
                _place(source, host_dir / rel, s3)
        per_host.append([(str(host_dir), target)])
    if not sharded:  # every host sees the same copy
        per_host *= hosts
    return per_host


def _rel(key: str, prefix: str) -> str:
    return key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]


def _place(source: str, target: Path, s3: S3) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_s3(source):
        s3.download_file(source, target)
        return
    try:
        os.link(source, target)  # cheap and read-only mounted anyway
    except OSError:
        shutil.copy2(source, target)


def _place_gunzipped(source: str, target: Path, s3: S3, what: str) -> None:
    packed = target.with_name(target.name + ".gz-download")
    _place(source, packed, s3)
    try:
        with gzip.open(packed) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    except (OSError, EOFError):
        raise InvalidSpec(f"{what}: {source} is not gzip data; fix CompressionType (Gzip) or the object") from None
    finally:
        packed.unlink(missing_ok=True)


def staged_files(per_host: Sequence[Sequence[tuple[str, str]]]) -> list[list[Path]]:
    """For each host, the files its staged mounts hold, in the order a Pipe channel streams them (sorted paths)."""
    out: list[list[Path]] = []
    for mounts in per_host:
        files: list[Path] = []
        for source, _ in mounts:
            path = Path(source)
            files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        out.append(files)
    return out


def recordio(record: bytes) -> bytes:
    """One record in MXNet RecordIO framing: magic, length (flag 0: a whole record), data padded to 4 bytes."""
    pad = -len(record) % 4
    return struct.pack("<II", RECORDIO_MAGIC, len(record)) + record + b"\0" * pad


def epoch_stream(files: Iterable[Path], *, gunzip: bool, record_io: bool) -> Iterator[bytes]:
    """The bytes of one Pipe-mode epoch: each file (decompressed with ``gunzip``) as it is, or as one RecordIO
    record each."""
    for path in files:
        if record_io:
            yield recordio(gzip.decompress(path.read_bytes()) if gunzip else path.read_bytes())
            continue
        with gzip.open(path) if gunzip else path.open("rb") as src:
            while chunk := src.read(1024 * 1024):
                yield chunk


def stage_augmented_manifest(
    uri: str, work: Path, s3: S3, hosts: int, attributes: Sequence[str], *, what: str, sharded: bool = False
) -> list[list[Path]]:
    """An AugmentedManifestFile: JSON lines; per line, each of ``attributes`` is one record, in that order.

    An attribute whose name ends in ``-ref`` names an object (s3:// or a local path): its bytes are the record;
    any other attribute's record is its JSON value. Each record is written to a file under ``work``; with
    ``sharded``, host i gets lines i, i+n, ... Returns each host's record files in stream order.
    """
    try:
        raw = s3.read_bytes(uri) if is_s3(uri) else Path(uri.removeprefix("file://")).expanduser().read_bytes()
    except FileNotFoundError:
        raise InputNotFound(f"{what}: augmented manifest {uri!r} does not exist; fix the path") from None
    lines = [line for line in raw.decode().splitlines() if line.strip()]
    per_host: list[list[Path]] = []
    for h in range(hosts if sharded else 1):
        host_dir = work / f"records-{h}"
        host_dir.mkdir(parents=True, exist_ok=True)
        records: list[Path] = []
        for n in range(h, len(lines), hosts) if sharded else range(len(lines)):
            try:
                doc = json.loads(lines[n])
                values = [doc[name] for name in attributes]
            except ValueError:
                raise InvalidSpec(f"{what}: augmented manifest line {n + 1} is not JSON; fix the manifest") from None
            except KeyError as exc:
                raise InvalidSpec(
                    f"{what}: augmented manifest line {n + 1} has no attribute {exc}; fix it or AttributeNames"
                ) from None
            for name, value in zip(attributes, values, strict=True):
                target = host_dir / f"{len(records):08d}"
                if name.endswith("-ref"):
                    _place(str(value), target, s3)
                else:
                    target.write_bytes(json.dumps(value).encode())
                records.append(target)
        per_host.append(records)
    return per_host * hosts if not sharded else per_host


def _manifest_files(uri: str, s3: S3, what: str) -> list[tuple[str, str]]:
    """A ManifestFile: ``[{"prefix": "s3://b/p/"}, "rel/1", "rel/2"]`` -> (source, relative path) pairs."""
    try:
        raw = s3.read_bytes(uri) if is_s3(uri) else Path(uri).read_bytes()
        doc = json.loads(raw)
        prefix = doc[0]["prefix"]
        rels = [str(r) for r in doc[1:]]
    except FileNotFoundError:
        raise InputNotFound(f"{what}: manifest {uri!r} does not exist; fix the path") from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise InvalidSpec(f'{what}: manifest {uri!r} must be [{{"prefix": "..."}}, "rel/path", ...]') from None
    return [(prefix.rstrip("/") + "/" + r if is_s3(prefix) else str(Path(prefix) / r), r) for r in rels]
