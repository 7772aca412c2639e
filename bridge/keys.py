"""Turn any public credential into one public key normalized exactly as Mender stores it.

Mender parses a PKIX `PUBLIC KEY` PEM and re-encodes it (64-column base64, `\\n`, final newline)
and matches auth sets by exact string equality of that form, so every key the bridge sends goes
through `normalize` first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from bridge.errors import InvalidKeyError
from bridge.model import Credential, CredentialFormat, KeyType, PublicKey

MAX_INPUT = 64 * 1024
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)\r?\n?-----END \1-----", re.DOTALL
)
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_FORMAT_RULES: dict[CredentialFormat, tuple[KeyType, bool]] = {
    CredentialFormat.RSA_PEM: (KeyType.RSA, False),
    CredentialFormat.RSA_X509_PEM: (KeyType.RSA, True),
    CredentialFormat.ES256_PEM: (KeyType.EC, False),
    CredentialFormat.ES256_X509_PEM: (KeyType.EC, True),
}


@dataclass(frozen=True)
class KeyPolicy:
    """What the bridge agrees to send to Mender."""

    min_rsa_bits: int = 2048
    curves: frozenset[str] = frozenset({"P-256", "P-384", "P-521"})
    allow_ed25519: bool = True


DEFAULT_POLICY = KeyPolicy()


@dataclass(frozen=True)
class KeyProblem:
    """Why one registry credential is not usable (index into the device's credentials)."""

    index: int
    reason: str


def parse_format(label: str | CredentialFormat | None) -> CredentialFormat | None:
    if label is None or isinstance(label, CredentialFormat):
        return label
    try:
        return CredentialFormat(label.strip().upper())
    except ValueError:
        known = ", ".join(f.value for f in CredentialFormat)
        raise InvalidKeyError(f"unknown credential format {label!r} (known: {known})") from None


def _single_block(data: bytes) -> tuple[str, bytes]:
    blocks = list(_PEM_BLOCK.finditer(data))
    if not blocks:
        raise InvalidKeyError("not a PEM public key or certificate (no BEGIN/END block found)")
    if len(blocks) > 1:
        raise InvalidKeyError(f"expected one PEM block, found {len(blocks)}")
    return blocks[0].group(1).decode("ascii"), blocks[0].group(0)


def _load(kind: str, block: bytes, now: datetime | None) -> tuple[object, bool]:
    try:
        if kind == "CERTIFICATE":
            cert = x509.load_pem_x509_certificate(block)
            if now is not None:
                _check_validity(cert, now)
            return cert.public_key(), True
        if kind in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            return serialization.load_pem_public_key(block), False
    except InvalidKeyError:
        raise
    except Exception as exc:  # cryptography raises ValueError and others on bad input
        raise InvalidKeyError(f"cannot parse {kind} block: {type(exc).__name__}") from None
    if "PRIVATE" in kind:
        raise InvalidKeyError(f"got a {kind}: give the public key, never the private key")
    raise InvalidKeyError(f"unsupported PEM block {kind!r} (want PUBLIC KEY or CERTIFICATE)")


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    if cert.not_valid_after_utc <= now:
        raise InvalidKeyError(f"certificate expired on {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > now:
        raise InvalidKeyError(
            f"certificate not valid before {cert.not_valid_before_utc.isoformat()}"
        )


def _classify(key: object, policy: KeyPolicy) -> tuple[KeyType, int | None, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < policy.min_rsa_bits:
            raise InvalidKeyError(
                f"RSA key of {key.key_size} bits is below the minimum of {policy.min_rsa_bits}"
            )
        return KeyType.RSA, key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _CURVES.get(key.curve.name, key.curve.name)
        if curve not in policy.curves:
            raise InvalidKeyError(f"EC curve {curve} is not allowed (allowed: "
                                  f"{', '.join(sorted(policy.curves))})")
        return KeyType.EC, key.curve.key_size, curve
    if isinstance(key, ed25519.Ed25519PublicKey):
        if not policy.allow_ed25519:
            raise InvalidKeyError("Ed25519 keys are not allowed by the key policy")
        return KeyType.ED25519, 256, "Ed25519"
    if isinstance(key, dsa.DSAPublicKey):
        raise InvalidKeyError("DSA keys are not supported by Mender")
    raise InvalidKeyError(f"unsupported key type {type(key).__name__.removeprefix('_')}")


def normalize(
    data: str | bytes,
    fmt: str | CredentialFormat | None = None,
    *,
    policy: KeyPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> PublicKey:
    """Parse one PEM public key or certificate and return it in Mender's normalized form.

    `fmt` (a registry format label), when given, must agree with the content. `now`, when given,
    makes an expired or not-yet-valid certificate an error.
    """
    label = parse_format(fmt)
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_INPUT:
        raise InvalidKeyError(f"credential of {len(raw)} bytes is larger than {MAX_INPUT}")
    kind, block = _single_block(raw)
    key, from_cert = _load(kind, block, now)
    key_type, bits, curve = _classify(key, policy)
    if label is not None:
        want_type, want_cert = _FORMAT_RULES[label]
        if key_type is not want_type or from_cert is not want_cert:
            got = f"{'certificate with an ' if from_cert else ''}{key_type.value} key"
            raise InvalidKeyError(f"format {label.value} does not match its content ({got})")
        if label in (CredentialFormat.ES256_PEM, CredentialFormat.ES256_X509_PEM) and (
            curve != "P-256"
        ):
            raise InvalidKeyError(f"format {label.value} needs a P-256 key, got {curve}")
    der = key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return PublicKey(pem, key_type, bits, curve, hashlib.sha256(der).hexdigest())


def usable_keys(
    credentials: Iterable[Credential],
    now: datetime | None = None,
    policy: KeyPolicy = DEFAULT_POLICY,
) -> tuple[list[PublicKey], list[KeyProblem]]:
    """The distinct normalized keys of unexpired, valid credentials, and why the others failed."""
    now = now or datetime.now(UTC)
    keys: list[PublicKey] = []
    problems: list[KeyProblem] = []
    for index, cred in enumerate(credentials):
        if cred.is_expired(now):
            assert cred.expires_at is not None
            problems.append(KeyProblem(index, f"expired on {cred.expires_at.isoformat()}"))
            continue
        try:
            key = normalize(cred.key, cred.format, policy=policy, now=now)
        except InvalidKeyError as exc:
            problems.append(KeyProblem(index, str(exc)))
            continue
        if all(k.pem != key.pem for k in keys):
            keys.append(key)
    return keys, problems
