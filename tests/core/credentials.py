"""Test key material: cached key pairs and registry credentials in the four registry formats.

RSA generation is slow, so keys are made once per (type, index) and reused across tests.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bridge.model import Credential, CredentialFormat

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def private_key(kind: str = "ec", index: int = 0, bits: int = 2048) -> PrivateKey:
    """`kind` "ec" (P-256) or "rsa"; `index` tells apart several keys of one kind. The same
    key however the arguments are spelled (the cache is keyed on all three)."""
    return _private_key(kind, index, bits if kind == "rsa" else 0)


@functools.cache
def _private_key(kind: str, index: int, bits: int) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificate_pem(key: PrivateKey, *, not_after: datetime = FAR,
                    not_before: datetime | None = None, name: str = "device") -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = not_before or datetime(2020, 1, 1, tzinfo=UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def credential(kind: str = "ec", index: int = 0, *, x509_cert: bool = False,
               expires_at: datetime | None = None, bits: int = 2048) -> Credential:
    """A registry credential for key (kind, index), as a bare public key or a certificate."""
    key = private_key(kind, index, bits)
    if kind == "rsa":
        fmt = CredentialFormat.RSA_X509_PEM if x509_cert else CredentialFormat.RSA_PEM
    else:
        fmt = CredentialFormat.ES256_X509_PEM if x509_cert else CredentialFormat.ES256_PEM
    text = certificate_pem(key) if x509_cert else public_pem(key)
    return Credential(text, fmt, expires_at)


def mender_pem(kind: str = "ec", index: int = 0, bits: int = 2048) -> str:
    """The key as Mender stores it (PKIX PEM, what `bridge.keys.normalize` produces)."""
    return public_pem(private_key(kind, index, bits))


def past(days: int = 1) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
