"""The rules of which devices the service may touch, over the stateful fakes: scope, names,
identity collisions, the create/delete race, scoped pruning, notification on every path.
Each case ends by reading the final state of both fakes."""

from __future__ import annotations

import pytest

from bridge.errors import InputError
from bridge.identity import IdentityTemplate
from bridge.model import ChangeKind, DeviceChange, RegistryRef
from bridge.notify import config_payload
from bridge.reconcile import Policy
from bridge.scope import Scope
from bridge.service import Service
from bridge.sync import Bridge, PruneMode
from tests.core.credentials import credential, mender_pem
from tests.fakes import FakeMender, FakeRegistry

PROJECT, LOCATION = "my-project", "europe-west1"
FLEET = RegistryRef(PROJECT, LOCATION, "fleet")
SPARE = RegistryRef(PROJECT, LOCATION, "spare")
OUTSIDE = RegistryRef(PROJECT, LOCATION, "not-configured")
BY_REGISTRY = IdentityTemplate.parse("registry={registry},id={device.id}")


def service_of(registry: FakeRegistry, mender: FakeMender, *, scope: tuple[str, ...] = (
        "fleet", "spare"), template: IdentityTemplate | None = None,
               notify_url: str | None = None, reconfirm_after: float = 1.0) -> Service:
    policy = Policy(template) if template else Policy()
    bridge = Bridge(registry, mender, policy, scope=Scope.of(PROJECT, LOCATION, scope),
                    concurrency=4, notify_url=notify_url, reconfirm_after=reconfirm_after)
    return Service.single(bridge)


def change(kind: ChangeKind, ref: RegistryRef, device_id: str | None,
           num_id: str | None = None, mask: tuple[str, ...] | None = None) -> DeviceChange:
    return DeviceChange(kind, ref, device_id, num_id, mask)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def mender() -> FakeMender:
    return FakeMender()


def admitted(registry: FakeRegistry, mender: FakeMender, ref: RegistryRef, device_id: str,
             kind: str = "ec", seed: int = 0) -> None:
    registry.create(ref, device_id, (credential(kind, seed),))
    mender.preauthorize({"google_iot_id": device_id}, mender_pem(kind, seed))
    assert mender.device_auth({"google_iot_id": device_id}, mender_pem(kind, seed))


@pytest.mark.parametrize("ref", [
    OUTSIDE,
    RegistryRef("other-project", LOCATION, "fleet"),
    RegistryRef(PROJECT, "us-central1", "fleet"),
])
@pytest.mark.parametrize("kind", list(ChangeKind))
def test_an_event_outside_the_scope_touches_nothing(registry: FakeRegistry, mender: FakeMender,
                                                   ref: RegistryRef, kind: ChangeKind) -> None:
    admitted(registry, mender, FLEET, "dev-1")
    registry.create(ref, "dev-1", (credential("rsa"),))  # the same id elsewhere
    if kind is ChangeKind.DELETE:
        registry.delete(ref, "dev-1")
    before, calls = mender.snapshot(), mender.total_calls
    with pytest.raises(InputError, match="configured"):
        service_of(registry, mender).handle_change(change(kind, ref, "dev-1"))
    assert mender.snapshot() == before and mender.total_calls == calls
    assert registry.calls["get_device"] == 0


@pytest.mark.parametrize("device_id", [
    "dev-2?fieldMask=name", "x#frag", "..", "dev/../../x", "d", "dev\x00", "dev:verb ",
    "dëv-1", "", "dev-2\n"])
def test_a_malformed_device_name_is_refused_before_any_call(
        registry: FakeRegistry, mender: FakeMender, device_id: str) -> None:
    admitted(registry, mender, FLEET, "dev-2")
    before, registry_calls = mender.snapshot(), registry.total_calls
    service = service_of(registry, mender)
    for call in (lambda: service.sync_device("fleet", device_id),
                 lambda: service.handle_change(change(ChangeKind.DELETE, FLEET, device_id)),
                 lambda: service.handle_change(change(ChangeKind.UPDATE, FLEET, device_id))):
        with pytest.raises(InputError, match="device id"):
            call()
    assert registry.total_calls == registry_calls and mender.snapshot() == before


@pytest.mark.parametrize("registry_name", [
    "projects/../locations/../registries/..", "fleet/devices/x", "not-configured",
    f"projects/{PROJECT}/locations/{LOCATION}/registries/fleet?x=1", "fl"])
def test_a_request_for_another_registry_is_refused(registry: FakeRegistry, mender: FakeMender,
                                                   registry_name: str) -> None:
    with pytest.raises(InputError):
        service_of(registry, mender).sync_device(registry_name, "dev-1")
    assert registry.total_calls == 0 and mender.total_calls == 0


def test_without_configured_registries_the_scope_is_the_location(
        registry: FakeRegistry, mender: FakeMender) -> None:
    registry.create(SPARE, "dev-1", (credential("ec"),))
    service = service_of(registry, mender, scope=())
    service.sync_device(f"projects/{PROJECT}/locations/{LOCATION}/registries/spare", "dev-1")
    assert mender.find_by_identity({"google_iot_id": "dev-1"}) is not None
    with pytest.raises(InputError, match="outside the configured project and location"):
        service.sync_device(f"projects/{PROJECT}/locations/asia-east1/registries/spare",
                            "dev-1")


