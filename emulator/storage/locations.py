"""The one place that tells a local path from an s3:// URI when artifacts go out or seed files come in.

A *location* is a local path (``file://`` allowed, ``~`` expanded) or an ``s3://bucket/key`` URI. Jobs name
locations; :class:`Storage` puts files and trees there and reads trees back, so job code has no ``is_s3``
branches of its own. (Our own seam rather than fsspec: we need four operations, S3 must be the session's one
moto server or endpoint, and local writes must never follow into the user's other files.)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from emulator.storage.s3 import S3, is_s3, join_uri, split_s3


def absolute(location: str) -> str:
    """Local locations as absolute paths (results stay valid from any directory); S3 URIs as they are.

    >>> absolute("s3://bucket/out")
    's3://bucket/out'
    """
    return location if is_s3(location) else str(Path(location.removeprefix("file://")).expanduser().resolve())


class Storage:
    """Puts artifacts at locations and reads seed trees from them; S3 through the session's :class:`S3`."""

    def __init__(self, s3: Callable[[], S3]) -> None:
        self._s3 = s3

    def put_file(self, local_file: Path, destination: str) -> str:
        """Move (local) or upload (S3) a finished file to ``destination``; returns the destination."""
        if is_s3(destination):
            self._s3().upload_file(local_file, destination)
        else:
            target = Path(destination.removeprefix("file://")).expanduser()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(local_file), target)
        return destination

    def put_tree(self, directory: Path, destination: str) -> None:
        """Copy every file under ``directory`` to ``destination`` (a prefix or a local directory)."""
        if is_s3(destination):
            self._s3().upload_dir(directory, destination)
        else:
            target = Path(destination.removeprefix("file://")).expanduser()
            target.mkdir(parents=True, exist_ok=True)
            shutil.copytree(directory, target, dirs_exist_ok=True)

    def read_tree(self, location: str) -> dict[str, bytes]:
        """Every file under ``location``: relative path -> content (empty when nothing is there)."""
        files: dict[str, bytes] = {}
        if is_s3(location):
            s3 = self._s3()
            bucket, prefix = split_s3(location)
            for key, _ in s3.list_keys(location):
                rel = key[len(prefix) :].lstrip("/")
                if rel:
                    files[rel] = s3.read_bytes(f"s3://{bucket}/{key}")
            return files
        root = Path(location.removeprefix("file://")).expanduser()
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                files[path.relative_to(root).as_posix()] = path.read_bytes()
        return files


__all__ = ["Storage", "absolute", "is_s3", "join_uri"]
