"""The service over the stateful fakes: events in any order and any number, rotation,
concurrency, failures; each case ends in the expected Mender state with nothing duplicated."""

from __future__ import annotations

import threading

import pytest

from bridge.errors import PermanentApiError, TransientApiError
from bridge.events import ChangeKind, DeviceChange
from bridge.model import AuthStatus, Credential, RegistryRef
from bridge.reconcile import Policy
from bridge.sync import Bridge, PruneMode
from tests.core.credentials import credential, mender_pem, past
from tests.fakes import FakeMender, FakeRegistry

REF = RegistryRef("project-1", "us-central1", "reg")
ID = {"google_iot_id": "dev1"}


def Change(kind: str, ref: RegistryRef, device_id: str | None, num_id: str | None = None,
           update_mask: tuple[str, ...] | None = None) -> DeviceChange:
    return DeviceChange(ChangeKind(kind), ref, device_id, num_id, update_mask)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def mender() -> FakeMender:
    return FakeMender()


def bridge_of(registry: FakeRegistry, mender: FakeMender, **policy: object) -> Bridge:
    return Bridge(registry, mender, Policy(**policy), concurrency=4)  # type: ignore[arg-type]


def keys_of(mender: FakeMender, identity: dict[str, str] = ID) -> dict[str, str]:
    device = mender.find_by_identity(identity)
    assert device is not None and device.auth_sets is not None
    return {s.pubkey: s.status.value for s in device.auth_sets}


def test_create_event_common_case_is_two_remote_calls(registry: FakeRegistry,
                                                       mender: FakeMender) -> None:
    registry.create(REF, "dev1", (credential("ec"),))
    report = bridge_of(registry, mender).handle_change(Change("create", REF, "dev1"))
    assert registry.total_calls + mender.total_calls == 2
    assert [(o.action, o.status) for o in report.outcomes] == [("preauthorize", "done")]
    assert keys_of(mender) == {mender_pem("ec"): "preauthorized"}


def test_duplicate_events_change_nothing(registry: FakeRegistry, mender: FakeMender) -> None:
    registry.create(REF, "dev1", (credential("ec"), credential("rsa")))
    bridge = bridge_of(registry, mender)
    bridge.sync_device(REF, "dev1")
    writes, state = mender.writes, mender.snapshot()
    again = bridge.sync_device(REF, "dev1")
    assert mender.writes == writes + 1  # the optimistic preauthorize, answered 409
    assert mender.snapshot() == state and len(mender.devices) == 1
    assert again.summary()["done"] == 0 and again.summary()["unchanged"] == 1


def test_irrelevant_update_needs_no_call(registry: FakeRegistry, mender: FakeMender) -> None:
    bridge = bridge_of(registry, mender)
    report = bridge.handle_change(Change("update", REF, "dev1", update_mask=("log_level",)))
    assert registry.total_calls + mender.total_calls == 0
    assert report.outcomes[0].status == "skipped"
    registry.create(REF, "dev1", (credential("ec"),))
    bridge.handle_change(Change("update", REF, "dev1", update_mask=("credentials",)))
    assert keys_of(mender) == {mender_pem("ec"): "preauthorized"}


def test_delete_before_create_leaves_nothing(registry: FakeRegistry, mender: FakeMender) -> None:
    device = registry.create(REF, "dev1", (credential("ec"),))
    registry.delete(REF, "dev1")
    bridge = bridge_of(registry, mender)
    bridge.handle_change(Change("delete", REF, "dev1", device.num_id))
    report = bridge.handle_change(Change("create", REF, "dev1", device.num_id))
    assert mender.devices == {} and not report.failed


def test_delete_decommissions_and_a_recreated_device_stays(registry: FakeRegistry,
                                                          mender: FakeMender) -> None:
    device = registry.create(REF, "dev1", (credential("ec"),))
    bridge = bridge_of(registry, mender)
    bridge.sync_device(REF, "dev1")
    registry.delete(REF, "dev1")
    registry.create(REF, "dev1", (credential("ec"),))  # re-created before the delete arrives
    bridge.handle_deleted(REF, "dev1", device.num_id)
    assert keys_of(mender) == {mender_pem("ec"): "preauthorized"}
    registry.delete(REF, "dev1")
    report = bridge.handle_deleted(REF, "dev1", device.num_id)
    assert mender.devices == {} and report.outcomes[0].action == "decommission"


def test_concurrent_syncs_of_one_device(registry: FakeRegistry, mender: FakeMender) -> None:
    registry.create(REF, "dev1", (credential("ec"), credential("rsa"), credential("ec", 1)))
    bridge = bridge_of(registry, mender)
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            bridge.sync_device(REF, "dev1")
        except BaseException as exc:  # collected: an exception in a thread is otherwise lost
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(mender.devices) == 1
    # One preauthorized key: the others wait until the device has used it (one at a time).
    assert keys_of(mender) == {mender_pem("ec"): "preauthorized"}


