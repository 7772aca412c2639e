"""Key rules of deviceauth (PKIX-only parsing, re-serialization, request signatures), the
server's JWT signing key, and the self-signed TLS certificate of the sandbox.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_CURVES = (ec.SECP224R1, ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)  # what Go's x509 parses


class KeyDecodeError(ValueError):
    """Mender's `cannot decode public key` / `unrecognized public key type`."""


@lru_cache(maxsize=4096)
def _parse(pem: str) -> tuple[PublicKey, str]:
    text = pem.strip()
    # Go's pem.Decode + block type check: only a PKIX "PUBLIC KEY" block is accepted.
    if not text.startswith("-----BEGIN PUBLIC KEY-----"):
        raise KeyDecodeError("cannot decode public key")
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise KeyDecodeError("cannot decode public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise KeyDecodeError("cannot decode public key")
    elif not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise KeyDecodeError("unrecognized public key type")
    normalized = key.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, normalized


def normalize_pubkey(pem: str) -> str:
    """PKIX PEM, 64-column base64, trailing newline: the string auth sets are matched by."""
    return _parse(pem)[1]


def verify_signature(pem: str, signature_b64: str, body: bytes) -> bool:
    """X-MEN-Signature check over the raw body: RSA PKCS#1 v1.5 / ECDSA DER (both SHA-256),
    or pure Ed25519."""
    key = _parse(pem)[0]
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            # Go >= 1.24 refuses to verify with RSA keys below 1024 bits.
            if key.key_size < 1024:
                return False
            key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, body)
    except (InvalidSignature, ValueError):
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def load_or_create_signing_key(path: Path) -> rsa.RSAPrivateKey:
    """The RS256 key that signs management and device JWTs, kept across restarts."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return key


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _named(cert_path: Path) -> list[x509.GeneralName]:
    """The subject alternative names of the certificate at `cert_path`, if readable."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return []


def ensure_tls_certificate(data_dir: Path, names: Sequence[str] = ()) -> tuple[Path, Path]:
    """(certificate, key) for localhost, 127.0.0.1 and `names` (hosts or addresses a device
    reaches the sandbox by), generated once and reused while it names them all; a new one
    keeps the names of the old one.

    The certificate is its own CA, so a device or a client can be told to trust it.
    """
    cert_path, key_path = data_dir / "tls-cert.pem", data_dir / "tls-key.pem"
    wanted = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    wanted += [n for n in map(_general_name, names) if n not in wanted]
    present = _named(cert_path) if key_path.exists() else []
    if present and all(n in present for n in wanted):
        return cert_path, key_path
    wanted += [n for n in present if n not in wanted]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mender-bridge sandbox")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=False,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
