"""`keys check`'s answer: does one device key match a usable registry credential of the device
and an admitted auth set of its Mender device? A service question (`Bridge.check_key` asks
it), answered with the core's one credential rule (`bridge.keys.find_credential`, the rule
`usable_keys` applies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from bridge.errors import NotFound
from bridge.identity import IdentityTemplate
from bridge.keys import DEFAULT_POLICY, CredentialMatch, KeyPolicy, find_credential, normalize
from bridge.model import AuthStatus, RegistryRef
from bridge.ports import Mender, Registry

_ADMITTED = (AuthStatus.ACCEPTED, AuthStatus.PREAUTHORIZED)


@dataclass(frozen=True)
class KeyCheck:
    """What `keys check` prints, for one registry: every field the text and JSON need."""

    device_id: str
    ref: RegistryRef
    found: bool  # the registry has the device
    credentials: int = 0  # how many credentials it has
    credential: CredentialMatch | None = None  # the one holding the key (numbered from 1)
    blocked: bool = False
    identity: Mapping[str, str] | None = None  # its Mender identity (the template, rendered)
    mender_id: str | None = None
    mender_status: AuthStatus | None = None  # the Mender device's status
    auth_set_id: str | None = None  # the auth set holding the key
    auth_status: AuthStatus | None = None

    @property
    def registry_ok(self) -> bool:
        return self.found and not self.blocked and bool(self.credential
                                                        and self.credential.usable)

    @property
    def mender_ok(self) -> bool:
        return self.auth_status in _ADMITTED

    @property
    def ok(self) -> bool:
        return self.registry_ok and self.mender_ok


def check_key(registry: Registry, mender: Mender, ref: RegistryRef, device_id: str,
              public_pem: str, template: IdentityTemplate, *,
              policy: KeyPolicy = DEFAULT_POLICY, now: datetime | None = None) -> KeyCheck:
    """The key (any PEM public key or certificate) against the device in `ref` and the
    Mender device with its templated identity."""
    key = normalize(public_pem, policy=policy)
    try:
        device = registry.get_device(ref, device_id)
    except NotFound:
        return KeyCheck(device_id, ref, found=False)
    match = find_credential(device.credentials, key, now, policy)
    identity = template.render(device)
    found = mender.find_by_identity(identity)
    result = KeyCheck(device_id, ref, True, len(device.credentials), match, device.blocked,
                      identity)
    if found is None:
        return result
    # Mender stores keys normalized and matches them by string equality, as reconcile does.
    auth = next((a for a in found.auth_sets or () if a.pubkey == key.pem), None)
    return replace(result, mender_id=found.id, mender_status=found.status,
                   auth_set_id=auth.id if auth else None,
                   auth_status=auth.status if auth else None)