def test_device_that_boots_before_preauthorization(registry: FakeRegistry,
                                                  mender: FakeMender) -> None:
    assert mender.device_auth(ID, mender_pem("ec")) is False  # pending in Mender
    registry.create(REF, "dev1", (credential("ec"),))
    report = bridge_of(registry, mender).sync_device(REF, "dev1")
    assert [o.action for o in report.outcomes if o.status == "done"] == ["accept"]
    assert keys_of(mender) == {mender_pem("ec"): "accepted"}
    assert mender.device_auth(ID, mender_pem("ec")) is True and len(mender.devices) == 1


def test_rotation_adds_then_removes_a_key(registry: FakeRegistry, mender: FakeMender) -> None:
    old, new = credential("ec"), credential("rsa", x509_cert=True)
    registry.create(REF, "dev1", (old,))
    bridge = bridge_of(registry, mender)
    bridge.sync_device(REF, "dev1")
    assert mender.device_auth(ID, mender_pem("ec")) is True  # in use
    registry.update(REF, "dev1", credentials=(old, new))
    bridge.handle_change(Change("update", REF, "dev1", update_mask=("credentials",)))
    assert keys_of(mender) == {mender_pem("ec"): "accepted", mender_pem("rsa"): "preauthorized"}
    registry.update(REF, "dev1", credentials=(new,))
    bridge.handle_change(Change("update", REF, "dev1", update_mask=("credentials",)))
    assert keys_of(mender) == {mender_pem("ec"): "rejected", mender_pem("rsa"): "preauthorized"}
    assert mender.device_auth(ID, mender_pem("rsa")) is True
    assert mender.device_auth(ID, mender_pem("ec")) is False and len(mender.devices) == 1


@pytest.mark.parametrize("semantics", ["always", "only"])
def test_removed_preauthorized_key_is_revoked(registry: FakeRegistry, semantics: str) -> None:
    mender = FakeMender(preauth_delete=semantics)
    registry.create(REF, "dev1", (credential("ec"), credential("rsa")))
    bridge = bridge_of(registry, mender)
    bridge.sync_device(REF, "dev1")
    registry.update(REF, "dev1", credentials=(credential("rsa"),))
    bridge.sync_device(REF, "dev1")
    assert keys_of(mender) == {mender_pem("rsa"): "preauthorized"}
    assert len(mender.devices) == 1


def test_expired_credential_is_revoked(registry: FakeRegistry, mender: FakeMender) -> None:
    registry.create(REF, "dev1", (credential("ec"), credential("rsa")))
    bridge = bridge_of(registry, mender)
    bridge.sync_device(REF, "dev1")
    mender.device_auth(ID, mender_pem("rsa"))
    registry.update(REF, "dev1", credentials=(credential("ec"),
                                              credential("rsa", expires_at=past())))
    report = bridge.sync_device(REF, "dev1")
    assert keys_of(mender)[mender_pem("rsa")] == "rejected"
    assert any(o.action == "nothing" and "expired" in o.detail for o in report.outcomes)


def test_transient_error_escapes_the_event_path(registry: FakeRegistry,
                                                mender: FakeMender) -> None:
    registry.create(REF, "dev1", (credential("ec"),))
    bridge = bridge_of(registry, mender)
    mender.fail_next("preauthorize", after=True)  # a 5xx after the server wrote the device
    with pytest.raises(TransientApiError):
        bridge.sync_device(REF, "dev1")
    report = bridge.sync_device(REF, "dev1")  # the redelivery
    assert not report.failed and keys_of(mender) == {mender_pem("ec"): "preauthorized"}


def fleet(registry: FakeRegistry, size: int) -> dict[str, tuple[Credential, ...]]:
    devices = {}
    for i in range(size):
        creds = (credential("ec", i % 5),) if i % 3 else (credential("rsa", i % 2),
                                                           credential("ec", 7, x509_cert=True))
        registry.create(REF, f"dev{i}", creds)
        devices[f"dev{i}"] = creds
    return devices


def test_backfill_with_ten_percent_transient_failures(registry: FakeRegistry) -> None:
    mender = FakeMender(fail_rate=0.1, seed=7)
    fleet(registry, 120)
    bridge = Bridge(registry, mender, Policy(), concurrency=8)
    runs = [bridge.backfill([REF]) for _ in range(30)]
    clean = next(i for i, r in enumerate(runs) if not r.failed)
    assert runs[0].failed and clean > 0  # failures happened, and re-runs repaired them
    mender.fail_rate = 0.0
    assert len(mender.devices) == 120 and mender.count(AuthStatus.PREAUTHORIZED) == 120
    for i in range(120):  # one preauthorized key each: Mender cannot hold two
        assert len(keys_of(mender, {"google_iot_id": f"dev{i}"})) == 1


