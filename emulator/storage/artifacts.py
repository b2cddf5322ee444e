"""Model and output artifacts: tar streams from containers to model.tar.gz, and back into a model dir.

Files come out of containers through Docker's archive API (``get_archive``), so nothing a container writes
ever lands on the host as root-owned files; the emulator writes every host file itself. Where those files would be
root's anyway (this process root, a local engine: :class:`BoundDir`), outputs are read from their bind mounts.
"""

from __future__ import annotations

import copy
import io
import itertools
import logging
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

from emulator.errors import InputNotFound, InvalidSpec
from emulator.storage.s3 import S3, is_s3

logger = logging.getLogger(__name__)


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (Docker's archive stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class SpooledArchive:
    """One ``get_archive`` stream of a directory, kept in a file, served as the streams of the paths below it.

    One archive call instead of one per path: Docker Engine runs a helper process per archive call (~40 ms
    whatever the size), so a job's model and output are read with one call of /opt/ml when it is small.
    """

    def __init__(self, root: str, path: Path) -> None:
        self.root = root.rstrip("/")
        self._top = self.root.rsplit("/", 1)[-1]
        # An empty file: the path does not exist in the container (get_archive's NotFound).
        self._tf = tarfile.open(path, "r:") if path.stat().st_size else None  # noqa: SIM115 (closed by close())
        self._members = self._tf.getmembers() if self._tf is not None else []

    @classmethod
    def fetch(cls, stream: Iterable[bytes], root: str, target: Path, max_bytes: int) -> SpooledArchive | None:
        """Write ``stream`` (of ``root``) to ``target``; None, and nothing kept, once it is over ``max_bytes``."""
        size = 0
        with open(target, "wb") as out:
            for chunk in stream:
                size += len(chunk)
                if size > max_bytes:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
                    break
                out.write(chunk)
        if size > max_bytes:
            target.unlink()
            return None
        return cls(root, target)

    def covers(self, path: str) -> bool:
        """True when ``path`` is ``root`` or below it."""
        return path == self.root or path.startswith(self.root + "/")

    def slice(self, path: str) -> ArchiveSlice:
        """What ``get_archive(path)`` would have given, for a ``path`` the archive covers."""
        rel = path[len(self.root) :].strip("/")
        prefix = f"{self._top}/{rel}" if rel else self._top
        return ArchiveSlice(self._tf, self._members, prefix, prefix.rsplit("/", 1)[-1])

    def close(self) -> None:
        if self._tf is not None:
            self._tf.close()


class BoundDir:
    """A dir a container wrote into through a bind mount, served as the ``get_archive`` streams below ``root``.

    The job's outputs read from the host, with no archive call (Docker Engine runs a helper process per call);
    only where the runner bound them, i.e. where what a container writes may be read and removed by this process
    (``DockerSeam.binds_in_place``).
    """

    def __init__(self, root: str, source: Path) -> None:
        self.root = root.rstrip("/")
        self.source = source

    def covers(self, path: str) -> bool:
        """True when ``path`` is ``root`` or below it."""
        return path == self.root or path.startswith(self.root + "/")

    def slice(self, path: str) -> Iterator[bytes]:
        """What ``get_archive(path)`` would have given: ``path``'s entries under its own name, symlinks as links."""
        rel = path[len(self.root) :].strip("/")
        return _tar_stream(self.source / rel if rel else self.source, posixpath.basename(path.rstrip("/")))


def _tar_stream(source: Path, name: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """A tar of ``source`` (a dir, a file or a link) named ``name``; nothing when it does not exist (NotFound)."""
    if not source.is_symlink() and not source.exists():
        return
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        with tarfile.open(fileobj=spool, mode="w") as tf:
            tf.add(source, arcname=name)
        spool.seek(0)
        while chunk := spool.read(chunk_size):
            yield chunk


class ArchiveSlice:
    """The entries of a :class:`SpooledArchive` under one path, named as ``get_archive`` of that path names them."""

    def __init__(self, tf: tarfile.TarFile | None, members: list[tarfile.TarInfo], prefix: str, name: str) -> None:
        self._tf, self._members, self._prefix, self._name = tf, members, prefix, name

    def members(self) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
        """The entries, renamed (copies: the archive's own are left as they are)."""
        cut = len(self._prefix)
        for member in self._members:
            if member.name == self._prefix or member.name.startswith(self._prefix + "/"):
                renamed = copy.copy(member)
                renamed.name = self._name + member.name[cut:]
                yield renamed, cast(tarfile.TarFile, self._tf)  # members come from it

    def __iter__(self) -> Iterator[bytes]:
        """The slice as tar bytes, like a ``get_archive`` stream (``iter_members`` reads the entries directly)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as out:
            for member, tf in self.members():
                out.addfile(member, tf.extractfile(member) if member.isfile() else None)
        yield buf.getvalue()


def iter_members(stream: Iterable[bytes]) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Walk a tar stream from ``get_archive`` (its top-level entry is the directory that was asked for)."""
    if isinstance(stream, ArchiveSlice):
        yield from stream.members()
        return
    chunks = iter(stream)
    first = next((chunk for chunk in chunks if chunk), None)
    if first is None:
        return  # an empty stream: get_archive of a path that does not exist (e.g. no failure file)
    reader = _ChunkReader(itertools.chain([first], chunks))
    with tarfile.open(fileobj=io.BufferedReader(reader, 1 << 20), mode="r|") as tf:
        for member in tf:
            yield member, tf


def repack(streams: Iterable[Iterable[bytes]], target: Path, *, compress: bool = True) -> int:
    """Merge container tar streams of one directory (one per host) into ``target`` with entries at its root.

    Returns the number of regular files written. Later hosts' files of the same name win, as in the
    platform's merge of all hosts' /opt/ml/model.
    """
    count = 0
    seen: set[str] = set()
    with tarfile.open(target, "w:gz", compresslevel=6) if compress else tarfile.open(target, "w") as out:
        for stream in streams:
            for member, tf in iter_members(stream):
                name = member.name.split("/", 1)[1] if "/" in member.name else ""
                if not name:
                    continue  # the top-level directory itself
                member.name = name
                member.uid = member.gid = 0
                member.uname = member.gname = "root"
                # No setuid/setgid/sticky bits and nothing world-writable in an archive others will extract.
                member.mode &= ~(stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWOTH)
                if member.issym() and not _inside(name, member.linkname):
                    logger.warning(
                        "artifact %s: dropped the symlink to %s, which points outside the archive",
                        name,
                        member.linkname,
                    )
                    continue
                if member.isfile():
                    if name in seen:
                        logger.warning("artifact %s written by more than one host; the last one wins", name)
                    seen.add(name)
                    out.addfile(member, tf.extractfile(member))
                    count += 1
                elif member.isdir() or member.issym():
                    out.addfile(member)
    return count


def _inside(name: str, target: str) -> bool:
    """True when a symlink at ``name`` (relative to the archive root) to ``target`` stays inside the archive.

    >>> _inside("a/b", "../c"), _inside("a/b", "../../etc/shadow"), _inside("a", "/etc/shadow")
    (True, False, False)
    """
    if posixpath.isabs(target):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return resolved != ".." and not resolved.startswith("../")


def list_files(stream: Iterable[bytes], path: str) -> list[str]:
    """The absolute paths of the non-directory entries in a ``get_archive`` stream of ``path``, sorted.

    Names only: file contents are skipped, not kept.
    """
    parent = path.rstrip("/").rsplit("/", 1)[0]
    return sorted(f"{parent}/{member.name}" for member, _ in iter_members(stream) if not member.isdir())


def read_file(stream: Iterable[bytes], limit: int | None = None) -> bytes | None:
    """The content of the single file in a ``get_archive`` stream of a file path (None if there is none)."""
    for member, tf in iter_members(stream):
        if member.isfile():
            f = tf.extractfile(member)
            return None if f is None else (f.read(limit) if limit is not None else f.read())
    return None


def extract_model(source: str, dest: Path, s3: S3 | None = None) -> Path:
    """Populate a model dir from a model.tar.gz (local or s3://), or use a local directory as it is.

    Like the platform, the archive is extracted before the container starts; the user's files are never
    touched (a local tarball is read, not unpacked next to itself).
    """
    if not source:
        dest.mkdir(parents=True, exist_ok=True)
        return dest
    if is_s3(source):
        if s3 is None:
            raise InvalidSpec(f"model {source} is on S3 but no S3 endpoint is configured")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Beside dest (inside the caller's work folder), so that a killed process leaves one folder to sweep.
        with tempfile.TemporaryDirectory(prefix="download-", dir=dest.parent) as tmp:
            local = Path(tmp) / "model.tar.gz"
            s3.download_file(source, local)
            return _extract_tar(local, dest, source)
    path = Path(source.removeprefix("file://")).expanduser()
    if path.is_dir():
        return path
    if not path.exists():
        raise InputNotFound(f"model {source!r} does not exist; pass a model.tar.gz, a model directory or an s3:// URI")
    return _extract_tar(path, dest, source)


def _extract_tar(archive: Path, dest: Path, shown: str) -> Path:
    made = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tf:
            tf.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        if made:
            shutil.rmtree(dest, ignore_errors=True)
        reason = " ".join(str(exc).split())[:200]  # tarfile's ReadError lists every method on its own line
        raise InvalidSpec(
            f"model {shown!r} is not a readable .tar.gz ({reason}); pass the archive a training job wrote"
        ) from None
    return dest


def export(local_file: Path, destination: str, s3: S3 | None) -> str:
    """Put a finished artifact at its destination (local path or s3:// URI); returns the destination."""
    if is_s3(destination):
        if s3 is None:
            raise InvalidSpec(f"{destination} is on S3 but no S3 endpoint is configured")
        s3.upload_file(local_file, destination)
    else:
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(local_file), target)
    return destination


def list_tree(stream: Iterable[bytes], path: str) -> dict[str, str]:
    """Every entry of a ``get_archive`` stream of ``path``: absolute path -> ``file``, ``dir`` or ``symlink -> X``."""
    parent = path.rstrip("/").rsplit("/", 1)[0]
    out: dict[str, str] = {}
    for member, _ in iter_members(stream):
        name = f"{parent}/{member.name}".rstrip("/")
        if member.issym() or member.islnk():
            out[name] = f"symlink -> {member.linkname}"
        elif member.isdir():
            out[name] = "dir"
        else:
            out[name] = "file"
    return out


def extract_files(streams: Iterable[Iterable[bytes]], target: Path) -> int:
    """Write the regular files of container tar streams of one directory (one per host) under ``target``.

    Symlinks are not followed, as on the platform; a later host's file of the same name wins. Returns the count.
    """
    count = 0
    target.mkdir(parents=True, exist_ok=True)
    for stream in streams:
        for member, tf in iter_members(stream):
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            if rel and member.isfile():
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                with open(dest, "wb") as fh:
                    if src is not None:
                        shutil.copyfileobj(src, fh)
                count += 1
    return count
