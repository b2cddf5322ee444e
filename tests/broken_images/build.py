"""Build the deliberately broken images that prove the contract suite has teeth.

Each directory ``tests/broken_images/<check id>/`` holds a Dockerfile (``FROM ${SAMPLE_IMAGE}``, the
sample algorithm) and at most one small patch file, and breaks exactly the rule its check tests. The
Dockerfile's first line is a comment saying which rule it breaks and how. The builds themselves (hash
label, lock, ``docker build``) and the sample image are tests/images/build.py's, loaded here by path.

>>> check_ids()[0]
'test_b31_execution_parameters_schema'
>>> image_name("test_t01_train_succeeds")
'sagemaker-emulator-broken/test_t01_train_succeeds:latest'
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
IMAGE_PREFIX = "sagemaker-emulator-broken"
HASH_LABEL = "sagemaker-emulator.broken-hash"
CHECK_ID = re.compile(r"^test_[tsbpm]\d{2}_\w+$")


def _image_builder() -> ModuleType:
    """tests/images/build.py, the one module that builds images (shared with tests/conftest.py)."""
    name = "_sm_emulator_test_image_build"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE.parent / "images" / "build.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_images = _image_builder()
ImageBuildError = _images.ImageBuildError
ensure_sample_image = _images.ensure_sample_image
SAMPLE_IMAGE: str = _images.SAMPLE_IMAGE


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
    return _build_on_sample(directory, image_name(check_id), sample_image)


def _build_on_sample(directory: Path, tag: str, sample_image: str) -> str:
    """Build ``directory`` (FROM ${SAMPLE_IMAGE}) as ``tag``, rebuilt only when it or the sample image changed."""
    sample_id = _images.image_id(sample_image)
    if sample_id is None:
        raise ImageBuildError(f"sample image {sample_image!r} not found; build it first (ensure_sample_image())")
    return str(
        _images.build_image(
            directory,
            tag,
            HASH_LABEL,
            _images.dir_hash(directory, extra=sample_id),
            build_args={"SAMPLE_IMAGE": sample_image},
            options=["--pull=false"],
        )
    )


# -- cascades: one root cause, many checks that need the job ----------------------------------------------------
CASCADE_DIR = HERE / "cascade"
CASCADE_PREFIX = "sagemaker-emulator-cascade"


def cascade_ids() -> list[str]:
    """The images under cascade/: ``<owner check>_<what>`` (e.g. ``t02_crlf_train``), sorted."""
    return sorted(p.parent.name for p in CASCADE_DIR.glob("*/Dockerfile"))


def describe_cascade(cascade_id: str) -> str:
    """What the cascade image does: the first comment line of its Dockerfile."""
    for line in (CASCADE_DIR / cascade_id / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def owner(cascade_id: str) -> str:
    """The check that must own the root cause of a cascade image: its name's first part (``t02``)."""
    return cascade_id.split("_", 1)[0]


def build_cascade_image(cascade_id: str, sample_image: str = SAMPLE_IMAGE) -> str:
    """Build ``sagemaker-emulator-cascade/<id>:latest`` from ``sample_image`` (rebuilt only when changed)."""
    directory = CASCADE_DIR / cascade_id
    if not (directory / "Dockerfile").is_file():
        raise ValueError(f"no cascade image {cascade_id!r}: add {directory}/Dockerfile")
    return _build_on_sample(directory, f"{CASCADE_PREFIX}/{cascade_id}:latest", sample_image)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sample = ensure_sample_image()
    for cid in sys.argv[1:] or check_ids():
        print(build_broken_image(cid, sample))
