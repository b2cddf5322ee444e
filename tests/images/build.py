"""Build the test images under tests/images/<name>/ once, and reuse them while their files do not change.

``build_test_image("recorder")`` returns ``sagemaker-emulator-test/recorder:latest``. The image carries a
label with a hash of its directory (and of the base image id); a build is skipped when the label matches.
Every Dockerfile here takes ``ARG BASE_IMAGE``; the base comes from ``scripts/ensure_base_image.sh`` (a
python image when it can be pulled, else the offline Debian base). Uses the docker CLI, not docker-py, so
test helpers never import ``docker`` (that is emulator/docker_client.py's job).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import subprocess
from pathlib import Path

IMAGES_DIR = Path(__file__).resolve().parent
REPO = IMAGES_DIR.parents[1]
REPOSITORY = "sagemaker-emulator-test"
HASH_LABEL = "sagemaker-emulator.test-image-hash"
_IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class ImageBuildError(RuntimeError):
    """Raised when the base image cannot be made or ``docker build`` fails."""


def _docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@functools.cache
def base_image() -> str:
    """The Python base image every test Dockerfile builds on (made once per machine)."""
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


def _label_of(tag: str) -> str | None:
    result = _docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{HASH_LABEL}"}}}}', tag, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


def build_test_image(name: str) -> str:
    """Build ``tests/images/<name>/`` as ``sagemaker-emulator-test/<name>:latest`` unless it is up to date.

    Safe to call from several processes at once (a file lock serialises builds of the same image).

    Raises:
        ImageBuildError: no such directory, the base image cannot be made, or the build fails.
    """
    directory = IMAGES_DIR / name
    if not (directory / "Dockerfile").is_file():
        raise ImageBuildError(f"no Dockerfile in {directory}; add tests/images/{name}/Dockerfile")
    tag = f"{REPOSITORY}/{name}:latest"
    base = base_image()
    base_id = _docker("image", "inspect", "--format", "{{.Id}}", base, timeout=60).stdout.strip()
    wanted = dir_hash(directory, extra=base_id)
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sagemaker-emulator-test-{name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _label_of(tag) == wanted:
            return tag
        # --network host: RUN steps that pip install reach PyPI only that way (no NAT with --iptables=false).
        result = _docker(
            "build",
            "--force-rm",
            "--quiet",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--label",
            f"{HASH_LABEL}={wanted}",
            "--label",
            "sagemaker-emulator.test=1",
            "-t",
            tag,
            str(directory),
        )
        if result.returncode != 0:
            raise ImageBuildError(
                f"docker build of {directory} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
    return tag
