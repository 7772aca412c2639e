"""Device keys made once per module for the key kit tests (RSA 3072 generation is slow)."""

from __future__ import annotations

import pytest

from bridge import devicekeys


@pytest.fixture(scope="module")
def ec_key() -> devicekeys.PrivateKey:
    return devicekeys.generate_key("ec")


@pytest.fixture(scope="module")
def rsa_key() -> devicekeys.PrivateKey:
    return devicekeys.generate_key("rsa")
