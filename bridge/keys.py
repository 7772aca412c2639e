"""Turn any public credential into one public key normalized exactly as Mender stores it.

Mender parses a PKIX `PUBLIC KEY` PEM and re-encodes it (64-column base64, `\\n`, final newline)
and matches auth sets by exact string equality of that form, so every key the bridge sends goes
through `normalize` first.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from bridge.errors import InvalidKeyError
from bridge.model import Credential, CredentialFormat, KeyType, PublicKey

MAX_INPUT = 64 * 1024
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
# Go's crypto/rsa refuses to verify with an even exponent or one above 2^31-1, so Mender would
# take such a key at preauthorization and then answer the device 401 forever.
_MAX_RSA_EXPONENT = 2**31 - 1
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
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


def parse_format(label: str | enum.Enum | None) -> CredentialFormat | None:
    """A registry format label; also the clients' own enums (Google's is an IntEnum), by name."""
    if label is None or isinstance(label, CredentialFormat):
        return label
    text = label if isinstance(label, str) else str(getattr(label, "name", label))
    try:
        return CredentialFormat(text.strip().upper())
    except ValueError:
        known = ", ".join(f.value for f in CredentialFormat)
        raise InvalidKeyError(f"unknown credential format {label!r} (known: {known})") from None


def _single_block(data: bytes) -> tuple[str, bytes]:
    blocks = list(_PEM_BLOCK.finditer(data))
    kinds = [b.group(1).decode("ascii") for b in blocks]
    if not blocks:
        begin = _PEM_BEGIN.search(data)
        if begin is not None:
            kind = begin.group(1).decode("ascii")
            raise InvalidKeyError(f"PEM block {kind} has no matching END line (truncated?)")
        raise InvalidKeyError("not a PEM public key or certificate (no BEGIN/END block found)")
    if any("PRIVATE" in kind for kind in kinds):
        raise InvalidKeyError("got a private key: give the public key or certificate, "
                              "never the private key")
    if len(blocks) > 1:
        raise InvalidKeyError(
            f"expected one PEM block, found {len(blocks)} ({', '.join(kinds)})"
        )
    body = b"".join(blocks[0].group(2).split())
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyError(f"PEM block {kinds[0]} is not valid base64") from None
    if not der:
        raise InvalidKeyError(f"PEM block {kinds[0]} is empty")
    return kinds[0], der


def _load(kind: str, der: bytes, now: datetime | None) -> tuple[PublicKeyTypes, bool]:
    if kind not in ("CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY"):
        raise InvalidKeyError(
            f"unsupported PEM block {kind!r} (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)"
        )
    try:
        if kind == "CERTIFICATE":
            cert = x509.load_der_x509_certificate(der)
            if now is not None:
                _check_validity(cert, now)
            return cert.public_key(), True
        # Re-wrapped from the DER so that only the label says PKCS#1 or PKIX, as for Go's parser.
        label = kind.encode("ascii")
        block = b"-----BEGIN %s-----\n%s-----END %s-----\n" % (
            label, base64.encodebytes(der), label)
        key = serialization.load_pem_public_key(block)
        if kind == "RSA PUBLIC KEY" and key.public_bytes(serialization.Encoding.DER, _SPKI) == der:
            # cryptography also takes PKIX under this label; Go's PKCS#1 parser does not.
            raise InvalidKeyError("cannot parse the RSA PUBLIC KEY (DER): it holds a PKIX key, "
                                  "whose PEM label is PUBLIC KEY")
        return key, False
    except InvalidKeyError:
        raise
    except Exception as exc:  # cryptography raises ValueError, UnsupportedAlgorithm and others
        what = "certificate" if kind == "CERTIFICATE" else f"{kind} (DER)"
        reason = "unsupported algorithm" if type(exc).__name__ == "UnsupportedAlgorithm" else (
            "corrupt or truncated")
        raise InvalidKeyError(f"cannot parse the {what}: {reason}") from None


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    now = _aware(now)
    # X.509 validity is inclusive of notAfter (RFC 5280 §4.1.2.5), as Go's verifier checks it.
    if cert.not_valid_after_utc < now:
        raise InvalidKeyError(f"certificate expired on {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > now:
        raise InvalidKeyError(
            f"certificate not valid before {cert.not_valid_before_utc.isoformat()}"
        )


def _classify(key: PublicKeyTypes, policy: KeyPolicy) -> tuple[KeyType, int | None, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < policy.min_rsa_bits:
            raise InvalidKeyError(
                f"RSA key of {key.key_size} bits is below the minimum of {policy.min_rsa_bits}"
            )
        exponent = key.public_numbers().e
        if exponent % 2 == 0 or not 3 <= exponent <= _MAX_RSA_EXPONENT:
            raise InvalidKeyError(
                "RSA public exponent must be odd and between 3 and 2^31-1 (Go refuses others)"
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
    if isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey):
        raise InvalidKeyError("X25519 and X448 keys cannot sign: "
                              "Mender needs an RSA, ECDSA or Ed25519 key")
    if isinstance(key, ed448.Ed448PublicKey):
        raise InvalidKeyError("Ed448 keys are not supported by Mender")
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
        raise InvalidKeyError(f"credential is larger than the limit of {MAX_INPUT} bytes")
    kind, der = _single_block(raw)
    key, from_cert = _load(kind, der, now)
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
    der = key.public_bytes(serialization.Encoding.DER, _SPKI)
    pem = key.public_bytes(serialization.Encoding.PEM, _SPKI).decode("ascii")
    return PublicKey(pem, key_type, bits, curve, hashlib.sha256(der).hexdigest())


def usable_keys(
    credentials: Iterable[Credential],
    now: datetime | None = None,
    policy: KeyPolicy = DEFAULT_POLICY,
) -> tuple[list[PublicKey], list[KeyProblem]]:
    """The distinct normalized keys of unexpired, valid credentials, and why the others failed."""
    now = _aware(now) if now is not None else datetime.now(UTC)
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
