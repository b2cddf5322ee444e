"""What an image holds before it runs: read from a created, never started, container."""

from __future__ import annotations

import logging

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
