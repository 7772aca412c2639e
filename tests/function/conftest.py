"""Fixtures of the function/webhook tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge import logs
from tests.function.helpers import LogCapture, World, make_world


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def logbuf() -> Iterator[LogCapture]:
    buf = LogCapture()
    logs.configure("DEBUG", stream=buf)
    yield buf
    logs.configure()
