"""Turn any public credential into one public key normalized exactly as Mender stores it.

Mender parses a PKIX `PUBLIC KEY` PEM and re-encodes it (64-column base64, `\\n`, final newline)
and matches auth sets by exact string equality of that form, so every key the bridge sends goes
through `normalize` first. Nothing is normalized that Mender's Go code could not use: the input
is parsed strictly (`bridge.keyparse`), in linear time (`bridge.pem`), and RSA public numbers
follow Go's `crypto/rsa` rules (docs/mender-api.md). What a credential text gives is memoized
(bounded): a backfill or a periodic re-check reads the same keys again and again.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from bridge import keyparse, pem
from bridge.errors import InvalidKeyError
from bridge.model import Credential, CredentialFormat, KeyType, PublicKey

MAX_INPUT = 64 * 1024
# Go's crypto/rsa (checkPublicKey) refuses to verify with an even modulus, an exponent below 2,
# an even one or one above 2^31-1, so Mender would take such a key at preauthorization and then
# answer the device 401 forever. OpenSSL refuses moduli above 16384 bits (RSA_R_MODULUS_TOO_LARGE).
_MAX_RSA_EXPONENT = 2**31 - 1
_MAX_RSA_BITS = 16384
# Go 1.24+ refuses RSA keys below 1024 bits (GODEBUG rsa1024min): whatever the configured policy.
_MIN_RSA_BITS = 1024
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
# To tell which credential holds a key even when the policy refuses it.
_IDENTIFY = KeyPolicy(min_rsa_bits=_MIN_RSA_BITS)


@dataclass(frozen=True)
class KeyProblem:
    """Why one registry credential is not usable (index into the device's credentials)."""

    index: int
    reason: str

    @property
    def number(self) -> int:
        """The credential's number as every report and command prints it: from 1."""
        return self.index + 1


@dataclass(frozen=True)
class CredentialMatch:
    """The registry credential that holds a key, and why the bridge would not use it."""

    number: int  # from 1
    total: int
    format: CredentialFormat | None
    problem: str | None  # None: usable

    @property
    def usable(self) -> bool:
        return self.problem is None


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


def _check_rsa(key: rsa.RSAPublicKey, policy: KeyPolicy) -> None:
    minimum = max(policy.min_rsa_bits, _MIN_RSA_BITS)
    if key.key_size < minimum:
        raise InvalidKeyError(f"RSA key of {key.key_size} bits is below the minimum of {minimum}")
    if key.key_size > _MAX_RSA_BITS:
        raise InvalidKeyError(f"RSA key of {key.key_size} bits is above the maximum of "
                              f"{_MAX_RSA_BITS}")
    numbers = key.public_numbers()
    if numbers.n % 2 == 0:
        raise InvalidKeyError("RSA modulus is even: not an RSA key (Go refuses it)")
    if numbers.e % 2 == 0 or not 3 <= numbers.e <= _MAX_RSA_EXPONENT:
        raise InvalidKeyError(
            "RSA public exponent must be odd and between 3 and 2^31-1 (Go refuses others)"
        )


def _classify(key: PublicKeyTypes, policy: KeyPolicy) -> tuple[KeyType, int | None, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        _check_rsa(key, policy)
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


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _single_block(data: bytes) -> tuple[str, bytes]:
    found = pem.blocks(data)
    if any("PRIVATE" in block.label for block in found):
        raise InvalidKeyError("got a private key: give the public key or certificate, "
                              "never the private key")
    if not found:
        raise InvalidKeyError("not a PEM public key or certificate (no BEGIN/END block found)")
    if len(found) > 1:
        kinds = ", ".join(block.label for block in found[:5])
        raise InvalidKeyError(f"expected one PEM block, found {len(found)} ({kinds})")
    return found[0].label, found[0].der()


def _check_label(label: CredentialFormat, key_type: KeyType, from_cert: bool,
                 curve: str | None) -> None:
    want_type, want_cert = _FORMAT_RULES[label]
    if key_type is not want_type or from_cert is not want_cert:
        got = f"{'certificate with an ' if from_cert else ''}{key_type.value} key"
        raise InvalidKeyError(f"format {label.value} does not match its content ({got})")
    if label in (CredentialFormat.ES256_PEM, CredentialFormat.ES256_X509_PEM) and (
        curve != "P-256"
    ):
        raise InvalidKeyError(f"format {label.value} needs a P-256 key, got {curve}")


def normalize(data: str | bytes, fmt: str | CredentialFormat | None = None, *,
              policy: KeyPolicy = DEFAULT_POLICY, now: datetime | None = None) -> PublicKey:
    """Parse one PEM public key or certificate and return it in Mender's normalized form.

    `fmt` (a registry format label), when given, must agree with the content. `now`, when given,
    makes an expired or not-yet-valid certificate an error."""
    label = parse_format(fmt)
    text = data if isinstance(data, str) else bytes(data)
    k = (text, label, policy)
    found, cert = _MEMO.put(k, _MEMO.get(k) or _NORMALIZED.get(k) or _parse(text, label, policy))
    if cert is not None and now is not None:
        # Where the parse would (before all but the reading): the outcome holds for any now.
        keyparse.check_validity(cert, _aware(now))
    if isinstance(found, str):
        raise InvalidKeyError(found)
    return found


# A normalized key or why the text was refused; the certificate whose validity `now` decides.
_Outcome = tuple[PublicKey | str, x509.Certificate | None]
_MemoKey = tuple[str | bytes, CredentialFormat | None, KeyPolicy]


def _parse(data: str | bytes, label: CredentialFormat | None, policy: KeyPolicy) -> _Outcome:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    cert = None
    try:
        if len(raw) > MAX_INPUT:
            raise InvalidKeyError(f"credential is larger than the limit of {MAX_INPUT} bytes")
        kind, der = _single_block(raw)
        if kind == "CERTIFICATE":
            cert, key = keyparse.certificate(der)
        else:
            key = keyparse.public_key(kind, der)
        key_type, bits, curve = _classify(key, policy)
        if label is not None:
            _check_label(label, key_type, cert is not None, curve)
        if cert is not None:
            keyparse.check_self_signature(cert)
    except InvalidKeyError as exc:
        return str(exc), cert
    der = key.public_bytes(serialization.Encoding.DER, _SPKI)
    text = key.public_bytes(serialization.Encoding.PEM, _SPKI).decode("ascii")
    text = data if isinstance(data, str) and text == data else text  # one string, in the memo
    public = PublicKey(text, key_type, bits, curve, hashlib.sha256(der).hexdigest())
    # Its normalized form, which the Mender client checks again under _IDENTIFY's rules.
    with contextlib.suppress(InvalidKeyError):
        _classify(key, _IDENTIFY)
        _NORMALIZED.put((text, None, _IDENTIFY), (public, None))
    return public, cert


class _Memo:
    """Credential text, format and policy → outcome, in two generations of at most `size`
    entries and BUDGET characters of text each: what was looked up in the last two stays."""

    BUDGET = 16 << 20

    def __init__(self, size: int) -> None:
        self._lock, self._size, self._chars = threading.Lock(), size, 0
        self._new: dict[_MemoKey, _Outcome] = {}
        self._old: dict[_MemoKey, _Outcome] = {}

    def get(self, key: _MemoKey) -> _Outcome | None:
        with self._lock:
            return self._new.get(key) or self._old.get(key)

    def put(self, key: _MemoKey, outcome: _Outcome) -> _Outcome:
        with self._lock:
            if len(self._new) >= self._size or self._chars >= self.BUDGET:
                self._old, self._new, self._chars = self._new, {}, 0
            if len(key[0]) <= MAX_INPUT:
                self._chars += 0 if key in self._new else len(key[0])
                self._new[key] = outcome
        return outcome


_MEMO = _Memo(65_536)  # a fleet's keys, read again at each re-check
_NORMALIZED = _Memo(4096)  # keys parsed lately, normalized, as _IDENTIFY's rules take them


def _evaluate(cred: Credential, now: datetime, policy: KeyPolicy) -> PublicKey | str:
    """The one rule for a registry credential: its normalized key, or why it is not usable."""
    if cred.is_expired(now):
        assert cred.expires_at is not None
        return f"expired on {cred.expires_at.isoformat()}"
    try:
        return normalize(cred.key, cred.format, policy=policy, now=now)
    except InvalidKeyError as exc:
        return str(exc)


def usable_keys(credentials: Iterable[Credential], now: datetime | None = None,
                policy: KeyPolicy = DEFAULT_POLICY) -> tuple[list[PublicKey], list[KeyProblem]]:
    """The distinct normalized keys of unexpired, valid credentials, and why the others failed."""
    now = _aware(now) if now is not None else datetime.now(UTC)
    keys: list[PublicKey] = []
    problems: list[KeyProblem] = []
    for index, cred in enumerate(credentials):
        got = _evaluate(cred, now, policy)
        if isinstance(got, str):
            problems.append(KeyProblem(index, got))
        elif all(k.pem != got.pem for k in keys):
            keys.append(got)
    return keys, problems


def find_credential(
    credentials: Sequence[Credential],
    key: PublicKey,
    now: datetime | None = None,
    policy: KeyPolicy = DEFAULT_POLICY,
) -> CredentialMatch | None:
    """The first credential holding `key` (a usable one first), judged by the same rule as
    `usable_keys`; None if none holds it."""
    now = _aware(now) if now is not None else datetime.now(UTC)
    found: CredentialMatch | None = None
    for number, cred in enumerate(credentials, start=1):
        try:
            held = normalize(cred.key, cred.format, policy=_IDENTIFY)
        except InvalidKeyError:
            continue
        if held.pem != key.pem:
            continue
        got = _evaluate(cred, now, policy)
        match = CredentialMatch(number, len(credentials), cred.format,
                                got if isinstance(got, str) else None)
        if match.usable:
            return match
        found = found or match
    return found
