"""keys.normalize and keys.usable_keys: the configurable key policy, RSA exponents Go refuses,
certificate validity and credential expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge import keys
from bridge.errors import InvalidKeyError
from bridge.model import Credential, CredentialFormat
from tests.core.key_material import NOW, PEM, SPKI, certificate, encode, expected_pem, keyring

F = CredentialFormat


def test_rsa_exponent_go_cannot_verify_with_is_refused() -> None:
    modulus = keyring()["rsa2048"].public_key().public_numbers().n  # type: ignore[union-attr]
    big_e = rsa.RSAPublicNumbers(2**31 + 1, modulus).public_key().public_bytes(PEM, SPKI)
    with pytest.raises(InvalidKeyError, match="exponent"):
        keys.normalize(big_e)


@pytest.mark.parametrize(("policy", "name", "message"), [
    (keys.KeyPolicy(min_rsa_bits=3072), "rsa2048", "below the minimum of 3072"),
    (keys.KeyPolicy(curves=frozenset({"P-384"})), "p256", "P-256 is not allowed"),
    (keys.KeyPolicy(allow_ed25519=False), "ed25519", "Ed25519"),
])
def test_policy_is_configurable(policy: keys.KeyPolicy, name: str, message: str) -> None:
    ring = keyring()
    with pytest.raises(InvalidKeyError, match=message):
        keys.normalize(encode(ring[name], "spki"), policy=policy)
    assert keys.normalize(encode(ring["rsa3072"], "spki"), policy=policy).bits == 3072


@pytest.mark.parametrize(("now", "message"), [
    (NOW + timedelta(days=400), "certificate expired on"),
    (NOW - timedelta(days=2), "certificate not valid before"),
    ((NOW + timedelta(days=400)).replace(tzinfo=None), "certificate expired on"),  # naive = UTC
])
def test_expired_or_future_certificate_is_reported(now: datetime, message: str) -> None:
    cert = certificate(keyring()["p256"])
    with pytest.raises(InvalidKeyError, match=message):
        keys.normalize(cert, F.ES256_X509_PEM, now=now)
    assert keys.normalize(cert, F.ES256_X509_PEM).curve == "P-256"  # no `now`: no check


def test_certificate_is_valid_through_its_not_after_second() -> None:
    cert = certificate(keyring()["p256"], not_before=NOW, not_after=NOW + timedelta(hours=1))
    assert keys.normalize(cert, now=NOW + timedelta(hours=1)).curve == "P-256"
    assert keys.normalize(cert, now=NOW).curve == "P-256"
    with pytest.raises(InvalidKeyError, match="expired"):
        keys.normalize(cert, now=NOW + timedelta(hours=1, seconds=1))


def test_usable_keys_drops_expired_invalid_and_duplicate_credentials() -> None:
    ring = keyring()
    rsa_spki = encode(ring["rsa2048"], "spki").decode()
    creds = [
        Credential(rsa_spki, F.RSA_PEM, NOW + timedelta(days=1)),            # usable
        Credential(encode(ring["p256"], "spki").decode(), F.ES256_PEM,
                   NOW - timedelta(seconds=1)),                               # expired
        Credential(certificate(ring["rsa2048"]).decode(), F.RSA_X509_PEM),  # same key again
        Credential(encode(ring["rsa1024"], "spki").decode(), F.RSA_PEM),   # policy
        Credential(encode(ring["p384"], "spki").decode(), None,
                   datetime(1970, 1, 1, tzinfo=UTC)),                         # epoch = no expiry
        Credential(certificate(ring["ed25519"], not_after=NOW - timedelta(days=1),
                               not_before=NOW - timedelta(days=9)).decode()),  # cert expired
    ]
    usable, problems = keys.usable_keys(creds, now=NOW)
    assert [k.pem for k in usable] == [expected_pem(ring[n])[0] for n in ("rsa2048", "p384")]
    assert [p.index for p in problems] == [1, 3, 5]
    assert problems[0].reason.startswith("expired on 2026-05-31")
    assert "below the minimum" in problems[1].reason
    assert "certificate expired" in problems[2].reason
    naive, _ = keys.usable_keys(creds, now=NOW.replace(tzinfo=None))
    assert naive == usable
    assert keys.usable_keys([], now=NOW) == ([], [])
