"""Property tests of keys.normalize (hypothesis): idempotent for any key and layout; any input,
random or a corrupted key, is normalized or refused with InvalidKeyError, nothing else; RSA
numbers accepted exactly by Go's rule; a corrupted certificate accepted only where the openssl
CLI agrees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import keys
from bridge.errors import InvalidKeyError
from bridge.model import CredentialFormat
from tests.core.key_material import (
    Private,
    cert_der,
    certificate,
    encode,
    expected_pem,
    flip,
    keyring,
    pem_block,
    rsa_spki,
)
from tests.keykit.procs import run

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


@settings(max_examples=200, deadline=None)
@given(exponent=st.one_of(st.integers(0, 70000), st.integers(2**31 - 8, 2**31 + 8),
                          st.integers(0, 2**40)), even_modulus=st.booleans())
def test_rsa_numbers_are_accepted_exactly_by_gos_rule(exponent: int, even_modulus: bool) -> None:
    n = keyring()["rsa2048"].public_key().public_numbers().n  # type: ignore[union-attr]
    text = pem_block("PUBLIC KEY", rsa_spki(n + 1 if even_modulus else n, exponent))
    go_accepts = not even_modulus and exponent % 2 == 1 and 2 <= exponent <= 2**31 - 1
    try:
        keys.normalize(text)
    except InvalidKeyError:
        assert not go_accepts
    else:
        assert go_accepts


def openssl_view(der: bytes, tmp: Path) -> tuple[str, bool, bool] | None:
    """OpenSSL's own reading of a certificate: (its key as PEM, issuer == subject, self-signature
    verifies), or None when OpenSSL cannot parse it."""
    path = tmp / "cert.der"
    path.write_bytes(der)
    pem_path = tmp / "cert.pem"
    parsed = run(["openssl", "x509", "-inform", "DER", "-in", path, "-noout", "-pubkey",
                  "-issuer", "-subject", "-nameopt", "RFC2253"])
    if parsed.returncode != 0:
        return None
    lines = parsed.stdout.splitlines()
    issuer = next(ln for ln in lines if ln.startswith("issuer="))[len("issuer="):]
    subject = next(ln for ln in lines if ln.startswith("subject="))[len("subject="):]
    key = "".join(ln + "\n" for ln in lines if not ln.startswith(("issuer=", "subject=")))
    run(["openssl", "x509", "-inform", "DER", "-in", path, "-out", pem_path])
    verified = run(["openssl", "verify", "-CAfile", pem_path, "-check_ss_sig", pem_path])
    return key, issuer == subject, verified.returncode == 0


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["p256", "rsa2048", "ed25519"]), where=st.floats(0, 1),
       mask=st.sampled_from([0x01, 0x20, 0x80, 0xFF]))
def test_a_flipped_certificate_byte_is_refused_unless_openssl_agrees(
    name: str, where: float, mask: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The oracle is the openssl CLI: a flipped certificate the bridge accepts must parse in
    OpenSSL with the same key, and if it is still self-issued its signature must verify."""
    der = cert_der(certificate(keyring()[name]))
    mutated = flip(der, min(int(where * len(der)), len(der) - 1), mask)
    view = openssl_view(mutated, tmp_path_factory.mktemp("flip"))
    try:
        got = keys.normalize(pem_block("CERTIFICATE", mutated))
    except InvalidKeyError:
        return
    assert view is not None, "accepted a certificate OpenSSL cannot parse"
    key, self_issued, verified = view
    assert got.pem == key
    assert not self_issued or verified, "accepted a self-issued certificate whose signature " \
        "OpenSSL does not verify"
