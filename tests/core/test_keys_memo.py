"""keys.normalize remembers what a credential text gave: asked again, with another format label,
key policy or time, it answers exactly as a first parse would (certificates are judged at each
`now`, in the parse's order of checks). It holds at most two generations of its text budget,
however large the texts a caller sends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge import keys
from bridge.errors import InvalidKeyError
from bridge.keys import KeyPolicy
from bridge.model import Credential, CredentialFormat
from tests.core.key_material import NOW, certificate, encode, expected_pem, keyring

LATER = NOW + timedelta(days=400)  # after the certificates' notAfter
EARLIER = NOW - timedelta(days=2)  # before their notBefore


def test_a_certificate_is_judged_at_each_now_whatever_was_asked_before() -> None:
    key = keyring()["p256"]
    text = certificate(key).decode()
    pem, _ = expected_pem(key)
    assert keys.normalize(text, CredentialFormat.ES256_X509_PEM, now=NOW).pem == pem
    with pytest.raises(InvalidKeyError, match="certificate expired"):
        keys.normalize(text, CredentialFormat.ES256_X509_PEM, now=LATER)
    with pytest.raises(InvalidKeyError, match="not valid before"):
        keys.normalize(text, CredentialFormat.ES256_X509_PEM, now=EARLIER)
    assert keys.normalize(text, CredentialFormat.ES256_X509_PEM, now=NOW).pem == pem
    assert keys.normalize(text, CredentialFormat.ES256_X509_PEM).pem == pem


def test_an_expired_certificate_says_expired_before_any_later_check() -> None:
    # An EC certificate labelled as an RSA one: the parse checks the time before the label.
    text = certificate(keyring()["p256"]).decode()
    with pytest.raises(InvalidKeyError, match="certificate expired"):
        keys.normalize(text, CredentialFormat.RSA_X509_PEM, now=LATER)
    with pytest.raises(InvalidKeyError, match="does not match its content"):
        keys.normalize(text, CredentialFormat.RSA_X509_PEM, now=NOW)
    with pytest.raises(InvalidKeyError, match="certificate expired"):
        keys.normalize(text, CredentialFormat.RSA_X509_PEM, now=LATER)


def test_one_text_under_other_policies_and_labels_gets_their_answers() -> None:
    key = keyring()["rsa2048"]
    text = encode(key, "spki").decode()
    strict = keys.KeyPolicy(min_rsa_bits=3072)
    pem, fingerprint = expected_pem(key)
    for _ in range(2):
        with pytest.raises(InvalidKeyError, match="below the minimum of 3072"):
            keys.normalize(text, policy=strict)
        found = keys.normalize(text, CredentialFormat.RSA_PEM)
        assert (found.pem, found.fingerprint) == (pem, fingerprint)
        with pytest.raises(InvalidKeyError, match="does not match its content"):
            keys.normalize(text, CredentialFormat.ES256_PEM)
        assert keys.normalize(text.encode()).pem == pem


def test_a_refused_text_stays_refused() -> None:
    text = encode(keyring()["dsa"], "spki").decode()
    for _ in range(3):
        with pytest.raises(InvalidKeyError, match="DSA keys are not supported"):
            keys.normalize(text)
    usable, problems = keys.usable_keys([Credential(text)], NOW)
    assert usable == [] and "DSA" in problems[0].reason


def test_a_normalized_key_checked_again_gets_what_a_first_parse_gives() -> None:
    # The Mender client normalizes again what the plan normalized, under Go's floor of rules.
    floor = keys.KeyPolicy(min_rsa_bits=1024)
    for name, variant, fmt in [("rsa3072", "pkcs1", CredentialFormat.RSA_PEM),
                               ("p384", "cert", None)]:
        key = keyring()[name]
        found = keys.normalize(encode(key, variant).decode(), fmt, now=NOW)
        again = keys.normalize(found.pem, policy=floor)
        assert again == found and (again.pem, again.fingerprint) == expected_pem(key)
    # A curve a configured policy allows but the floor does not: refused when checked again.
    secp256k1 = keyring()["k256"]
    lax = keys.KeyPolicy(curves=frozenset({"P-256", "secp256k1"}))
    found = keys.normalize(encode(secp256k1, "spki").decode(), policy=lax)
    with pytest.raises(InvalidKeyError, match="EC curve secp256k1 is not allowed"):
        keys.normalize(found.pem, policy=floor)


def test_large_texts_rotate_the_generations_and_the_oldest_go() -> None:
    memo = keys._Memo(1_000_000)  # the entry count never binds here: only the text budget
    big = keys.MAX_INPUT
    texts = [f"{i:08d}".ljust(big, "x") for i in range(3 * keys._Memo.BUDGET // big + 3)]
    for text in texts:
        memo.put((text, None, KeyPolicy()), ("refused", None))
    held = [t for t in texts if memo.get((t, None, KeyPolicy())) is not None]
    assert 0 < sum(map(len, held)) <= 2 * keys._Memo.BUDGET + big
    assert memo.get((texts[0], None, KeyPolicy())) is None
    assert memo.get((texts[-1], None, KeyPolicy())) == ("refused", None)


def test_a_text_above_the_input_limit_is_not_kept() -> None:
    memo = keys._Memo(10)
    text = "x" * (keys.MAX_INPUT + 1)
    assert memo.put((text, None, KeyPolicy()), ("refused", None)) == ("refused", None)
    assert memo.get((text, None, KeyPolicy())) is None
