"""The truth table (README 'What happens in Mender'), one parametrised case per row, on the
pure planner. Mender states are those deviceauth allows: at most one accepted and one
preauthorized set per device."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bridge.identity import IdentityTemplate
from bridge.model import AuthSet, AuthStatus, Credential, MenderDevice, RegistryDevice, RegistryRef
from bridge.reconcile import Kind, Policy, Reason, plan
from tests.core.credentials import credential, mender_pem

NOW = datetime(2026, 6, 1, tzinfo=UTC)
REF = RegistryRef("project-1", "us-central1", "reg")
A = mender_pem("ec", 0)
B = mender_pem("rsa", 0)
C = mender_pem("ec", 1)
DEFAULT = Policy()


def reg(*creds: Credential, blocked: bool = False) -> RegistryDevice:
    return RegistryDevice(REF, "dev1", "123", creds, {}, blocked)


def men(*sets: tuple[str, AuthStatus], identity: dict[str, object] | None = None,
        decommissioning: bool = False) -> MenderDevice:
    auth = tuple(AuthSet(f"as{i}", pem, status) for i, (pem, status) in enumerate(sets))
    return MenderDevice("m1", identity or {"google_iot_id": "dev1"},
                        AuthStatus.PREAUTHORIZED, decommissioning, auth)


EC = credential("ec", 0)
RSA = credential("rsa", 0)
EC_CERT = credential("ec", 1, x509_cert=True)
EXPIRED = credential("ec", 1, expires_at=datetime(2020, 1, 1, tzinfo=UTC))
WEAK = credential("rsa", 9, bits=1024)
P, AC, PE, RJ = (AuthStatus.PREAUTHORIZED, AuthStatus.ACCEPTED, AuthStatus.PENDING,
                 AuthStatus.REJECTED)
N = Kind.NOTHING

ROWS = [
    # row 1: present, K not empty, absent → preauthorize the first key only: deviceauth
    # cannot derive the status of a device with two preauthorized sets (getDeviceStatus)
    ("new device, two keys", reg(RSA, EC_CERT), None, DEFAULT, False,
     [(Kind.PREAUTHORIZE, None, B)]),
    # row 2: auth set for k∈K preauthorized or accepted → nothing
    ("preauthorized", reg(EC), men((A, P)), DEFAULT, False, [(N, Reason.IN_SYNC, None)]),
    ("accepted", reg(EC), men((A, AC)), DEFAULT, False, [(N, Reason.IN_SYNC, None)]),
    # row 3: pending (booted before preauthorization) → accept
    ("pending", reg(EC), men((A, PE)), DEFAULT, False, [(Kind.ACCEPT, None, None)]),
    # a device without any auth set (4.1.3's half-made device) is made again
    ("device without auth sets", reg(EC), men(), DEFAULT, False,
     [(Kind.DECOMMISSION, None, None), (Kind.PREAUTHORIZE, None, A)]),
    # row 4: rejected → nothing, conflict
    ("rejected", reg(EC), men((A, RJ)), DEFAULT, False, [(N, Reason.CONFLICT, None)]),
    # row 5: no auth set for some k∈K (key added) → preauthorize it with force
    ("key added", reg(EC, RSA), men((A, AC)), DEFAULT, False,
     [(Kind.PREAUTHORIZE_FORCE, None, B)]),
    # ... one at a time: while one waits preauthorized, the next key waits too
    ("second key waits", reg(EC, RSA, EC_CERT), men((A, AC), (B, P)), DEFAULT, False,
     [(N, Reason.IN_SYNC, None)]),
    ("not yet connected, key added", reg(EC, RSA), men((A, P)), DEFAULT, False,
     [(N, Reason.IN_SYNC, None)]),
    # a registry key Mender rejected when the device rotated to another one is no conflict
    ("rotated away", reg(EC, RSA), men((A, RJ), (B, AC)), DEFAULT, False,
     [(N, Reason.IN_SYNC, None)]),
    ("rotating now", reg(EC, RSA), men((A, AC), (B, PE)), DEFAULT, False,
     [(Kind.ACCEPT, None, None)]),
    # row 6: auth set whose key is not in K → reject if pending/accepted, delete if preauth
    ("removed key accepted", reg(RSA), men((B, P), (A, AC)), DEFAULT, False,
     [(Kind.REJECT, None, None)]),
    ("removed key pending", reg(RSA), men((B, AC), (A, PE)), DEFAULT, False,
     [(N, Reason.REVIEW, None), (Kind.REJECT, None, None)]),
    # a preauthorized set cannot be rejected, and deleting it deletes its device: alone it is
    # deleted, beside other sets the device is decommissioned (4.1.3 would strand them); then
    # the device is created again from the registry's keys
    ("removed key preauthorized", reg(RSA), men((A, P)), DEFAULT, False,
     [(Kind.DELETE_AUTH_SET, None, None), (Kind.PREAUTHORIZE, None, B)]),
    ("removed key preauthorized beside others", reg(RSA), men((B, AC), (A, P)), DEFAULT,
     False, [(Kind.DECOMMISSION, None, None), (Kind.PREAUTHORIZE, None, B)]),
    ("expired key revoked", reg(EC, EXPIRED), men((A, P), (C, AC)), DEFAULT, False,
     [(N, Reason.KEY_PROBLEM, None), (Kind.REJECT, None, None)]),
    ("revocation off", reg(RSA), men((B, P), (A, AC)),
     replace(DEFAULT, revoke_removed_keys=False), False, [(N, Reason.IN_SYNC, None)]),
    # row 7: blocked → nothing by default; on_blocked=reject rejects its auth sets
    ("blocked", reg(EC, blocked=True), men((A, AC)), DEFAULT, False,
     [(N, Reason.BLOCKED, None)]),
    ("blocked, absent", reg(EC, blocked=True), None, DEFAULT, False,
     [(N, Reason.BLOCKED, None)]),
    ("blocked, reject", reg(EC, RSA, blocked=True), men((A, AC), (B, PE)),
     replace(DEFAULT, on_blocked="reject"), False,
     [(Kind.REJECT, None, None), (Kind.REJECT, None, None)]),
    ("blocked, reject, preauthorized", reg(EC, RSA, blocked=True), men((A, AC), (B, P)),
     replace(DEFAULT, on_blocked="reject"), False, [(Kind.DECOMMISSION, None, None)]),
    # row 8: K empty, absent → nothing, "no usable credential"; key problems reported
    ("no usable credential", reg(EXPIRED, WEAK), None, DEFAULT, False,
     [(N, Reason.KEY_PROBLEM, None), (N, Reason.KEY_PROBLEM, None),
      (N, Reason.NO_USABLE_CREDENTIAL, None)]),
    ("no credential at all", reg(), None, DEFAULT, False,
     [(N, Reason.NO_USABLE_CREDENTIAL, None)]),
    # row 9: deleted / absent with prune → decommission (on_delete)
    ("deleted, prune", None, men((A, AC)), DEFAULT, True, [(Kind.DECOMMISSION, None, None)]),
    ("deleted, on_delete=ignore", None, men((A, AC)), replace(DEFAULT, on_delete="ignore"),
     True, [(N, Reason.NOT_IN_REGISTRY, None)]),
    ("absent, no prune", None, men((A, AC)), DEFAULT, False,
     [(N, Reason.NOT_IN_REGISTRY, None)]),
    ("already decommissioning", None, men((A, AC), decommissioning=True), DEFAULT, True,
     [(N, Reason.DECOMMISSIONING, None)]),
    # row 10: Mender device whose identity does not follow the template → never touched
    ("foreign identity", None, men((A, PE), identity={"mac": "00:11"}), DEFAULT, True,
     [(N, Reason.NOT_MANAGED, None)]),
    ("foreign identity, numeric", None, men((A, AC), identity={"google_iot_id": 7}),
     DEFAULT, True, [(N, Reason.NOT_MANAGED, None)]),
    ("neither side", None, None, DEFAULT, True, []),
]


@pytest.mark.parametrize(("registry", "mender", "policy", "prune", "expected"),
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_truth_table(registry: RegistryDevice | None, mender: MenderDevice | None,
                     policy: Policy, prune: bool,
                     expected: list[tuple[Kind, Reason | None, str | None]]) -> None:
    actions = plan(registry, mender, policy, NOW, prune=prune)
    assert [(a.kind, a.reason if a.kind is Kind.NOTHING else None) for a in actions] == [
        (kind, reason) for kind, reason, _ in expected]
    for action, (_, _, pubkey) in zip(actions, expected, strict=True):
        if pubkey is not None:
            assert action.pubkey == pubkey
            assert action.identity == {"google_iot_id": "dev1"}


def test_revocations_target_the_removed_sets() -> None:
    actions = plan(reg(RSA), men((B, P), (A, AC)), DEFAULT, NOW)
    assert [(a.kind, a.mender_id, a.auth_id) for a in actions] == [(Kind.REJECT, "m1", "as1")]


def test_pending_set_of_a_usable_key_is_accepted_by_id() -> None:
    (action,) = plan(reg(EC, RSA), men((B, AC), (A, PE)), DEFAULT, NOW)
    assert (action.kind, action.auth_id) == (Kind.ACCEPT, "as1")


def test_key_problems_name_the_credential_and_reason() -> None:
    actions = plan(reg(EC, WEAK), None, DEFAULT, NOW)
    problems = [a.detail for a in actions if a.reason is Reason.KEY_PROBLEM]
    # The weak key is the second credential: numbered from 1, as the keys commands number them.
    assert problems == ["credential 2: RSA key of 1024 bits is below the minimum of 2048"]
    assert [a.kind for a in actions if a.writes] == [Kind.PREAUTHORIZE]


def test_expired_certificate_is_not_sent() -> None:
    cert = credential("ec", 1, x509_cert=True)
    later = datetime(2101, 1, 1, tzinfo=UTC)
    actions = plan(reg(cert), None, DEFAULT, later)
    assert [a.reason for a in actions] == [Reason.KEY_PROBLEM, Reason.NO_USABLE_CREDENTIAL]


def test_identity_follows_the_template() -> None:
    policy = replace(DEFAULT, template=IdentityTemplate.parse(
        "device={device.id},site={metadata[site]}"))
    device = replace(reg(EC), metadata={"site": "lyon"})
    (action,) = plan(device, None, policy, NOW)
    assert action.identity == {"device": "dev1", "site": "lyon"}
    (missing,) = plan(reg(EC), None, policy, NOW)
    assert missing.reason is Reason.NO_IDENTITY and "site" in missing.detail


def test_decommissioning_device_is_left_alone_while_the_workflow_runs() -> None:
    (action,) = plan(reg(EC), men((A, AC), decommissioning=True), DEFAULT, NOW)
    assert action.reason is Reason.DECOMMISSIONING


def test_absent_device_pending_sets_need_a_person() -> None:
    actions = plan(None, men((A, PE)), DEFAULT, NOW)
    assert [a.reason for a in actions] == [Reason.REVIEW, Reason.NOT_IN_REGISTRY]


def test_an_absent_device_says_whether_prune_would_decommission_it() -> None:
    (kept,) = plan(None, men((A, AC)), DEFAULT, NOW)
    assert kept.detail == "not in the registry; --prune would decommission it"
    (ignored,) = plan(None, men((A, AC)), replace(DEFAULT, on_delete="ignore"), NOW, prune=True)
    assert ignored.detail == "not in the registry"
