from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sbm_support import Mender, start


@pytest.fixture(scope="module")
def mender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mender]:
    """A stand-in shared by a module's tests: each test uses its own identities."""
    running = start(tmp_path_factory.mktemp("mender"))
    yield running
    running.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Mender]:
    """An empty stand-in, for tests that count or page through every device."""
    running = start(tmp_path / "mender")
    yield running
    running.stop()
