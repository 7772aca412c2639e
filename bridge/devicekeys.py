"""What runs on a device or a factory station: the device's one key pair, its self-signed
certificate for the registry, and the Cloud IoT device JWT signed with that same key.

Files (the kit `keys/provision-device.sh` also makes, read with a size cap): `bridge.keykit`.
Used by `mender-bridge keys generate|jwt` and by `bridge.device.SimulatedDevice`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from bridge.errors import InvalidKeyError
from bridge.keys import DEFAULT_POLICY, KeyPolicy, normalize
from bridge.model import CredentialFormat

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
KeyKind = Literal["ec", "rsa"]

MAX_JWT_TTL = 86400  # Cloud IoT refuses a device JWT living longer than 24 h
RSA_BITS = 3072
CERT_DAYS = 3650


def generate_key(kind: KeyKind = "ec") -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def private_pem(key: PrivateKey) -> bytes:
    """SEC1 for EC and PKCS#1 for RSA (the forms the Mender client reads); PKCS#8 for Ed25519."""
    fmt = (serialization.PrivateFormat.PKCS8 if isinstance(key, ed25519.Ed25519PrivateKey)
           else serialization.PrivateFormat.TraditionalOpenSSL)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def public_pem(key: PrivateKey) -> str:
    """PKIX `PUBLIC KEY` PEM: what Mender stores and what ES256_PEM / RSA_PEM register."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def formats(key: PrivateKey) -> tuple[CredentialFormat, CredentialFormat]:
    """(certificate format, bare public key format) to register this key with."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return CredentialFormat.ES256_X509_PEM, CredentialFormat.ES256_PEM
    if isinstance(key, rsa.RSAPrivateKey):
        return CredentialFormat.RSA_X509_PEM, CredentialFormat.RSA_PEM
    raise InvalidKeyError("Cloud IoT registers only EC P-256 and RSA keys")


def certificate(key: PrivateKey, device_id: str, *, days: int = CERT_DAYS,
                now: datetime | None = None) -> str:
    """A self-signed X.509v3 certificate (CN = device id, cut to X.509's 64 characters)."""
    now = now or datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id[:64])])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(key, algorithm)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def parse_private_key(data: bytes, source: str) -> PrivateKey:
    """An unencrypted PEM private key (SEC1, PKCS#1 or PKCS#8); `source` names it in errors."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidKeyError(f"{source} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise InvalidKeyError(f"{source}: unsupported key type {type(key).__name__}")
    return key


def jwt_algorithm(key: PrivateKey, requested: str = "auto") -> str:
    natural = ("ES256" if isinstance(key, ec.EllipticCurvePrivateKey)
               and isinstance(key.curve, ec.SECP256R1)
               else "RS256" if isinstance(key, rsa.RSAPrivateKey) else None)
    if natural is None:
        raise InvalidKeyError("Cloud IoT JWTs need an EC P-256 (ES256) or RSA (RS256) key")
    if requested.upper() not in ("AUTO", natural):
        raise InvalidKeyError(f"algorithm {requested} does not fit this key (use {natural})")
    return natural


def mint_jwt(key: PrivateKey, project: str, *, ttl: int = 3600, algorithm: str = "auto",
             now: datetime | None = None, policy: KeyPolicy = DEFAULT_POLICY) -> str:
    """The device JWT for the Cloud IoT MQTT/HTTP bridges: `aud` = project, `exp` ≤ 24 h.

    The key must pass the same policy as a registry credential (`keys inspect` refuses what
    this refuses): a device should not sign with a key the bridge will never admit."""
    if not project:
        raise InvalidKeyError("the JWT audience (project id) must not be empty")
    if not 1 <= ttl <= MAX_JWT_TTL:
        raise InvalidKeyError(f"JWT lifetime must be 1..{MAX_JWT_TTL} seconds, got {ttl}")
    chosen = jwt_algorithm(key, algorithm)
    normalize(public_pem(key), policy=policy)
    issued = int((now or datetime.now(UTC)).timestamp())
    claims = {"aud": project, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, key, algorithm=chosen)
