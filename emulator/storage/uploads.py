"""Local files as one tar stream, produced as it is sent: how inputs reach an engine that cannot see this machine.

A remote Docker engine (see :mod:`emulator.runtime.remote`) gets a job's channels, config files and model through
its archive API (``put_archive``); :func:`tar_stream` reads each file in chunks while the request body is sent,
so a 10 GB channel never sits in memory or in a second file on the client.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from emulator.errors import InputNotFound

_CHUNK = 1024 * 1024
_BLOCK = tarfile.BLOCKSIZE


def tar_stream(items: Iterable[tuple[str, str]]) -> Iterator[bytes]:
    """A tar archive of each ``(source, name)``: the file or the tree at ``source`` stored under ``name``.

    Entries are owned by root with the files' own permission bits (every entry readable by any user, as a bind
    mount of the staged dirs shows them); symlinks stay links; hard links become plain files. A file that cannot be
    read raises :class:`~emulator.errors.InputNotFound` (one line naming it) from the iteration.

    >>> import io, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "a.csv").write_text("1,2")
    ...     data = b"".join(tar_stream([(d, "stage/0")]))
    >>> sorted((m.name, m.size) for m in tarfile.open(fileobj=io.BytesIO(data)))
    [('stage/0', 0), ('stage/0/a.csv', 3)]
    """
    for source, name in items:
        root = Path(source)
        yield from _entry(root, name.strip("/"))
        if root.is_dir() and not root.is_symlink():
            for base, dirs, files in os.walk(root):
                dirs.sort()
                rel = Path(base).relative_to(root)
                for child in [*sorted(dirs), *sorted(files)]:
                    yield from _entry(Path(base) / child, (Path(name.strip("/")) / rel / child).as_posix())
    yield b"\0" * (2 * _BLOCK)


def _entry(path: Path, name: str) -> Iterator[bytes]:
    try:
        yield from _entry_of(path, name)
    except OSError as exc:
        raise InputNotFound(
            f"cannot read {path} to send it to the Docker engine ({exc.strerror or exc}); fix its permissions, or "
            "leave it out of the input"
        ) from None


def _entry_of(path: Path, name: str) -> Iterator[bytes]:
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode) | 0o444
    info.uname = info.gname = "root"
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, info.mode | 0o111
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    else:
        return  # sockets, FIFOs, devices: nothing a channel holds
    yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if info.type != tarfile.REGTYPE:
        return
    left = info.size
    with path.open("rb") as src:
        while left > 0:
            chunk = src.read(min(_CHUNK, left))
            if not chunk:  # the file shrank while it was sent: its announced size is kept
                yield b"\0" * left
                break
            left -= len(chunk)
            yield chunk
    if info.size % _BLOCK:
        yield b"\0" * (_BLOCK - info.size % _BLOCK)