def test_resync_makes_no_writes(registry: FakeRegistry, mender: FakeMender) -> None:
    fleet(registry, 30)
    bridge = bridge_of(registry, mender)
    first = bridge.backfill([REF])
    assert first.summary()["done"] == 30 and mender.writes == 30  # one request per device
    calls = dict(mender.calls)
    second = bridge.backfill([REF])
    assert mender.writes == 30 and not second.changed
    assert {k: v - calls.get(k, 0) for k, v in mender.calls.items()} == {
        "preauthorize": 0, "iter_devices": 1}


def test_dry_run_plans_without_writing(registry: FakeRegistry, mender: FakeMender) -> None:
    fleet(registry, 6)
    report = bridge_of(registry, mender).backfill([REF], dry_run=True)
    assert mender.writes == 0 and report.summary()["planned"] == 6


def test_prune_decommissions_only_template_devices(registry: FakeRegistry,
                                                   mender: FakeMender) -> None:
    mender.preauthorize({"google_iot_id": "gone"}, mender_pem("ec", 2))
    mender.preauthorize({"mac": "00:11"}, mender_pem("ec", 3))
    mender.device_auth({"google_iot_id": "stray"}, mender_pem("ec", 4))
    fleet(registry, 3)
    bridge = bridge_of(registry, mender)
    report = bridge.backfill([REF])
    assert len(mender.devices) == 6 and len(report.attention) == 1
    assert "stray" in report.attention[0].device
    pruned = bridge.backfill([REF], prune=PruneMode.ON)
    assert sorted(o.device for o in pruned.outcomes if o.action == "decommission") == [
        "google_iot_id=gone", "google_iot_id=stray"]
    assert mender.find_by_identity({"mac": "00:11"}) is not None and len(mender.devices) == 4


def test_prune_is_skipped_when_a_registry_cannot_be_listed(registry: FakeRegistry,
                                                          mender: FakeMender) -> None:
    mender.preauthorize({"google_iot_id": "gone"}, mender_pem("ec", 2))
    registry.fail_next("iter_devices")
    report = bridge_of(registry, mender).backfill([REF], prune=PruneMode.ON)
    assert report.failed and len(mender.devices) == 1


def test_permanent_failure_does_not_stop_others_unless_fail_fast(registry: FakeRegistry) -> None:
    fleet(registry, 20)
    mender = FakeMender()
    mender.fail_next("preauthorize", error=PermanentApiError("x", service="mender", status=400))
    report = Bridge(registry, mender, Policy(), concurrency=1).backfill([REF])
    assert report.failed and len(mender.devices) == 19  # all but the failed one
    mender2 = FakeMender()
    mender2.fail_next("preauthorize")
    stopped = Bridge(registry, mender2, Policy(), concurrency=1).backfill([REF], fail_fast=True)
    assert stopped.failed and len(mender2.devices) < 5


def test_deleted_device_that_cannot_be_identified_is_reported(registry: FakeRegistry,
                                                             mender: FakeMender) -> None:
    from bridge.identity import IdentityTemplate

    bridge = bridge_of(registry, mender,
                       template=IdentityTemplate.parse("id={device.id},site={metadata[site]}"))
    report = bridge.handle_change(Change("delete", REF, "dev1", "42"))
    assert report.outcomes[0].status == "skipped" and "--prune" in report.outcomes[0].detail
    assert mender.total_calls == 0
    only_num = bridge_of(registry, mender).handle_deleted(REF, None, "42")
    assert only_num.outcomes[0].status == "skipped" and mender.total_calls == 0


def test_blocked_device_is_rejected_on_request(registry: FakeRegistry,
                                               mender: FakeMender) -> None:
    registry.create(REF, "dev1", (credential("ec"),))
    bridge_of(registry, mender).sync_device(REF, "dev1")
    mender.device_auth(ID, mender_pem("ec"))
    registry.update(REF, "dev1", blocked=True)
    ignored = bridge_of(registry, mender).handle_change(
        Change("update", REF, "dev1", update_mask=("blocked",)))
    assert ignored.outcomes[0].detail == "blocked in the registry"
    assert keys_of(mender) == {mender_pem("ec"): "accepted"}
    bridge_of(registry, mender, on_blocked="reject").sync_device(REF, "dev1")
    assert keys_of(mender) == {mender_pem("ec"): "rejected"}
    assert mender.device_auth(ID, mender_pem("ec")) is False
