"""The pure core: what must change in Mender for one registry device (DESIGN.md §3).

`plan` compares a registry device with the Mender device of the same identity and returns
the actions that make Mender match the registry. No I/O, no clock except `now`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bridge.actions import Action, Kind, Reason
from bridge.errors import IdentityError
from bridge.identity import DEFAULT_TEMPLATE, IdentityTemplate, describe
from bridge.keys import DEFAULT_POLICY, KeyPolicy, usable_keys
from bridge.model import (
    AuthSet,
    AuthStatus,
    MenderDevice,
    OnBlocked,
    OnDelete,
    PublicKey,
    RegistryDevice,
)

__all__ = ["Action", "Kind", "Policy", "Reason", "create", "plan"]

_DEFAULT_TEMPLATE = IdentityTemplate.parse(DEFAULT_TEMPLATE)


@dataclass(frozen=True)
class Policy:
    template: IdentityTemplate = _DEFAULT_TEMPLATE
    on_delete: OnDelete = OnDelete.DECOMMISSION
    on_blocked: OnBlocked = OnBlocked.IGNORE
    revoke_removed_keys: bool = True
    key_policy: KeyPolicy = DEFAULT_POLICY

    def __post_init__(self) -> None:
        # A typo ("rejct") fails here, at construction, not silently at the first event.
        object.__setattr__(self, "on_delete", OnDelete(self.on_delete))
        object.__setattr__(self, "on_blocked", OnBlocked(self.on_blocked))


_LIVE = (AuthStatus.PENDING, AuthStatus.ACCEPTED)


def _nothing(device: str, reason: Reason, detail: str = "", *, mender_id: str | None = None,
             auth_id: str | None = None) -> Action:
    return Action(Kind.NOTHING, device, mender_id=mender_id, auth_id=auth_id, reason=reason,
                  detail=detail or reason.value)


def create(device: str, identity: Mapping[str, str], keys: list[PublicKey]) -> list[Action]:
    """A new Mender device, preauthorized with its first usable key only: deviceauth cannot
    derive the status of a device with two preauthorized sets (docs/mender-api.md#auth-sets)."""
    return [Action(Kind.PREAUTHORIZE, device, identity, keys[0].pem, detail=keys[0].describe())]


def plan(
    registry: RegistryDevice | None,
    mender: MenderDevice | None,
    policy: Policy,
    now: datetime,
    *,
    prune: bool = False,
) -> list[Action]:
    """Actions for one device. `prune`: a registry device that is absent was deleted."""
    if registry is None:
        return [] if mender is None else _absent(mender, policy, prune)
    label = str(registry)
    try:
        identity = policy.template.render(registry)
    except IdentityError as exc:
        return [_nothing(label, Reason.NO_IDENTITY, str(exc))]
    keys, problems = usable_keys(registry.credentials, now, policy.key_policy)
    notes = [_nothing(label, Reason.KEY_PROBLEM, f"credential {p.number}: {p.reason}")
             for p in problems]
    if mender is not None and not policy.template.follows(mender.identity_data):
        return [*notes, _nothing(label, Reason.NOT_MANAGED, mender_id=mender.id)]
    if registry.blocked:
        return notes + _blocked(label, mender, policy)
    if mender is None:
        if not keys:
            return [*notes, _nothing(label, Reason.NO_USABLE_CREDENTIAL)]
        return notes + create(label, identity, keys)
    if mender.decommissioning:
        return [*notes, _nothing(label, Reason.DECOMMISSIONING, mender_id=mender.id)]
    if mender.auth_sets == () and keys:
        # A device without any auth set is a half-made one (Mender 4.1.3 answers 500 when its
        # workflow fails after writing the device): its identity never reaches inventory, so
        # no later delete could find it. Made again, it is made whole.
        return [*notes, Action(Kind.DECOMMISSION, label, mender_id=mender.id,
                               detail="device without any auth set: made again"),
                *create(label, identity, keys)]
    return notes + _present(label, identity, keys, mender, policy)


def _present(label: str, identity: Mapping[str, str], keys: list[PublicKey],
             mender: MenderDevice, policy: Policy) -> list[Action]:
    sets = mender.auth_sets or ()
    wanted = {key.pem for key in keys}
    actions: list[Action] = []
    for aset in sets:
        if aset.pubkey in wanted:
            continue
        if aset.status is AuthStatus.PENDING:
            actions.append(_nothing(label, Reason.REVIEW, "pending auth set whose key matches no "
                                    "usable registry credential", mender_id=mender.id,
                                    auth_id=aset.id))
        if not policy.revoke_removed_keys:
            continue
        if aset.status in _LIVE:
            actions.append(_revoke(Kind.REJECT, label, mender, aset))
        elif aset.status is AuthStatus.PREAUTHORIZED:
            # Removing it removes the device (DeleteAuthSet): it is created again from the
            # registry's keys right after, or once its decommissioning ends.
            actions.append(_drop_preauthorized(label, mender, aset, "key no longer in the "
                                               "registry"))
            return actions + (create(label, identity, keys) if keys else
                              [_nothing(label, Reason.NO_USABLE_CREDENTIAL)])
    actions += _wanted(label, identity, keys, mender)
    if not any(a.writes or a.reason is Reason.CONFLICT for a in actions):
        actions.append(_nothing(label, Reason.IN_SYNC, mender_id=mender.id))
    return actions


def _wanted(label: str, identity: Mapping[str, str], keys: list[PublicKey],
            mender: MenderDevice) -> list[Action]:
    """The registry's keys against the device's auth sets: accept a key in use, add one
    missing key when none is waiting preauthorized (Mender holds one), report a key a person
    rejected while no other key of the device is admitted."""
    sets = mender.auth_sets or ()
    by_key = {aset.pubkey: aset for aset in sets}
    wanted = {key.pem for key in keys}
    admitted = {a.status for a in sets if a.pubkey in wanted} & {AuthStatus.ACCEPTED,
                                                                  AuthStatus.PREAUTHORIZED}
    actions: list[Action] = []
    missing = [key for key in keys if by_key.get(key.pem) is None
               or by_key[key.pem].status is AuthStatus.NOAUTH]
    if missing and AuthStatus.PREAUTHORIZED not in admitted:
        actions.append(Action(Kind.PREAUTHORIZE_FORCE, label, identity, missing[0].pem,
                              mender_id=mender.id, detail=missing[0].describe()))
    for key in keys:
        match = by_key.get(key.pem)
        if match is not None and match.status is AuthStatus.PENDING:
            actions.append(Action(Kind.ACCEPT, label, mender_id=mender.id, auth_id=match.id,
                                  detail=key.describe()))
        elif match is not None and match.status is AuthStatus.REJECTED and not admitted:
            actions.append(_nothing(label, Reason.CONFLICT, f"auth set {match.id} for "
                                    f"{key.describe()} was rejected in Mender",
                                    mender_id=mender.id, auth_id=match.id))
    if not keys:
        actions.append(_nothing(label, Reason.NO_USABLE_CREDENTIAL, mender_id=mender.id))
    return actions


def _revoke(kind: Kind, label: str, mender: MenderDevice, aset: AuthSet) -> Action:
    return Action(kind, label, mender_id=mender.id, auth_id=aset.id,
                  detail=f"{aset.status.value} auth set {aset.id}: key no longer in the registry")


def _drop_preauthorized(label: str, mender: MenderDevice, aset: AuthSet, why: str) -> Action:
    """Mender cannot move a preauthorized set to rejected; deleting it deletes the device, and
    on Mender 4.1.3 leaves the device's other auth sets behind without a device, after which
    the device cannot authenticate. Alone, the set is deleted; beside others, the device is
    decommissioned (which removes all its sets) (docs/mender-api.md#auth-sets)."""
    if len(mender.auth_sets or ()) <= 1:
        return Action(Kind.DELETE_AUTH_SET, label, mender_id=mender.id, auth_id=aset.id,
                      detail=f"preauthorized auth set {aset.id}: {why}")
    return Action(Kind.DECOMMISSION, label, mender_id=mender.id,
                  detail=f"preauthorized auth set {aset.id}: {why}; decommissioned, as deleting "
                         "that set would strand the device's other sets")


def _blocked(label: str, mender: MenderDevice | None, policy: Policy) -> list[Action]:
    if policy.on_blocked is not OnBlocked.REJECT or mender is None:
        return [_nothing(label, Reason.BLOCKED, "blocked in the registry")]
    sets = mender.auth_sets or ()
    preauthorized = [a for a in sets if a.status is AuthStatus.PREAUTHORIZED]
    if preauthorized:
        return [_drop_preauthorized(label, mender, preauthorized[0], "blocked in the registry")]
    actions = [Action(Kind.REJECT, label, mender_id=mender.id, auth_id=aset.id,
                      detail="blocked in the registry") for aset in sets if aset.status in _LIVE]
    return actions or [_nothing(label, Reason.BLOCKED, "blocked; auth sets already rejected")]


def _absent(mender: MenderDevice, policy: Policy, prune: bool) -> list[Action]:
    if not policy.template.follows(mender.identity_data):
        return [_nothing(f"mender:{mender.id}", Reason.NOT_MANAGED, mender_id=mender.id)]
    label = describe(mender.identity_data)
    if mender.decommissioning:
        return [_nothing(label, Reason.DECOMMISSIONING, mender_id=mender.id)]
    if prune and policy.on_delete is OnDelete.DECOMMISSION:
        return [Action(Kind.DECOMMISSION, label, mender_id=mender.id,
                       detail="device no longer in the registry")]
    actions = [_nothing(label, Reason.REVIEW, "pending auth set whose key matches no registry "
                        "credential", mender_id=mender.id, auth_id=aset.id)
               for aset in mender.auth_sets or () if aset.status is AuthStatus.PENDING]
    # Reached with on_delete=decommission only without --prune.
    hint = "; --prune would decommission it" if policy.on_delete is OnDelete.DECOMMISSION else ""
    detail = "not in the registry" + hint
    return [*actions, _nothing(label, Reason.NOT_IN_REGISTRY, detail, mender_id=mender.id)]
