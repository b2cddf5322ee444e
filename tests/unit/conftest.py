"""The unit tier's session: fake containers' servers end with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _end_fake_servers() -> Iterator[None]:
    """A test that abandons a fake serving container must not leave its server printing after the run."""
    yield
    from _fakes import kill_all_servers

    kill_all_servers()
