"""Build the deliberately broken images that prove the contract suite has teeth.

Each directory ``tests/broken_images/<check id>/`` holds a Dockerfile (``FROM ${SAMPLE_IMAGE}``, the
sample algorithm) and at most one small patch file, and breaks exactly the rule its check tests. The
Dockerfile's first line is a comment saying which rule it breaks and how. Uses the docker CLI (test
helpers never import ``docker``; that is ``emulator/docker_client.py``'s job).

>>> check_ids()[0]
'test_b31_execution_parameters_schema'
>>> image_name("test_t01_train_succeeds")
'sagemaker-emulator-broken/test_t01_train_succeeds:latest'
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import re
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAMPLE_DIR = REPO / "sample_algorithm"
SAMPLE_IMAGE = "sagemaker-emulator-sample:latest"
#: The label tests/integration/test_sample_image.py puts on the sample image; same hash, so neither rebuilds it.
SAMPLE_HASH_LABEL = "sagemaker-emulator.sample-hash"
IMAGE_PREFIX = "sagemaker-emulator-broken"
HASH_LABEL = "sagemaker-emulator.broken-hash"
CHECK_ID = re.compile(r"^test_[tsbp]\d{2}_\w+$")
BUILD_TIMEOUT_S = 600
SAMPLE_BUILD_TIMEOUT_S = 1800
_IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class ImageBuildError(RuntimeError):
    """Raised when the sample image or a broken image cannot be built."""


def check_ids() -> list[str]:
    """The check ids that have a broken image (a directory with a Dockerfile), sorted."""
    return sorted(p.parent.name for p in HERE.glob("*/Dockerfile") if CHECK_ID.match(p.parent.name))


def image_name(check_id: str) -> str:
    """The tag of the broken image for ``check_id``."""
    return f"{IMAGE_PREFIX}/{check_id}:latest"


def describe(check_id: str) -> str:
    """What the broken image does: the first comment line of its Dockerfile, without the ``#``."""
    for line in (HERE / check_id / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def _label(image: str, label: str) -> str | None:
    result = _docker("image", "inspect", "-f", f'{{{{ index .Config.Labels "{label}" }}}}', image)
    return result.stdout.strip() if result.returncode == 0 else None


def dir_hash(directory: Path, extra: str = "") -> str:
    """A hash of what goes into an image: relative paths, executable bits and contents (caches left out).

    The same function as tests/integration/test_sample_image.py's ``sample_dir_hash`` when ``extra`` is empty.
    """
    digest = hashlib.sha256(extra.encode())
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if not path.is_file() or _IGNORED.intersection(rel.parts) or path.suffix in (".pyc", ".pyo"):
            continue
        digest.update(f"{rel.as_posix()}\0{os.access(path, os.X_OK)}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _locked_build(tag: str, label: str, wanted: str, args: list[str], timeout: float) -> None:
    # Several pytest processes may build the same image at once: serialise, then look again.
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{tag.replace('/', '_').replace(':', '_')}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _label(tag, label) == wanted:
            return
        logger.info("building %s", tag)
        build = _docker("build", "--force-rm", "--label", f"{label}={wanted}", "-t", tag, *args, timeout=timeout)
        if build.returncode != 0:
            raise ImageBuildError(f"docker build of {tag} failed ({build.returncode}):\n{build.stdout}\n{build.stderr}")


@functools.cache
def _base_image() -> str:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure_base_image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise ImageBuildError(f"scripts/ensure_base_image.sh failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


def ensure_sample_image() -> str:
    """Build ``sagemaker-emulator-sample:latest`` from sample_algorithm/ unless it is up to date; return it.

    Raises:
        ImageBuildError: the base image cannot be made or the build fails.
    """
    wanted = dir_hash(SAMPLE_DIR)
    if _label(SAMPLE_IMAGE, SAMPLE_HASH_LABEL) != wanted:
        args = ["--network", "host", "--build-arg", f"BASE_IMAGE={_base_image()}", str(SAMPLE_DIR)]
        _locked_build(SAMPLE_IMAGE, SAMPLE_HASH_LABEL, wanted, args, SAMPLE_BUILD_TIMEOUT_S)
    return SAMPLE_IMAGE


def build_broken_image(check_id: str, sample_image: str = SAMPLE_IMAGE) -> str:
    """Build ``sagemaker-emulator-broken/<check id>:latest`` from ``sample_image``; return its tag.

    The image is rebuilt only when its directory or the sample image changed since the last build: both
    go into the ``sagemaker-emulator.broken-hash`` label. ``sample_image`` must exist already (see
    :func:`ensure_sample_image`).

    Raises:
        ValueError: ``check_id`` has no directory with a Dockerfile under tests/broken_images.
        ImageBuildError: the sample image is missing or ``docker build`` failed.
    """
    directory = HERE / check_id
    if not (directory / "Dockerfile").is_file():
        raise ValueError(f"no broken image for {check_id!r}: add {directory}/Dockerfile")
    sample_id = _docker("image", "inspect", "-f", "{{.Id}}", sample_image)
    if sample_id.returncode != 0:
        raise ImageBuildError(f"sample image {sample_image!r} not found; build it first (ensure_sample_image())")
    tag = image_name(check_id)
    wanted = dir_hash(directory, extra=sample_id.stdout.strip())
    if _label(tag, HASH_LABEL) != wanted:
        args = ["--pull=false", "--build-arg", f"SAMPLE_IMAGE={sample_image}", str(directory)]
        _locked_build(tag, HASH_LABEL, wanted, args, BUILD_TIMEOUT_S)
    return tag


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    sample = ensure_sample_image()
    for cid in sys.argv[1:] or check_ids():
        print(build_broken_image(cid, sample))
