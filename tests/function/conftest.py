"""Fixtures of the function/webhook tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bridge import logs
from tests.function.helpers import LogCapture, World, make_world


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def logbuf(world: World) -> Iterator[LogCapture]:
    """The bridge's JSON log lines of one test, redacted as `world`'s runtime redacts them
    (as every entry point configures its logs); the logger is left as it was found."""
    logger = logging.getLogger(logs.LOGGER_NAME)
    saved = (list(logger.handlers), logger.propagate, logger.level)
    buf = LogCapture()
    logs.configure("DEBUG", stream=buf, redactor=world.runtime.redactor)
    yield buf
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])
