"""The two ports of the core: what the service needs from a registry and from Mender.

Only the methods the service calls. Adapters (bridge.registry, bridge.mender) and the test
fakes implement them; they return bridge.model objects and raise bridge.errors only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from bridge.model import AuthStatus, MenderDevice, PreauthResult, RegistryDevice, RegistryRef


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
        """Every device with its auth sets, lazily, page by page."""
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

    def throttle_listener(self, callback: Callable[[float], None]
                          ) -> AbstractContextManager[None]:
        """While the context is open, `callback(retry_after_seconds)` is called for every 429
        the server answers (a run slows down on it); several listeners may be open at once."""
        ...
