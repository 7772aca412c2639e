"""keys.normalize: every credential format a registry can hold, and every bad input refused
with a clear InvalidKeyError (table-driven). Policy and expiry: test_keys_policy.py; properties:
test_keys_properties.py."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from bridge import keys
from bridge.errors import InvalidKeyError
from bridge.model import CredentialFormat
from tests.core.key_material import (
    GOOD,
    NOW,
    PEM,
    SPKI,
    Private,
    cert_der,
    certificate,
    encode,
    expected_pem,
    flip,
    keyring,
    pem_block,
    rsa_pkcs1,
    rsa_spki,
)

F = CredentialFormat
# (key, variant, label): every format each key can take, with and without the registry label.
CASES = [
    *[(k, v, lab) for k in ("rsa2048", "rsa3072", "rsa4096")
      for v, lab in (("spki", F.RSA_PEM), ("pkcs1", F.RSA_PEM), ("cert", F.RSA_X509_PEM),
                     ("spki", None), ("pkcs1", None), ("cert", None))],
    ("p256", "spki", F.ES256_PEM), ("p256", "cert", F.ES256_X509_PEM),
    ("p256", "spki", None), ("p256", "cert", None),
    ("p256", "spki", "es256_pem"),  # labels are case-insensitive strings too
    ("p384", "spki", None), ("p384", "cert", None),
    ("ed25519", "spki", None), ("ed25519", "cert", None),
]


@pytest.mark.parametrize(("name", "variant", "label"), CASES)
def test_every_format_normalizes_to_menders_pem(
    name: str, variant: str, label: str | None
) -> None:
    key = keyring()[name]
    got = keys.normalize(encode(key, variant), label, now=NOW)
    pem, fingerprint = expected_pem(key)
    assert got.pem == pem
    assert all(len(line) <= 64 for line in got.pem.splitlines())
    assert (got.type, got.bits, got.curve) == GOOD[name]
    assert got.fingerprint == fingerprint
    assert keys.normalize(got.pem) == got


def test_known_vector_from_openssl() -> None:
    """PKCS#1 input; expected SPKI PEM and DER fingerprint produced by the openssl CLI."""
    pkcs1 = """-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAxk7Jpcv1Dwx/Auqi8hbg/c+YQWbAIx9hW9VG9ChsgG+lstYjndTO
z4XmdWj7j3ueM0TSUdD/G5ctXghp8G8MsRX80BNkfypGvdVTo2QXLMLPUAENux3C
vVxhOGPKqN+dzbiJZs2B8MHSAIfOC3NiiS07fZgclDEwBftIHa39IKgPHQOAaJz3
V32e46jX6XlO/aCaTOgLTxIJdry6IH+JWqt6tRqHPmw/994Xic6QHtJC29Wk5txQ
/aJwCxd8pDcvihu9sgUSdu5Uret14nMstl6jhlil2aJbfz80TCxPd1abUB6euXxA
9aq/PcMTJ8xBCBXNnbwqnYNIEmdVVoNr/wIDAQAB
-----END RSA PUBLIC KEY-----
"""
    spki = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxk7Jpcv1Dwx/Auqi8hbg
/c+YQWbAIx9hW9VG9ChsgG+lstYjndTOz4XmdWj7j3ueM0TSUdD/G5ctXghp8G8M
sRX80BNkfypGvdVTo2QXLMLPUAENux3CvVxhOGPKqN+dzbiJZs2B8MHSAIfOC3Ni
iS07fZgclDEwBftIHa39IKgPHQOAaJz3V32e46jX6XlO/aCaTOgLTxIJdry6IH+J
Wqt6tRqHPmw/994Xic6QHtJC29Wk5txQ/aJwCxd8pDcvihu9sgUSdu5Uret14nMs
tl6jhlil2aJbfz80TCxPd1abUB6euXxA9aq/PcMTJ8xBCBXNnbwqnYNIEmdVVoNr
/wIDAQAB
-----END PUBLIC KEY-----
"""
    fingerprint = "77c59e5630d712774170145e160afd8f4e5b43a2b598cfd05dcd123e23c36aea"
    for text in (pkcs1, spki, spki.replace("\n", "\r\n"), "  " + spki.replace("\n", "\n  ")):
        got = keys.normalize(text, "RSA_PEM")
        assert (got.pem, got.fingerprint, got.bits) == (spki, fingerprint, 2048)


def test_compressed_ec_point_is_expanded() -> None:
    """Go's parser refuses compressed points; the bridge sends the uncompressed form (openssl)."""
    compressed = ("-----BEGIN PUBLIC KEY-----\n"
                  "MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACS0OF09Dzv0y493Y5gh2buuOAW0KD\n"
                  "3G5SgpFz7Lvzr8k=\n-----END PUBLIC KEY-----\n")
    got = keys.normalize(compressed, F.ES256_PEM)
    assert got.pem == ("-----BEGIN PUBLIC KEY-----\n"
                       "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAES0OF09Dzv0y493Y5gh2buuOAW0KD\n"
                       "3G5SgpFz7Lvzr8nai9UalAoh2D8PJg52gMRx4hWDHY1RVaC32LvgFVuNKA==\n"
                       "-----END PUBLIC KEY-----\n")
    assert got.fingerprint == "e1de8d110009845a27fd2a6a756ffb3d0451d2b91cc7e7688d55eb20d0f0bf44"


