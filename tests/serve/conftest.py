"""Fixtures of the serve tests: one sandbox (both stand-ins over plain HTTP on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.serve.support import Stand, sandbox_stand


@pytest.fixture(scope="package")
def stand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stand]:
    with sandbox_stand(tmp_path_factory.mktemp("serve-sandbox")) as running:
        yield running
