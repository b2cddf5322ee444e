"""The one place that tells a local path from an s3:// URI when artifacts go out or seed files come in.

A *location* is a local path (``file://`` allowed, ``~`` expanded) or an ``s3://bucket/key`` URI. Jobs name
locations; :class:`Storage` puts files and trees there and reads trees back, so job code has no ``is_s3``
branches of its own. (Our own seam rather than fsspec: we need four operations, S3 must be the session's one
moto server or endpoint, and local writes must never follow into the user's other files.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from emulator.errors import InputNotFound, InvalidSpec
from emulator.storage.s3 import S3, is_s3, join_uri, split_s3


def absolute(location: str) -> str:
    """Local locations as absolute paths (results stay valid from any directory); S3 URIs as they are.

    >>> absolute("s3://bucket/out")
    's3://bucket/out'
    """
    return location if is_s3(location) else str(Path(location.removeprefix("file://")).expanduser().resolve())


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The mode of every output file the emulator writes: what ``open()`` gives any file of the user (0644 under the
#: usual umask 022), whatever the temp file it was written to had (``mkstemp`` makes them 0600).
OUTPUT_FILE_MODE = 0o666 & ~_read_umask()


def local_path(location: str) -> Path:
    """The local path a location names (``file://`` removed, ``~`` expanded); not for S3 URIs."""
    return Path(location.removeprefix("file://")).expanduser()


def check_output(location: str, what: str, *, file: bool = False) -> None:
    """Refuse, before a job starts, a local output location that cannot be written.

    ``location`` is a directory the job fills (or, with ``file``, a file it writes). It may not exist yet, but
    then its nearest existing ancestor must be a directory the user may write; no part of the way may be a file.
    Nothing is created here. S3 locations are not checked (the endpoint answers for them).

    Raises:
        InvalidSpec: the location is a file (or a directory, for ``file``), lies under a file, or cannot be written.
    """
    if is_s3(location):
        return
    path = local_path(location).absolute()
    if file:
        if path.is_dir():
            raise InvalidSpec(f"{what}: {str(path)!r} is a directory, where a file is to be written; remove it")
        path = path.parent
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise InvalidSpec(f"{what}: {str(probe)!r} is a dangling symlink; remove it or pick another location")
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"lies under {str(probe)!r}, which is a file"
        raise InvalidSpec(f"{what}: {str(path)!r} {where}; name a directory (or a path that can be created)")
    if not os.access(probe, os.W_OK | os.X_OK):
        verb = "is" if probe == path else f"would be created in {str(probe)!r}, which is"
        raise InvalidSpec(
            f"{what}: {str(path)!r} {verb} not writable by this user; fix its permissions or pick another location"
        )


def check_readable(location: str, what: str, *, missing_ok: bool = False) -> None:
    """Refuse a local input the user cannot read (the engine reads bind mounts as root, so it must be checked here).

    A directory is walked: every directory in it must be readable and searchable, every file readable. With
    ``missing_ok`` a location that does not exist passes (a key prefix, checked by whoever lists it).

    Raises:
        InputNotFound: the location does not exist.
        InvalidSpec: the user may not read it (or something in it).
    """
    if is_s3(location):
        return
    path = local_path(location)
    if not path.exists():
        if missing_ok:
            return
        raise InputNotFound(f"{what}: local path {location!r} does not exist; fix the path or create it")
    denied: list[str] = []

    def check(p: Path, is_dir: bool) -> None:
        if not os.access(p, os.R_OK | (os.X_OK if is_dir else 0)):
            denied.append(str(p))

    if path.is_dir():
        check(path, True)
        if not denied:
            for root, dirs, files in os.walk(path, onerror=lambda exc: denied.append(str(exc.filename))):
                for d in dirs:
                    check(Path(root) / d, True)
                dirs[:] = [d for d in dirs if str(Path(root) / d) not in denied]
                for f in files:
                    if not (Path(root) / f).is_symlink() or (Path(root) / f).exists():
                        check(Path(root) / f, False)
                if denied:
                    break
    else:
        check(path, False)
    if denied:
        raise InvalidSpec(
            f"{what}: {denied[0]!r} is not readable by this user (the Docker engine would read it as root); "
            "fix its permissions (chmod/chown) or copy the data somewhere you can read"
        )


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

    def delete(self, location: str) -> None:
        """Delete one file (local) or object (S3); one that is not there is fine."""
        if is_s3(location):
            self._s3().delete(location)
        else:
            Path(location.removeprefix("file://")).expanduser().unlink(missing_ok=True)

    def read_tree(self, location: str) -> dict[str, bytes]:
        """Every file under ``location``: relative path -> content (empty when nothing is there)."""
        files: dict[str, bytes] = {}
        if is_s3(location):
            s3 = self._s3()
            # A directory's files: under "prefix/", never a neighbour's ("s3://b/ckpt" is not "s3://b/ckpt-2/").
            location = location.rstrip("/") + "/"
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


__all__ = [
    "OUTPUT_FILE_MODE",
    "Storage",
    "absolute",
    "check_output",
    "check_readable",
    "is_s3",
    "join_uri",
    "local_path",
]
