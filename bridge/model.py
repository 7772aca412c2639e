"""Domain model shared by the core, the adapters and the entry points.

Frozen dataclasses and string enums whose values mirror the services' own strings.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Secret:
    """A secret string that never shows itself in `repr`, `str`, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return False
        mine, theirs = (v.encode("utf-8", "surrogatepass") for v in (self._value, other._value))
        return hmac.compare_digest(mine, theirs)

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


class KeyType(enum.StrEnum):
    RSA = "rsa"
    EC = "ec"
    ED25519 = "ed25519"


class CredentialFormat(enum.StrEnum):
    """Cloud IoT Core `PublicKeyFormat` names (ClearBlade uses the same strings)."""

    RSA_PEM = "RSA_PEM"
    RSA_X509_PEM = "RSA_X509_PEM"
    ES256_PEM = "ES256_PEM"
    ES256_X509_PEM = "ES256_X509_PEM"


class AuthStatus(enum.StrEnum):
    """Mender auth-set and device statuses, as the deviceauth service spells them."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PREAUTHORIZED = "preauthorized"
    NOAUTH = "noauth"


class OnDelete(enum.StrEnum):
    """What a registry delete does in Mender (ON_DELETE)."""

    DECOMMISSION = "decommission"
    IGNORE = "ignore"


class OnBlocked(enum.StrEnum):
    """What a device blocked in the registry does in Mender (ON_BLOCKED)."""

    IGNORE = "ignore"
    REJECT = "reject"


class PruneMode(enum.StrEnum):
    """Whether a backfill decommissions Mender devices no listed registry device claims.
    Where the identity names the registry, only devices of the listed registries are pruned."""

    OFF = "off"
    AUTO = "auto"  # only where the identity names the registry
    ON = "on"  # also where it does not: this Mender serves no other registry


@dataclass(frozen=True)
class PublicKey:
    """A public key normalized exactly as Mender stores it (PKIX PEM, 64 columns, final newline)."""

    pem: str
    type: KeyType
    bits: int | None
    curve: str | None
    fingerprint: str  # SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex

    def describe(self) -> str:
        size = f"{self.bits} bits" if self.bits else (self.curve or "")
        return f"{self.type.value} {size} sha256:{self.fingerprint[:16]}".replace("  ", " ")


@dataclass(frozen=True)
class Credential:
    """One registry credential: the PEM text as registered, its format label and its expiry."""

    key: str
    format: CredentialFormat | None = None
    expires_at: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        """Naive datetimes are taken as UTC. Cloud IoT reports "no expiry" as the Unix epoch."""
        if self.expires_at is None:
            return False
        expires, now = _utc(self.expires_at), _utc(now)
        return expires != _EPOCH and expires <= now


@dataclass(frozen=True)
class RegistryRef:
    """A registry: `projects/{project}/locations/{location}/registries/{registry}`."""

    project: str
    location: str
    registry: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/registries/{self.registry}"

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class RegistryDevice:
    """A device as the registry knows it, with what the bridge needs and nothing else."""

    ref: RegistryRef
    id: str
    num_id: str
    credentials: tuple[Credential, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    blocked: bool = False

    def __str__(self) -> str:
        return f"{self.ref.registry}/{self.id}"


@dataclass(frozen=True)
class AuthSet:
    id: str
    pubkey: str
    status: AuthStatus


@dataclass(frozen=True)
class MenderDevice:
    """A Mender device. `auth_sets` is None when the server did not send them (a 409 body)."""

    id: str
    identity_data: Mapping[str, object] = field(hash=False)
    status: AuthStatus
    decommissioning: bool = False
    auth_sets: tuple[AuthSet, ...] | None = None


@dataclass(frozen=True)
class Preauthorized:
    """201 from preauthorize. `location_id` is the id in `Location`; with `force` it is not the
    existing device's id (a server quirk), so it must not be relied upon."""

    location_id: str | None


@dataclass(frozen=True)
class AlreadyExists:
    """409 from preauthorize: a device with this identity exists; its auth sets are not loaded."""

    device: MenderDevice


PreauthResult = Preauthorized | AlreadyExists


class ChangeKind(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class DeviceChange:
    """A device created, updated or deleted in a registry, as one audit-log entry tells it.
    Its names are as the event gave them: the service validates and scopes them."""

    kind: ChangeKind
    ref: RegistryRef
    device_id: str | None
    num_id: str | None
    update_mask: tuple[str, ...] | None = None
    message_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.ref.registry}/{self.device_id or self.num_id or '?'}"

MENDER_SERVICE: Final = "mender"
REGISTRY_SERVICE: Final = "registry"
