"""keys.normalize, usable_keys and find_credential: the configurable key policy, the RSA numbers
Go refuses, certificate validity, credential expiry and numbering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge import keys
from bridge.errors import InvalidKeyError
from bridge.model import Credential, CredentialFormat
from tests.core.key_material import (
    NOW,
    PEM,
    SPKI,
    certificate,
    encode,
    expected_pem,
    keyring,
    pem_block,
    rsa_spki,
)

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


# Go's crypto/rsa checkPublicKey, restated as the expected answer: the modulus odd, the exponent
# odd and at least 2, below 2^31 (e = 1 and even exponents cryptography cannot even load).
@pytest.mark.parametrize(("even_modulus", "exponent", "accepted"), [
    (False, 3, True), (False, 65537, True), (False, 2**31 - 1, True),
    (False, 2**31 + 1, False), (False, 2**32 + 1, False), (True, 65537, False),
    (True, 3, False),
])
def test_rsa_public_numbers_follow_gos_rules(even_modulus: bool, exponent: int,
                                             accepted: bool) -> None:
    n = keyring()["rsa2048"].public_key().public_numbers().n  # type: ignore[union-attr]
    text = pem_block("PUBLIC KEY", rsa_spki(n + 1 if even_modulus else n, exponent))
    if accepted:
        assert keys.normalize(text).bits == 2048
    else:
        with pytest.raises(InvalidKeyError, match=r"modulus is even|exponent must be odd"):
            keys.normalize(text)


def test_no_policy_goes_below_gos_1024_bit_floor() -> None:
    lax = keys.KeyPolicy(min_rsa_bits=512)
    small = pem_block("PUBLIC KEY", rsa_spki((1 << 767) | 1, 65537))  # 768 bits, odd
    with pytest.raises(InvalidKeyError, match="768 bits is below the minimum of 1024"):
        keys.normalize(small, policy=lax)
    assert keys.normalize(encode(keyring()["rsa1024"], "spki"), policy=lax).bits == 1024


def test_problems_and_matches_number_credentials_from_1() -> None:
    ring = keyring()
    p256 = keys.normalize(encode(ring["p256"], "spki"))
    creds = [
        Credential(encode(ring["rsa1024"], "spki").decode(), F.RSA_PEM),            # 1: policy
        Credential(certificate(ring["p256"]).decode(), F.ES256_X509_PEM,
                   NOW - timedelta(days=1)),                                      # 2: expired
        Credential(encode(ring["p256"], "spki").decode(), F.ES256_PEM),            # 3: usable
    ]
    _, problems = keys.usable_keys(creds, now=NOW)
    assert [p.number for p in problems] == [1, 2]
    match = keys.find_credential(creds, p256, now=NOW)
    assert match == keys.CredentialMatch(3, 3, F.ES256_PEM, None) and match.usable
    expired_only = keys.find_credential(creds[:2], p256, now=NOW)
    assert expired_only is not None and (expired_only.number, expired_only.usable) == (2, False)
    assert expired_only.problem == "expired on 2026-05-31T00:00:00+00:00"
    weak = keys.find_credential(creds, keys.normalize(encode(ring["rsa1024"], "spki"),
                                                      policy=keys.KeyPolicy(1024)), now=NOW)
    assert weak is not None and weak.number == 1
    assert weak.problem == "RSA key of 1024 bits is below the minimum of 2048"
    assert keys.find_credential(creds, keys.normalize(encode(ring["p384"], "spki"))) is None
