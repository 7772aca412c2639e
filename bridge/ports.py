"""The ports of the core: what the service needs from a registry and from Mender (deviceauth,
and inventory for the tags).

Only the methods the service calls. Adapters (bridge.registry, bridge.mender) and the test
fakes implement them; they return bridge.model objects and raise bridge.errors only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge.model import AuthStatus, MenderDevice, PreauthResult, RegistryDevice, RegistryRef
from bridge.tags import Tag


@dataclass(frozen=True)
class Pace:
    """How a Mender client paces its requests to the server's rate limit: the rate in requests
    per second it holds to (None while it has met no limit), the 429s it was answered and the
    requests that passed, since the client was made."""

    rate: float | None
    limited: int
    passed: int


class Registry(Protocol):
    def get_device(self, ref: RegistryRef, device_id: str) -> RegistryDevice:
        """One device with credentials, metadata and blocked flag; `device_id` is the string
        id or the numeric id. Raises NotFound."""
        ...

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        """Every device of the registry with credentials, metadata and blocked, lazily."""
        ...

    def list_registries(self, project: str, location: str) -> list[RegistryRef]:
        ...


class Mender(Protocol):
    def preauthorize(
        self, identity: Mapping[str, str], pubkey: str, *, force: bool = False
    ) -> PreauthResult:
        """201 → Preauthorized; 409 → AlreadyExists (auth sets not loaded)."""
        ...

    def get_device(self, device_id: str) -> MenderDevice:
        """The device with its auth sets. Raises NotFound."""
        ...

    def iter_devices(self, status: AuthStatus | None = None) -> Iterator[MenderDevice]:
        """Every device with its auth sets, lazily, each once, a bounded number of pages
        ahead. A device added or removed while the list is read may be missing."""
        ...

    def find_by_identity(self, identity: Mapping[str, str]) -> MenderDevice | None:
        """The device with exactly this identity, with auth sets, or None.
        Eventually consistent on a real server (inventory search)."""
        ...

    def set_auth_status(self, device_id: str, auth_id: str, status: AuthStatus) -> None:
        """accepted, rejected or pending; never preauthorized (the server refuses it)."""
        ...

    def delete_auth_set(self, device_id: str, auth_id: str) -> None:
        """Idempotent: an auth set already gone is not an error."""
        ...

    def decommission(self, device_id: str) -> None:
        """Idempotent: a device already gone is not an error."""
        ...

    def pace(self) -> Pace:
        """The client's pacing so far; requests of every run on the client share it, as they
        share the server's limit (one per caller)."""
        ...


@dataclass(frozen=True)
class InventoryRecord:
    """A device's record in Mender's inventory: its id, identity attributes and tags by name;
    `etag` is the tags' ETag (None until the device has been tagged, or when not read)."""

    id: str
    identity: Mapping[str, object]
    tags: Mapping[str, Tag]
    etag: str | None = None

    @property
    def device_identity(self) -> dict[str, object]:
        """The identity attributes without `status`, which inventory keeps among them
        (deviceauth's device status): what deviceauth has as the device's identity."""
        return {k: v for k, v in self.identity.items() if k != "status"}


class Inventory(Protocol):
    """Mender's inventory, for the tags the bridge writes (TAGS). Records appear a moment
    after a device is preauthorized (eventually consistent)."""

    def find(self, identity: Mapping[str, str]) -> list[InventoryRecord]:
        """The records whose identity attributes are exactly `identity` (usually one)."""
        ...

    def get(self, device_id: str) -> InventoryRecord:
        """One record with its tags' ETag. Raises NotFound."""
        ...

    def write_tags(self, device_id: str, tags: Sequence[Tag], etag: str | None, *,
                   replace: bool) -> bool:
        """PATCH (add or overwrite `tags`) or, with `replace`, PUT (the device's tags become
        `tags`), guarded by `etag` when given. False when the ETag was stale (412)."""
        ...

    def iter_records(self, attribute: str) -> Iterator[InventoryRecord]:
        """Every record whose identity has `attribute`, with its tags, a page at a time."""
        ...
