"""Build the images the tests run, once, and reuse them while their files do not change.

The one place that knows how: every image carries a label with a hash of its build context (see
:func:`dir_hash`), and :func:`build_image` skips ``docker build`` when the label already matches.

* ``build_test_image("recorder")`` builds ``tests/images/recorder/`` as ``sagemaker-emulator-test/recorder:latest``
  (its hash also covers the base image id);
* ``ensure_sample_image()`` builds ``sample_algorithm/`` as ``sagemaker-emulator-sample:latest``;
* tests/broken_images/build.py builds the broken images on top of the sample with :func:`build_image`.

Every Dockerfile built on Python takes ``ARG BASE_IMAGE``; the base comes from ``scripts/ensure_base_image.sh``
(a python image when it can be pulled, else the offline Debian base). Uses the docker CLI, not docker-py, so
test helpers never import ``docker`` (that is emulator/docker_client.py's job). tests/conftest.py loads this
file by path (as ``_sm_emulator_test_image_build``) and gives its images to tests as fixtures.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

IMAGES_DIR = Path(__file__).resolve().parent
REPO = IMAGES_DIR.parents[1]
REPOSITORY = "sagemaker-emulator-test"
HASH_LABEL = "sagemaker-emulator.test-image-hash"
SAMPLE_DIR = REPO / "sample_algorithm"
SAMPLE_IMAGE = "sagemaker-emulator-sample:latest"
SAMPLE_HASH_LABEL = "sagemaker-emulator.sample-hash"
BUILD_TIMEOUT_S = 600
SAMPLE_BUILD_TIMEOUT_S = 1800
_IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class ImageBuildError(RuntimeError):
    """Raised when the base image cannot be made, an image a build needs is missing, or ``docker build`` fails."""


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@functools.cache
def base_image() -> str:
    """The Python base image every Dockerfile here builds on (made once per machine)."""
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


def image_id(image: str) -> str | None:
    """The id of a local image, or None when there is no such image."""
    result = _docker("image", "inspect", "--format", "{{.Id}}", image, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


def label_of(image: str, label: str) -> str | None:
    """The value of ``label`` on a local image ("" when it has no such label), or None when there is no image."""
    result = _docker("image", "inspect", "--format", f'{{{{ index .Config.Labels "{label}" }}}}', image, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


def dir_hash(directory: Path, extra: str = "") -> str:
    """A hash of what goes into an image: relative paths, executable bits and contents (caches left out)."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if not path.is_file() or _IGNORED.intersection(rel.parts) or path.suffix in {".pyc", ".pyo"}:
            continue
        digest.update(f"{rel.as_posix()}\0{os.access(path, os.X_OK)}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def build_image(
    context: Path,
    tag: str,
    label: str,
    wanted: str,
    *,
    build_args: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
    timeout: float = BUILD_TIMEOUT_S,
) -> str:
    """Build ``context`` as ``tag`` with the label ``label=wanted``, unless ``tag`` carries that label already.

    ``options`` go to ``docker build`` as they are (e.g. ``--network host``). Safe to call from several
    processes at once: a file lock serialises builds of the same tag, and the label is read again under it.

    Raises:
        ImageBuildError: ``docker build`` failed.
    """
    if label_of(tag, label) == wanted:
        return tag
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{tag.replace('/', '_').replace(':', '_')}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if label_of(tag, label) == wanted:
            return tag
        logger.info("building %s from %s", tag, context)
        args = [arg for name, value in (build_args or {}).items() for arg in ("--build-arg", f"{name}={value}")]
        build = _docker(
            "build",
            "--force-rm",
            *options,
            *args,
            "--label",
            f"{label}={wanted}",
            "-t",
            tag,
            str(context),
            timeout=timeout,
        )
        if build.returncode != 0:
            raise ImageBuildError(
                f"docker build of {tag} from {context} failed ({build.returncode}):\n"
                f"{build.stdout[-2000:]}\n{build.stderr[-3000:]}"
            )
    return tag


def build_test_image(name: str) -> str:
    """Build ``tests/images/<name>/`` as ``sagemaker-emulator-test/<name>:latest`` unless it is up to date.

    Raises:
        ImageBuildError: no such directory, the base image cannot be made, or the build fails.
    """
    directory = IMAGES_DIR / name
    if not (directory / "Dockerfile").is_file():
        raise ImageBuildError(f"no Dockerfile in {directory}; add tests/images/{name}/Dockerfile")
    base = base_image()
    wanted = dir_hash(directory, extra=image_id(base) or "")
    # --network host: RUN steps that pip install reach PyPI only that way (no NAT with --iptables=false).
    return build_image(
        directory,
        f"{REPOSITORY}/{name}:latest",
        HASH_LABEL,
        wanted,
        build_args={"BASE_IMAGE": base},
        options=["--quiet", "--network", "host", "--label", "sagemaker-emulator.test=1"],
    )


def ensure_sample_image(tag: str = SAMPLE_IMAGE) -> str:
    """Build the sample algorithm (``sample_algorithm/``) as ``tag`` unless it is up to date; return ``tag``.

    Raises:
        ImageBuildError: the base image cannot be made or the build fails.
    """
    wanted = dir_hash(SAMPLE_DIR)
    if label_of(tag, SAMPLE_HASH_LABEL) == wanted:  # the base image is needed only for a build
        return tag
    return build_image(
        SAMPLE_DIR,
        tag,
        SAMPLE_HASH_LABEL,
        wanted,
        build_args={"BASE_IMAGE": base_image()},
        options=["--network", "host"],
        timeout=SAMPLE_BUILD_TIMEOUT_S,
    )
