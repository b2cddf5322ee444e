"""Input data (training channels, processing inputs): a local path or an s3:// location, staged for File mode.

Local data is bind-mounted read-only (the user's files can never be changed through the channel);
S3 data is downloaded into the job's work dir first. ``ShardedByS3Key`` gives host i every n-th object
of the sorted key list (round-robin; the platform's exact assignment is unverified).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

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
) -> list[list[tuple[str, str]]]:
    """For each host, the read-only (host path, container path) mounts that put ``uri``'s data at ``target``.

    A local directory or file is mounted as it is (a file appears inside ``target``); S3 objects, manifests
    and shards are placed into per-host dirs under ``work`` first.
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
        if not sharded or hosts == 1:
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
