"""Fixtures of the Pub/Sub tests: one emulator for the whole directory (each test uses
projects of its own: the emulator keeps every project's state while it runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.pubsub.emulator import Emulator
from tests.pubsub.pubsub_support import fresh_project, require_emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    require_emulator()
    running = Emulator.start(tmp_path_factory.mktemp("emulator") / "emulator.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def project() -> str:
    return fresh_project()
