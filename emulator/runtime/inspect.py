"""What an image holds before it runs: read from a created, never started, container."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from emulator.runtime.container import Container
from emulator.runtime.docker import ContainerSpec
from emulator.runtime.session import Session, job_name
from emulator.storage.artifacts import list_tree

logger = logging.getLogger(__name__)


def image_tree(image: str, path: str, *, session: Session | None = None) -> dict[str, str]:
    """Every entry the image itself has under ``path``: absolute path -> ``file``, ``dir`` or ``symlink -> X``.

    Nothing runs: the container is created, read and removed.

    Raises:
        ImageNotFound: the image is not there.
    """
    own = session is None
    s = session or Session()
    try:
        spec = ContainerSpec(image=image, command=["true"])
        with Container(s.docker, spec, kind="inspect", job=job_name("inspect"), source=image) as c:
            return list_tree(c.archive(path), path)
    finally:
        if own:
            s.close()


# -- what a running container listens on ---------------------------------------------------------------------
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column
_LOOPBACK_V6 = ("::1", "::ffff:127.")


@dataclass(frozen=True, order=True)
class Listener:
    """A listening TCP socket inside a container: its address (``0.0.0.0``, ``127.0.0.1``, ``::``) and port."""

    address: str
    port: int

    @property
    def loopback(self) -> bool:
        """Reachable from inside the container only (127.0.0.0/8, ::1)."""
        return self.address.startswith("127.") or self.address.startswith(_LOOPBACK_V6)

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # The kernel prints each 32-bit word in host byte order (little-endian on x86 and arm64).
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_proc_net_tcp(text: str) -> list[Listener]:
    """The listening sockets in the text of ``/proc/net/tcp`` and ``/proc/net/tcp6`` (header lines skipped).

    >>> parse_proc_net_tcp("  sl  local_address rem_address   st\\n   0: 0100007F:1F90 00000000:0000 0A 0")
    [Listener(address='127.0.0.1', port=8080)]
    >>> [str(x) for x in parse_proc_net_tcp("0: 00000000000000000000000000000000:1F90 0:0 0A")]
    ['[::]:8080']
    """
    found: set[Listener] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(":") or fields[3] != _LISTEN:
            continue
        try:
            hex_addr, hex_port = fields[1].split(":")
            found.add(Listener(_address(hex_addr), int(hex_port, 16)))
        except ValueError:
            continue
    return sorted(found)


def listening_sockets(container: Container) -> list[Listener] | None:
    """The TCP sockets a running container listens on, read from its ``/proc/net/tcp{,6}`` (``cat`` inside it).

    None when that cannot be read (the container is not running, or its image has no ``cat``).
    """
    out = container.exec_output(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    if out is None:
        # An image without IPv6 has no /proc/net/tcp6: cat reads the first file and fails on the second.
        out = container.exec_output(["cat", "/proc/net/tcp"])
    return None if out is None else parse_proc_net_tcp(out.decode("ascii", "replace"))