def spki_of(name: str) -> Callable[[dict[str, Private]], bytes]:
    return lambda ring: encode(ring[name], "spki")


def x25519_spki(_: dict[str, Private]) -> bytes:
    return x25519.X25519PrivateKey.generate().public_key().public_bytes(PEM, SPKI)


def private_pem(ring: dict[str, Private]) -> bytes:
    return ring["p256"].private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def modulus(ring: dict[str, Private]) -> int:
    return ring["rsa2048"].public_key().public_numbers().n  # type: ignore[union-attr]


def cert_with(change: Callable[[bytes], bytes],
              name: str = "p256") -> Callable[[dict[str, Private]], bytes]:
    """A self-signed certificate (serial 7) changed at the DER level."""
    return lambda ring: pem_block("CERTIFICATE", change(cert_der(certificate(ring[name]))))


def signature_with_unused_bit(ring: dict[str, Private]) -> bytes:
    """An RSA certificate whose signature BIT STRING claims one unused bit. Its last bit must be
    0, or the DER is invalid anyway: certificates are made until one's signature ends even."""
    for days in range(1, 200):
        data = cert_der(certificate(ring["rsa2048"], not_after=NOW + timedelta(days=days)))
        if data[-1] % 2 == 0:
            # RSA 2048: the BIT STRING's unused-bits byte sits 257 bytes from the end.
            return pem_block("CERTIFICATE", flip(data, len(data) - 257))
    raise AssertionError("no RSA signature ending in an even byte in 199 tries")


SERIAL_7 = b"\x02\x01\x07"  # the certificate's serial number, INTEGER 7


