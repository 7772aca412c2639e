"""Stateful in-memory fakes of the two ports (bridge.ports.Registry and bridge.ports.Mender).

They emulate the services' rules (Mender: identity-hash conflicts, force upsert, status by
weight, auth-set transitions, a preauthorized set's deletion taking the device with it) on
their own, count calls, and fail on demand: `fail_next(...)` or a seeded `fail_rate`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from cryptography.hazmat.primitives import serialization

from bridge.errors import NotFound, PermanentApiError
from bridge.model import (
    AlreadyExists,
    AuthSet,
    AuthStatus,
    Credential,
    MenderDevice,
    Preauthorized,
    PreauthResult,
    RegistryDevice,
    RegistryRef,
)
from bridge.ports import InventoryRecord, Pace
from bridge.tags import Tag
from tests.fault_injection import Failure, Faulty, permanent, transient

__all__ = ["FakeInventory", "FakeMender", "FakeRegistry", "normalize_pem", "permanent",
           "transient"]

WEIGHT = [AuthStatus.ACCEPTED, AuthStatus.PREAUTHORIZED, AuthStatus.PENDING, AuthStatus.REJECTED]
WRITES = ("preauthorize", "set_auth_status", "delete_auth_set", "decommission")


class FakeRegistry(Faulty):
    """A Cloud IoT registry in memory: devices by ref, string id and numeric id."""

    service = "registry"

    def __init__(self, *, fail_rate: float = 0.0, seed: int = 0) -> None:
        super().__init__(fail_rate=fail_rate, seed=seed)
        self.devices: dict[RegistryRef, dict[str, RegistryDevice]] = {}
        self.configs: dict[tuple[RegistryRef, str], bytes] = {}
        self._num_ids = itertools.count(2_820_847_009_591_807)

    def create(self, ref: RegistryRef, device_id: str, credentials: tuple[Credential, ...] = (),
               *, metadata: Mapping[str, str] | None = None,
               blocked: bool = False) -> RegistryDevice:
        device = RegistryDevice(ref, device_id, str(next(self._num_ids)), tuple(credentials),
                                dict(metadata or {}), blocked)
        with self._lock:
            self.devices.setdefault(ref, {})[device_id] = device
        return device

    def update(self, ref: RegistryRef, device_id: str, **changes: object) -> RegistryDevice:
        with self._lock:
            device = replace(self.devices[ref][device_id], **changes)  # type: ignore[arg-type]
            self.devices[ref][device_id] = device
        return device

    def delete(self, ref: RegistryRef, device_id: str) -> None:
        with self._lock:
            self.devices.get(ref, {}).pop(device_id, None)

    def get_device(self, ref: RegistryRef, device_id: str) -> RegistryDevice:
        def body() -> RegistryDevice:
            for device in self.devices.get(ref, {}).values():
                if device_id in (device.id, device.num_id):
                    return device
            raise NotFound(f"device {device_id} not found", service=self.service,
                           method="GET", status=404)
        return self._call("get_device", body)  # type: ignore[return-value]

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        snapshot = self._call("iter_devices", lambda: list(self.devices.get(ref, {}).values()))
        yield from snapshot  # type: ignore[misc]

    def set_device_config(self, ref: RegistryRef, device_id: str, data: bytes) -> None:
        def body() -> None:
            self.get_device(ref, device_id)
            self.configs[(ref, device_id)] = data
        self._call("set_device_config", body)

    def list_registries(self, project: str, location: str) -> list[RegistryRef]:
        return self._call("list_registries", lambda: [  # type: ignore[return-value]
            ref for ref in self.devices if (ref.project, ref.location) == (project, location)])


def normalize_pem(pem: str) -> str:
    """Mender's own normalization (PKIX only), written independently of bridge.keys."""
    if "-----BEGIN PUBLIC KEY-----" not in pem:
        raise PermanentApiError("cannot decode public key", service="mender",
                                method="POST", status=400)
    key = serialization.load_pem_public_key(pem.encode())
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def identity_digest(identity: Mapping[str, object]) -> str:
    text = json.dumps(dict(identity), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Device:
    id: str
    identity: dict[str, object]
    status: AuthStatus
    sets: dict[str, AuthSet] = field(default_factory=dict)
    decommissioning: bool = False

    def view(self, with_sets: bool = True) -> MenderDevice:
        return MenderDevice(self.id, dict(self.identity), self.status, self.decommissioning,
                            tuple(self.sets.values()) if with_sets else None)

    def recompute(self) -> None:
        statuses = {s.status for s in self.sets.values()}
        self.status = next((s for s in WEIGHT if s in statuses), AuthStatus.NOAUTH)

    @property
    def broken(self) -> bool:
        """deviceauth's getDeviceStatus refuses a device with two accepted or two
        preauthorized sets: its auth requests and status changes then fail with 500."""
        counts = [s.status for s in self.sets.values()]
        return (counts.count(AuthStatus.ACCEPTED) > 1
                or counts.count(AuthStatus.PREAUTHORIZED) > 1)


class FakeMender(Faulty):
    """Mender deviceauth management v2 in memory, following the server's rules.

    `preauth_delete`: "always" (the server code: deleting any preauthorized auth set deletes
    the device) or "only" (only when it was the device's last set). `async_decommission`
    leaves decommissioned devices flagged until `settle()`.
    """

    service = "mender"

    def __init__(self, *, fail_rate: float = 0.0, seed: int = 0, preauth_delete: str = "always",
                 async_decommission: bool = False, max_devices: int = -1) -> None:
        super().__init__(fail_rate=fail_rate, seed=seed)
        self.devices: dict[str, _Device] = {}
        self.by_hash: dict[str, str] = {}
        self.preauth_delete = preauth_delete
        # Mender 4.1.3: deleting a preauthorized set deletes its device and leaves the other
        # sets behind with no device; they are kept here so that a test ending so sees them.
        self.stranded: list[AuthSet] = []
        self.async_decommission = async_decommission
        self.max_devices = max_devices
        self.listeners: list[Callable[[float], None]] = []
        self.throttle_rate = 0.0
        # Called before a preauthorize takes effect: what happens while the request is on its
        # way (another event handled meanwhile), as on a server that answered slowly.
        self.before_preauthorize: Callable[[], None] | None = None

    @property
    def writes(self) -> int:
        return sum(self.calls[m] for m in WRITES)

    def _enter(self, method: str) -> Failure | None:
        if self.throttle_rate and self._rng.random() < self.throttle_rate:
            for listener in list(self.listeners):
                listener(0.0)  # as the real client: a 429 seen, retried after Retry-After
        return super()._enter(method)

    @contextmanager
    def throttle_listener(self, callback: Callable[[float], None]) -> Iterator[None]:
        self.listeners.append(callback)
        try:
            yield
        finally:
            self.listeners.remove(callback)

    # What `pace()` answers (the port's pacing report); a test sets it to what a client learned.
    pace_report = Pace(None, 0, 0)

    def pace(self) -> Pace:
        return self.pace_report

    def _device(self, device_id: str) -> _Device:
        device = self.devices.get(device_id)
        if device is None:
            raise NotFound(f"device {device_id} not found", service=self.service, status=404)
        return device

    # -- management API ------------------------------------------------------------------
    def preauthorize(self, identity: Mapping[str, str], pubkey: str, *,
                     force: bool = False) -> PreauthResult:
        if self.before_preauthorize is not None:
            hook, self.before_preauthorize = self.before_preauthorize, None
            hook()
        def body() -> PreauthResult:
            pem = normalize_pem(pubkey)
            digest = identity_digest(identity)
            existing = self.by_hash.get(digest)
            if existing is not None and not force:
                return AlreadyExists(self.devices[existing].view(with_sets=False))
            if existing is None:
                device = _Device(str(uuid.uuid4()), dict(identity), AuthStatus.PREAUTHORIZED)
                self.devices[device.id] = device
                self.by_hash[digest] = device.id
            else:
                device = self.devices[existing]
            match = next((s for s in device.sets.values() if s.pubkey == pem), None)
            aset = AuthSet(match.id if match else str(uuid.uuid4()), pem,
                           AuthStatus.PREAUTHORIZED)
            device.sets[aset.id] = aset
            if existing is None:
                device.recompute()  # with force the server does not recompute (a FIXME there)
                return Preauthorized(device.id)  # Location: devices/<the new device's id>
            return Preauthorized(str(uuid.uuid4()))  # with force, not the device's (a quirk)
        return self._call("preauthorize", body)  # type: ignore[return-value]

    def get_device(self, device_id: str) -> MenderDevice:
        return self._call("get_device", lambda: self._device(device_id).view())  # type: ignore[return-value]

    def iter_devices(self, status: AuthStatus | None = None) -> Iterator[MenderDevice]:
        def body() -> list[MenderDevice]:
            found = [d.view() for d in self.devices.values() if status in (None, d.status)]
            return sorted(found, key=lambda d: (d.status.value, d.id))
        yield from self._call("iter_devices", body)  # type: ignore[misc]

    def find_by_identity(self, identity: Mapping[str, str]) -> MenderDevice | None:
        def body() -> MenderDevice | None:
            device_id = self.by_hash.get(identity_digest(identity))
            return None if device_id is None else self.devices[device_id].view()
        return self._call("find_by_identity", body)  # type: ignore[return-value]

    def count(self, status: AuthStatus | None = None) -> int:
        return sum(1 for d in self.devices.values() if status in (None, d.status))

    def set_auth_status(self, device_id: str, auth_id: str, status: AuthStatus) -> None:
        self._call("set_auth_status", lambda: self._set_status(device_id, auth_id, status))

    def _set_status(self, device_id: str, auth_id: str, status: AuthStatus) -> None:
        if status is AuthStatus.PREAUTHORIZED or status is AuthStatus.NOAUTH:
            raise permanent(self.service, "PUT")
        device = self._device(device_id)
        aset = next((s for d in self.devices.values() for s in d.sets.values()
                     if s.id == auth_id), None)
        if aset is None:
            raise NotFound("auth set not found", service=self.service, status=404)
        if auth_id not in device.sets:
            raise permanent(self.service, "PUT")  # dev ID and auth ID mismatch
        if aset.status is status:
            return
        allowed = {AuthStatus.ACCEPTED: (AuthStatus.PENDING, AuthStatus.REJECTED),
                   AuthStatus.REJECTED: (AuthStatus.PENDING, AuthStatus.ACCEPTED),
                   AuthStatus.PENDING: (AuthStatus.ACCEPTED, AuthStatus.REJECTED)}
        if aset.status not in allowed[status]:
            raise permanent(self.service, "PUT")
        if status is AuthStatus.ACCEPTED:
            if 0 <= self.max_devices <= self.count(AuthStatus.ACCEPTED):
                raise PermanentApiError("maximum number of accepted devices reached",
                                        service=self.service, status=422)
            # deviceauth's RejectAuthSetsForDevice (store/mongo/datastore_mongo.go) rejects
            # the other *accepted* sets only: a preauthorized next key stays preauthorized.
            for other in list(device.sets.values()):
                if other.status is AuthStatus.ACCEPTED:
                    device.sets[other.id] = replace(other, status=AuthStatus.REJECTED)
        device.sets[auth_id] = replace(aset, status=status)
        device.recompute()

    def delete_auth_set(self, device_id: str, auth_id: str) -> None:
        def body() -> None:
            device = self.devices.get(device_id)
            aset = device.sets.pop(auth_id, None) if device else None
            if device is None or aset is None:
                return  # the port is idempotent: the client treats the 404 as done
            if aset.status is AuthStatus.PREAUTHORIZED and (
                    self.preauth_delete == "always" or not device.sets):
                self.stranded.extend(device.sets.values())
                self._remove(device)
            else:
                device.recompute()
        self._call("delete_auth_set", body)

    def decommission(self, device_id: str) -> None:
        def body() -> None:
            device = self.devices.get(device_id)
            if device is None:
                return
            if self.async_decommission:
                device.decommissioning = True
            else:
                self._remove(device)
        self._call("decommission", body)

    def settle(self) -> None:
        """Finish asynchronous decommissions (the server's workflow)."""
        for device in [d for d in self.devices.values() if d.decommissioning]:
            self._remove(device)

    def _remove(self, device: _Device) -> None:
        self.devices.pop(device.id, None)
        self.by_hash.pop(identity_digest(device.identity), None)

    # -- device side -----------------------------------------------------------------------
    def device_auth(self, identity: Mapping[str, str], pubkey: str) -> bool:
        """A device's auth request: True (a token) if its key is accepted or preauthorized,
        else a new pending auth set (and a new pending device if the identity is unknown)."""
        with self._lock:
            pem = normalize_pem(pubkey)
            digest = identity_digest(identity)
            device_id = self.by_hash.get(digest)
            if device_id is None:
                device = _Device(str(uuid.uuid4()), dict(identity), AuthStatus.PENDING)
                self.devices[device.id] = device
                self.by_hash[digest] = device.id
            else:
                device = self.devices[device_id]
            if device.decommissioning:
                return False
            if device.broken:
                raise transient(self.service, "auth_requests", 500)
            aset = next((s for s in device.sets.values() if s.pubkey == pem), None)
            if aset is None:
                aset = AuthSet(str(uuid.uuid4()), pem, AuthStatus.PENDING)
                device.sets[aset.id] = aset
                device.recompute()
                return False
            if aset.status is AuthStatus.PREAUTHORIZED:
                # A rotation: the new set is accepted, the one accepted so far rejected.
                for other in list(device.sets.values()):
                    if other.status is AuthStatus.ACCEPTED:
                        device.sets[other.id] = replace(other, status=AuthStatus.REJECTED)
                device.sets[aset.id] = replace(aset, status=AuthStatus.ACCEPTED)
                device.recompute()
                return True
            return aset.status is AuthStatus.ACCEPTED

    def snapshot(self) -> dict[str, dict[str, str]]:
        """identity (as JSON) → {normalized pubkey: status}, to compare end states; a device
        deviceauth could not derive a status for, and stranded sets, show up in it."""
        out = {json.dumps(d.identity, sort_keys=True) + (" BROKEN" if d.broken else ""):
               {s.pubkey: s.status.value for s in d.sets.values()}
               for d in self.devices.values()}
        if self.stranded:
            out["STRANDED"] = {s.pubkey: s.status.value for s in self.stranded}
        return out


class FakeInventory(Faulty):
    """Mender's inventory in memory (bridge.ports.Inventory), over the devices of a FakeMender:
    a record per device, its tags and their ETag (a new one on every write), If-Match (a stale
    one refused), a tags write to a device without a record accepted and dropped, as the
    server does. `freeze()` stops indexing new devices (the workflow lagging) until
    `catch_up()`."""

    service = "mender"

    def __init__(self, mender: FakeMender) -> None:
        super().__init__()
        self.mender = mender
        self.tags: dict[str, dict[str, Tag]] = {}
        self.etags: dict[str, str] = {}
        self.indexed: set[str] | None = None  # None: every Mender device has its record
        # Called before the next tags write takes effect: a person's write meanwhile.
        self.before_write: Callable[[], None] | None = None

    def freeze(self) -> None:
        self.indexed = set(self.mender.devices)

    def catch_up(self) -> None:
        self.indexed = None

    @property
    def writes(self) -> int:
        return self.calls["write_tags"]

    def values(self, device_id: str) -> dict[str, object]:
        return {n: t.value for n, t in self.tags.get(device_id, {}).items()}

    def _record(self, device_id: str) -> InventoryRecord | None:
        device = self.mender.devices.get(device_id)
        if device is None or (self.indexed is not None and device_id not in self.indexed):
            return None
        identity = {**device.identity, "status": device.status.value}
        return InventoryRecord(device_id, identity, dict(self.tags.get(device_id, {})),
                               self.etags.get(device_id))

    def find(self, identity: Mapping[str, str]) -> list[InventoryRecord]:
        def body() -> list[InventoryRecord]:
            found = [self._record(i) for i in list(self.mender.devices)]
            return [r for r in found if r is not None and all(
                r.identity.get(k) == v for k, v in identity.items()) and len(r.identity) ==
                len(identity) + 1]
        return self._call("find", body)  # type: ignore[return-value]

    def get(self, device_id: str) -> InventoryRecord:
        def body() -> InventoryRecord:
            record = self._record(device_id)
            if record is None:
                raise NotFound("Device not found", service=self.service, status=404)
            return record
        return self._call("get", body)  # type: ignore[return-value]

    def write_tags(self, device_id: str, tags: Sequence[Tag], etag: str | None, *,
                   replace: bool) -> bool:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()

        def body() -> bool:
            if self._record(device_id) is None:
                return etag is None  # 200 and nothing written; with If-Match, 412
            if etag is not None and self.etags.get(device_id) != etag:
                return False
            current = {} if replace else dict(self.tags.get(device_id, {}))
            current.update({t.name: t for t in tags})
            if len(current) > 20:
                raise permanent(self.service, "PATCH")
            self.tags[device_id] = current
            self.etags[device_id] = str(uuid.uuid4())
            return True
        return self._call("write_tags", body)  # type: ignore[return-value]

    def iter_records(self, attribute: str) -> Iterator[InventoryRecord]:
        def body() -> list[InventoryRecord]:
            found = [self._record(i) for i in sorted(self.mender.devices)]
            return [r for r in found if r is not None and attribute in r.identity]
        yield from self._call("iter_records", body)  # type: ignore[misc]
