"""Property: whatever the registry and Mender states, one sync leaves nothing more to write,
Mender never holds two devices for one identity, and no device ends in a state deviceauth
cannot handle (two preauthorized or accepted sets, sets stranded without their device)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.model import AuthStatus, Credential, RegistryRef
from bridge.reconcile import Policy, plan
from bridge.sync import Bridge
from tests.core.credentials import credential, mender_pem
from tests.fakes import FakeMender, FakeRegistry

REF = RegistryRef("project-1", "l1", "reg")
ID = {"google_iot_id": "dev1"}
POOL = [("ec", 0), ("ec", 1), ("rsa", 0), ("ec", 2)]
EXPIRED = datetime(2020, 1, 1, tzinfo=UTC)
STATUSES = [AuthStatus.PENDING, AuthStatus.PREAUTHORIZED, AuthStatus.ACCEPTED,
            AuthStatus.REJECTED]

registry_keys = st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=3,
                         unique_by=lambda t: t[0])
# Only states deviceauth allows: at most one accepted and one preauthorized set.
mender_sets = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(STATUSES)), max_size=4,
                       unique_by=lambda t: t[0]).filter(
    lambda sets: all([s for _, s in sets].count(x) <= 1
                     for x in (AuthStatus.ACCEPTED, AuthStatus.PREAUTHORIZED)))


def seed_mender(mender: FakeMender, sets: list[tuple[int, AuthStatus]]) -> None:
    for i, (index, status) in enumerate(sets):
        pem = mender_pem(*POOL[index])
        if status is AuthStatus.PREAUTHORIZED:
            mender.preauthorize(ID, pem, force=i > 0)
            continue
        mender.device_auth(ID, pem)  # a pending set (and device if new)
        if status is not AuthStatus.PENDING:
            device = mender.find_by_identity(ID)
            assert device is not None and device.auth_sets is not None
            aset = next(s for s in device.auth_sets if s.pubkey == pem)
            mender.set_auth_status(device.id, aset.id, status)


@settings(max_examples=120, deadline=None)
@given(registry_keys, st.booleans(), st.booleans(), mender_sets,
       st.sampled_from(["always", "only"]), st.sampled_from(["ignore", "reject"]))
def test_one_sync_converges(keys: list[tuple[int, bool]], present: bool, blocked: bool,
                            sets: list[tuple[int, AuthStatus]], semantics: str,
                            on_blocked: str) -> None:
    registry, mender = FakeRegistry(), FakeMender(preauth_delete=semantics)
    creds: tuple[Credential, ...] = tuple(
        credential(*POOL[i], expires_at=EXPIRED if expired else None) for i, expired in keys)
    if present:
        registry.create(REF, "dev1", creds, blocked=blocked)
    seed_mender(mender, sets)
    policy = Policy(on_blocked=on_blocked)
    bridge = Bridge(registry, mender, policy)
    report = (bridge.sync_device(REF, "dev1") if present
              else bridge.handle_deleted(REF, "dev1", None))
    assert not report.failed
    current = mender.find_by_identity(ID)
    device = registry.devices.get(REF, {}).get("dev1")
    left = plan(device, current, policy, datetime.now(UTC), prune=not present)
    assert [a for a in left if a.writes] == []
    assert len(mender.devices) == len(mender.by_hash) <= 1
    # Nothing the bridge did left a device deviceauth cannot read, or sets without a device.
    assert not any(d.broken for d in mender.devices.values()) and mender.stranded == []
    if present and not blocked and current is not None and current.auth_sets is not None:
        usable = {mender_pem(*POOL[i]) for i, expired in keys if not expired}
        live = {s.pubkey for s in current.auth_sets
                if s.status in (AuthStatus.ACCEPTED, AuthStatus.PREAUTHORIZED,
                                AuthStatus.PENDING)}
        assert live <= usable  # no removed or expired key keeps access
