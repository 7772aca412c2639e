"""Keys for the bridge.keys tests: one private key of each kind per test process, every public
encoding a registry can hold, and Mender's normalized form built by hand (not by the code).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import textwrap
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from bridge.model import KeyType

Private = CertificateIssuerPrivateKeyTypes
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PEM = serialization.Encoding.PEM
NOW = datetime(2026, 6, 1, tzinfo=UTC)

# name → (type, bits, curve) that normalize must report
GOOD = {
    "rsa2048": (KeyType.RSA, 2048, None),
    "rsa3072": (KeyType.RSA, 3072, None),
    "rsa4096": (KeyType.RSA, 4096, None),
    "p256": (KeyType.EC, 256, "P-256"),
    "p384": (KeyType.EC, 384, "P-384"),
    "ed25519": (KeyType.ED25519, 256, "Ed25519"),
}


@functools.cache
def keyring() -> dict[str, Private]:
    """Every private key once per process (RSA 4096 generation is slow)."""
    return {
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa3072": rsa.generate_private_key(65537, 3072),
        "rsa4096": rsa.generate_private_key(65537, 4096),
        "rsa1024": rsa.generate_private_key(65537, 1024),  # noqa: S505 -- must be refused
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p192": ec.generate_private_key(ec.SECP192R1()),
        "k256": ec.generate_private_key(ec.SECP256K1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "dsa": dsa.generate_private_key(1024),  # noqa: S505 -- must be refused
    }


def certificate(key: Private, not_before: datetime = NOW - timedelta(days=1),
                not_after: datetime = NOW + timedelta(days=365)) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device-1")])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, algorithm))
    return cert.public_bytes(PEM)


def encode(key: Private, variant: str) -> bytes:
    """`variant`: "spki" (PKIX PUBLIC KEY), "pkcs1" (RSA PUBLIC KEY) or "cert"."""
    if variant == "cert":
        return certificate(key)
    fmt = serialization.PublicFormat.PKCS1 if variant == "pkcs1" else SPKI
    return key.public_key().public_bytes(PEM, fmt)


def expected_pem(key: Private) -> tuple[str, str]:
    """Mender's form built by hand from the DER: 64-column base64, `\\n`, final newline."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, SPKI)
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n", \
        hashlib.sha256(der).hexdigest()


# -- hand-made DER, so hostile keys need nothing from the code under test ----------------------
RSA_OID = bytes.fromhex("06092a864886f70d010101")  # rsaEncryption


def der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def der_int(value: int) -> bytes:
    """A DER INTEGER (two's complement, minimal), negative values included."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return der(0x02, value.to_bytes(size, "big", signed=True))


def rsa_spki(n: int, e: int) -> bytes:
    """SubjectPublicKeyInfo of an RSA key with any numbers, even ones no library would make."""
    pkcs1 = der(0x30, der_int(n) + der_int(e))
    algorithm = der(0x30, RSA_OID + b"\x05\x00")
    return der(0x30, algorithm + der(0x03, b"\x00" + pkcs1))


def rsa_pkcs1(n: int, e: int) -> bytes:
    return der(0x30, der_int(n) + der_int(e))


def pem_block(label: str, body: bytes) -> bytes:
    text = base64.encodebytes(body).decode()
    return f"-----BEGIN {label}-----\n{text}-----END {label}-----\n".encode()


def cert_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)