BAD: list[tuple[str, Callable[[dict[str, Private]], bytes], str | None, str]] = [
    ("garbage", lambda _: b"\x00\xffnot a key at all", None, "no BEGIN/END"),
    ("empty", lambda _: b"", None, "no BEGIN/END"),
    ("truncated-no-end", lambda r: spki_of("p256")(r)[:90], None, "no matching END"),
    ("truncated-body", lambda r: spki_of("rsa2048")(r)[:200] + b"\n-----END PUBLIC KEY-----\n",
     None, "PUBLIC KEY"),
    ("flipped-der", lambda r: spki_of("p256")(r).replace(b"MFkwEwYHKoZI", b"MFkwEwYHKoZJ"),
     None, "cannot parse"),
    ("rsa1024", spki_of("rsa1024"), None, "1024 bits is below the minimum of 2048"),
    ("dsa", spki_of("dsa"), None, "DSA"),
    ("x25519", x25519_spki, None, "X25519"),
    ("p192", spki_of("p192"), None, "curve secp192r1 is not allowed"),
    ("secp256k1", spki_of("k256"), None, "curve secp256k1 is not allowed"),
    ("rsa-as-es256", spki_of("rsa2048"), "ES256_PEM", "format ES256_PEM does not match"),
    ("ec-as-rsa", spki_of("p256"), "RSA_PEM", "format RSA_PEM does not match"),
    ("cert-as-bare", lambda r: certificate(r["rsa2048"]), "RSA_PEM", "does not match"),
    ("bare-as-cert", spki_of("p256"), "ES256_X509_PEM", "does not match"),
    ("p384-as-es256", spki_of("p384"), "ES256_PEM", "needs a P-256 key"),
    ("ed25519-as-es256", spki_of("ed25519"), "ES256_PEM", "does not match"),
    ("unknown-label", spki_of("p256"), "ES512_PEM", "unknown credential format"),
    ("two-blocks", lambda r: spki_of("p256")(r) + spki_of("p384")(r), None, "found 2"),
    ("cert-chain", lambda r: certificate(r["p256"]) + certificate(r["p384"]), None, "found 2"),
    ("1MiB", lambda r: spki_of("p256")(r) + b"#" * (1 << 20), None, "larger than"),
    ("private-key", private_pem, None, "private key"),
    ("private-and-public", lambda r: private_pem(r) + spki_of("p256")(r), None, "private key"),
    ("pkcs1-labelled-pkix", lambda r: encode(r["rsa2048"], "pkcs1").replace(
        b"RSA PUBLIC KEY", b"PUBLIC KEY"), None, "cannot parse"),
    ("pkix-labelled-pkcs1", lambda r: spki_of("rsa2048")(r).replace(
        b"PUBLIC KEY", b"RSA PUBLIC KEY"), None, "cannot parse"),
    ("csr-block", lambda r: spki_of("p256")(r).replace(b"PUBLIC KEY", b"CERTIFICATE REQUEST"),
     None, "unsupported PEM block"),
    ("empty-block", lambda _: b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
     None, "empty"),
    ("cert-garbage", lambda r: spki_of("p256")(r).replace(b"PUBLIC KEY", b"CERTIFICATE"),
     None, "cannot parse the certificate"),
    # Go's crypto/rsa rules (checkPublicKey): odd modulus; exponent odd, >= 2, < 2^31.
    ("rsa-even-modulus", lambda r: pem_block("PUBLIC KEY", rsa_spki(modulus(r) + 1, 65537)),
     None, "modulus is even"),
    ("rsa-even-modulus-pkcs1", lambda r: pem_block("RSA PUBLIC KEY", rsa_pkcs1(
        modulus(r) + 1, 65537)), "RSA_PEM", "modulus is even"),
    ("rsa-exponent-1", lambda r: pem_block("PUBLIC KEY", rsa_spki(modulus(r), 1)), None,
     "cannot parse"),
    ("rsa-exponent-even", lambda r: pem_block("PUBLIC KEY", rsa_spki(modulus(r), 65538)), None,
     "cannot parse"),
    ("rsa-exponent-2^31+1", lambda r: pem_block("PUBLIC KEY", rsa_spki(modulus(r), 2**31 + 1)),
     None, "exponent must be odd and between 3 and 2^31-1"),
    ("rsa-negative-modulus", lambda r: pem_block("PUBLIC KEY", rsa_spki(-modulus(r), 65537)),
     None, "cannot parse"),
    ("rsa-16385-bits", lambda _: pem_block("PUBLIC KEY", rsa_spki((1 << 16385) - 1, 65537)),
     None, "above the maximum of 16384"),
    # Certificates: strict DER, every part read, a self-issued one verified with its own key.
    ("cert-flipped-signature", cert_with(lambda d: flip(d, len(d) - 3)), None,
     "self-signature does not verify"),
    ("cert-flipped-serial", cert_with(lambda d: d.replace(SERIAL_7, b"\x02\x01\x06")), None,
     "self-signature does not verify"),
    ("cert-negative-serial", cert_with(lambda d: d.replace(SERIAL_7, b"\x02\x01\x87")), None,
     "serial number is not positive"),
    # The subject's CN with one letter's case flipped: the same name to RFC 5280 and OpenSSL,
    # so still self-issued, and its signature no longer verifies.
    ("cert-subject-case", cert_with(lambda d: d[::-1].replace(
        b"device-1"[::-1], b"Device-1"[::-1], 1)[::-1]), None, "self-signature does not verify"),
    ("cert-signature-unused-bits", signature_with_unused_bit, None,
     "signature is not a whole number of bytes"),
    ("cert-trailing-byte", cert_with(lambda d: d + b"\x00"), None,
     "cannot parse the certificate"),
    ("cert-truncated", cert_with(lambda d: d[:-20]), None, "cannot parse the certificate"),
    ("cert-bad-version", cert_with(lambda d: d.replace(b"\xa0\x03\x02\x01\x02",
                                                       b"\xa0\x03\x02\x01\x07")), None,
     "cannot parse the certificate"),
]


@pytest.mark.parametrize(("name", "build", "label", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_raise_a_clear_invalid_key_error(
    name: str, build: Callable[[dict[str, Private]], bytes], label: str | None, message: str,
) -> None:
    data = build(keyring())
    for as_given in (data, data.decode("latin-1")):
        with pytest.raises(InvalidKeyError) as caught:
            keys.normalize(as_given, label, now=NOW)
        text = str(caught.value)
        assert message in text
        body_lines = [ln.strip() for ln in data.splitlines() if b"-----" not in ln]
        assert not any(ln[:16].decode("latin-1") in text for ln in body_lines if len(ln) >= 16)


class GooglePublicKeyFormat(enum.IntEnum):
    """Shaped like google.cloud.iot_v1.PublicKeyFormat."""

    UNSPECIFIED_PUBLIC_KEY_FORMAT = 0
    RSA_X509_PEM = 1
    ES256_PEM = 2


def test_parse_format_takes_client_enums_by_name() -> None:
    assert keys.parse_format(GooglePublicKeyFormat.ES256_PEM) is F.ES256_PEM
    assert keys.parse_format(" rsa_x509_pem ") is F.RSA_X509_PEM
    assert keys.parse_format(None) is None
    for bad in (GooglePublicKeyFormat.UNSPECIFIED_PUBLIC_KEY_FORMAT, "", 3):
        with pytest.raises(InvalidKeyError, match="unknown credential format"):
            keys.parse_format(bad)  # type: ignore[arg-type]
