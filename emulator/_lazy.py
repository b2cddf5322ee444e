"""Lazy package exports (PEP 562), so that importing one light module of a package does not import them all.

A package's ``__init__`` names what it exports and where each lives; the module is imported on the first
access of the name. The CLI relies on it: ``train --spec bad.yaml`` validates the request with
:mod:`emulator.training.plan` and never imports the runner, the Docker client or requests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def exports(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``where[name]`` (a module of ``package``) on first access.

    >>> getattr_ = exports("emulator", {"dedent": "textwrap"})
    >>> getattr_("dedent")("  a")
    'a'
    >>> getattr_("nope")
    Traceback (most recent call last):
    ...
    AttributeError: module 'emulator' has no attribute 'nope'
    """

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
