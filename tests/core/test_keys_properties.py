"""Property tests of keys.normalize (hypothesis): idempotent for any key and layout, and any
input, random or a corrupted key, is normalized or refused with InvalidKeyError, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import keys
from bridge.errors import InvalidKeyError
from bridge.model import CredentialFormat
from tests.core.key_material import Private, encode, expected_pem, keyring

CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
WHITESPACE = [
    lambda t: t,
    lambda t: t.replace("\n", "\r\n"),
    lambda t: "\n".join("   " + line for line in t.splitlines()),
    lambda t: "subject=device-1\n" + t + "\ntrailing text\n",
    lambda t: t.rstrip("\n"),
]


@st.composite
def generated_keys(draw: st.DrawFn) -> Private:
    kind = draw(st.sampled_from(["ec", "ed25519"]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(draw(st.binary(min_size=32,
                                                                           max_size=32)))
    curve = CURVES[draw(st.sampled_from(sorted(CURVES)))]
    order_bits = 256 if curve.key_size == 256 else curve.key_size
    scalar = draw(st.integers(min_value=1, max_value=2 ** (order_bits - 1)))
    return ec.derive_private_key(scalar, curve)


@settings(max_examples=150, deadline=None)
@given(key=generated_keys(), variant=st.sampled_from(["spki", "cert"]),
       layout=st.sampled_from(WHITESPACE))
def test_normalize_is_idempotent_for_any_ec_or_ed25519_key(
    key: Private, variant: str, layout: Callable[[str], str]
) -> None:
    first = keys.normalize(layout(encode(key, variant).decode()))
    assert first.pem == expected_pem(key)[0]
    assert keys.normalize(first.pem) == first
    assert keys.normalize(first.pem.encode()) == first


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["rsa2048", "rsa3072", "rsa4096"]),
       variant=st.sampled_from(["spki", "pkcs1", "cert"]), layout=st.sampled_from(WHITESPACE))
def test_normalize_is_idempotent_for_rsa(name: str, variant: str,
                                        layout: Callable[[str], str]) -> None:
    first = keys.normalize(layout(encode(keyring()[name], variant).decode()))
    assert keys.normalize(first.pem) == first


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=3000), st.text(max_size=3000)))
def test_arbitrary_input_only_ever_raises_invalid_key_error(data: bytes | str) -> None:
    with pytest.raises(InvalidKeyError):
        keys.normalize(data)


P256_SPKI = ("-----BEGIN PUBLIC KEY-----\n"
             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAES0OF09Dzv0y493Y5gh2buuOAW0KD\n"
             "3G5SgpFz7Lvzr8nai9UalAoh2D8PJg52gMRx4hWDHY1RVaC32LvgFVuNKA==\n"
             "-----END PUBLIC KEY-----\n")


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(P256_SPKI) - 1), char=st.characters(), fmt=st.sampled_from(
    [None, *CredentialFormat]))
def test_a_corrupted_key_is_normalized_or_refused_never_crashes(
    position: int, char: str, fmt: CredentialFormat | None
) -> None:
    mutated = P256_SPKI[:position] + char + P256_SPKI[position + 1:]
    try:
        got = keys.normalize(mutated, fmt)
    except InvalidKeyError as exc:
        assert "S0OF09Dzv0y493Y5" not in str(exc)
    else:
        assert keys.normalize(got.pem) == got