def test_a_delete_in_one_registry_spares_the_twin_in_another(registry: FakeRegistry,
                                                             mender: FakeMender) -> None:
    admitted(registry, mender, FLEET, "twin-1")
    registry.create(SPARE, "twin-1", (credential("ec"),))
    registry.delete(FLEET, "twin-1")
    report = service_of(registry, mender).handle_change(change(ChangeKind.DELETE, FLEET,
                                                               "twin-1"))
    assert [o.status for o in report.outcomes] == ["conflict"]
    assert "spare/twin-1" in report.outcomes[0].detail
    device = mender.find_by_identity({"google_iot_id": "twin-1"})
    assert device is not None and not device.decommissioning
    assert mender.calls["decommission"] == 0


def test_a_create_in_a_second_registry_does_not_rekey_the_first(registry: FakeRegistry,
                                                                mender: FakeMender) -> None:
    admitted(registry, mender, FLEET, "twin-1", "ec", 0)
    registry.create(SPARE, "twin-1", (credential("rsa"),))
    before = mender.snapshot()
    report = service_of(registry, mender).handle_change(change(ChangeKind.CREATE, SPARE,
                                                               "twin-1"))
    assert "conflict" in [o.status for o in report.outcomes]
    assert mender.snapshot() == before  # the first registry's key still accepted, no other


def test_a_device_deleted_while_its_admission_was_delayed_is_decommissioned(
        registry: FakeRegistry, mender: FakeMender) -> None:
    registry.create(FLEET, "dev-1", (credential("ec"),))
    service = service_of(registry, mender, reconfirm_after=0.0)

    def deleted_meanwhile() -> None:
        registry.delete(FLEET, "dev-1")
        report = service.handle_change(change(ChangeKind.DELETE, FLEET, "dev-1"))
        assert [o.detail for o in report.outcomes] == ["not in Mender"]

    mender.before_preauthorize = deleted_meanwhile
    report = service.handle_change(change(ChangeKind.CREATE, FLEET, "dev-1"))
    assert [(o.action, o.status) for o in report.outcomes] == [
        ("preauthorize", "done"), ("decommission", "done")]
    assert mender.devices == {}


def test_a_fast_admission_is_not_reconfirmed(registry: FakeRegistry,
                                             mender: FakeMender) -> None:
    registry.create(FLEET, "dev-1", (credential("ec"),))
    service_of(registry, mender, reconfirm_after=3600).sync_device("fleet", "dev-1")
    assert registry.calls["get_device"] == 1


def test_scoped_prune_removes_only_devices_of_listed_registries(registry: FakeRegistry,
                                                                mender: FakeMender) -> None:
    registry.create(FLEET, "kept", (credential("ec"),))
    for name in ("fleet", "spare", "elsewhere"):
        mender.preauthorize({"registry": name, "id": "gone"}, mender_pem("ec", 1))
    service = service_of(registry, mender, template=BY_REGISTRY)
    report = service.backfill([FLEET], prune=PruneMode.AUTO)
    assert sorted((d.identity["registry"], d.identity["id"]) for d in mender.devices.values()
                  ) == [("elsewhere", "gone"), ("fleet", "kept"), ("spare", "gone")]
    assert [o.device for o in report.outcomes if o.action == "decommission"] == [
        "id=gone,registry=fleet"]


def test_auto_prune_is_off_where_the_identity_does_not_name_the_registry(
        registry: FakeRegistry, mender: FakeMender) -> None:
    registry.create(FLEET, "kept", (credential("ec"),))
    mender.preauthorize({"google_iot_id": "gone"}, mender_pem("ec", 1))
    service_of(registry, mender).backfill(prune=PruneMode.AUTO)
    assert len(mender.devices) == 2 and mender.calls["decommission"] == 0


def test_pruning_some_registries_by_an_identity_without_registry_is_refused(
        registry: FakeRegistry, mender: FakeMender) -> None:
    mender.preauthorize({"google_iot_id": "gone"}, mender_pem("ec", 1))
    with pytest.raises(InputError, match="prune over all of them"):
        service_of(registry, mender).backfill([FLEET], prune=PruneMode.ON)
    assert mender.calls["decommission"] == 0 and len(mender.devices) == 1


@pytest.mark.parametrize("path", ["event", "backfill"])
def test_an_admitted_device_is_told_where_its_mender_is(registry: FakeRegistry,
                                                        mender: FakeMender, path: str) -> None:
    registry.create(FLEET, "dev-1", (credential("ec"),))
    service = service_of(registry, mender, notify_url="https://mender.example.com")
    if path == "event":
        service.handle_change(change(ChangeKind.CREATE, FLEET, "dev-1"))
    else:
        service.backfill()
    assert registry.configs == {(FLEET, "dev-1"): config_payload("https://mender.example.com")}
    again = service.backfill()  # nothing new admitted: nothing written again
    assert registry.calls["set_device_config"] == 1 and not again.changed


def test_a_metadata_update_is_relevant_when_the_identity_reads_metadata(
        registry: FakeRegistry, mender: FakeMender) -> None:
    template = IdentityTemplate.parse("serial={metadata[serial]}")
    registry.create(FLEET, "dev-1", (credential("ec"),), metadata={"serial": "S-1"})
    service = service_of(registry, mender, template=template)
    service.handle_change(change(ChangeKind.UPDATE, FLEET, "dev-1", mask=("metadata",)))
    assert mender.find_by_identity({"serial": "S-1"}) is not None
    plain = service_of(registry, FakeMender())
    report = plain.handle_change(change(ChangeKind.UPDATE, FLEET, "dev-1", mask=("metadata",)))
    assert report.outcomes[0].status == "skipped" and registry.calls["get_device"] == 1
