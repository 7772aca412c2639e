"""Tags over the fakes: the event path (create, metadata update), the backfill (bulk listing,
writes only where tags differ), a person's tags kept, the ETag race and bad values. Each case
reads the tags back from the fake inventory."""

from __future__ import annotations

import pytest

from bridge.backfill.tags import Tagger
from bridge.config import Settings
from bridge.errors import ConfigError, TransientApiError
from bridge.identity import IdentityTemplate
from bridge.model import ChangeKind, DeviceChange, RegistryRef
from bridge.reconcile import Policy
from bridge.report import Status, Step
from bridge.scope import Scope
from bridge.service import Service
from bridge.sync import Bridge
from bridge.tags import Tag, TagTemplate
from tests.core.credentials import credential
from tests.fakes import FakeInventory, FakeMender, FakeRegistry, permanent

FLEET = RegistryRef("my-project", "europe-west1", "fleet")
TAGS = "site={metadata[site]},registry={registry}"


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def mender() -> FakeMender:
    return FakeMender()


@pytest.fixture
def inventory(mender: FakeMender) -> FakeInventory:
    return FakeInventory(mender)


def service_of(registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory,
               tags: str = TAGS, notify_url: str | None = None) -> Service:
    policy = Policy()
    tagger = Tagger(inventory, TagTemplate.parse(tags), policy.template)
    return Service.single(Bridge(registry, mender, policy, concurrency=4, tags=tagger,
                                 scope=Scope.of(FLEET.project, FLEET.location, ["fleet"]),
                                 notify_url=notify_url))


def event(kind: ChangeKind, device_id: str, mask: tuple[str, ...] | None = None
          ) -> DeviceChange:
    return DeviceChange(kind, FLEET, device_id, None, mask)


def mender_id(mender: FakeMender, device_id: str) -> str:
    found = mender.find_by_identity({"google_iot_id": device_id})
    assert found is not None
    return found.id


def test_create_before_inventory_knows_the_device_is_retried_then_tagged(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "lab"})
    inventory.freeze()
    with pytest.raises(TransientApiError) as raised:
        service.handle_change(event(ChangeKind.CREATE, "dev-1"))
    assert raised.value.retry_after is not None and raised.value.retry_after <= 5
    assert inventory.values(mender_id(mender, "dev-1")) == {}
    inventory.catch_up()
    report = service.handle_change(event(ChangeKind.CREATE, "dev-1"))  # delivered again
    assert inventory.values(mender_id(mender, "dev-1")) == {"site": "lab", "registry": "fleet"}
    assert [o.status for o in report.outcomes if o.action == Step.TAG] == [Status.DONE]


def test_a_metadata_update_moves_the_tag_and_keeps_a_persons_own(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "lab"})
    service.handle_change(event(ChangeKind.CREATE, "dev-1"))
    device = mender_id(mender, "dev-1")
    etag = inventory.etags[device]
    assert inventory.write_tags(device, [Tag("owner", "alice")], etag, replace=False)
    registry.update(FLEET, "dev-1", metadata={"site": "field"})
    service.handle_change(event(ChangeKind.UPDATE, "dev-1", ("metadata",)))
    assert inventory.values(device) == {"site": "field", "registry": "fleet", "owner": "alice"}


def test_a_metadata_update_is_ignored_when_no_tag_reads_metadata(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory, tags="registry={registry}")
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "lab"})
    service.handle_change(event(ChangeKind.CREATE, "dev-1"))
    before = mender.total_calls + inventory.total_calls
    report = service.handle_change(event(ChangeKind.UPDATE, "dev-1", ("metadata",)))
    assert mender.total_calls + inventory.total_calls == before
    assert [o.status for o in report.outcomes] == [Status.SKIPPED]


def test_backfill_tags_in_bulk_then_a_resync_writes_nothing(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    for i, site in enumerate(["lab", "field", "lab"]):
        registry.create(FLEET, f"dev-{i}", (credential("ec", i),), metadata={"site": site})
    inventory.freeze()  # a first run preauthorizes; inventory has not caught up yet
    first = service.backfill()
    assert {o.detail for o in first.outcomes if o.action == Step.TAG} == {
        "not yet in inventory; the next sync tags it"}
    assert inventory.writes == 0
    inventory.catch_up()
    service.backfill()
    assert inventory.values(mender_id(mender, "dev-1")) == {"site": "field",
                                                            "registry": "fleet"}
    assert inventory.writes == 3 and inventory.calls["get"] == 3
    inventory.calls.clear()
    third = service.backfill()
    assert inventory.writes == 0 and inventory.calls["get"] == 0
    assert inventory.calls == {"iter_records": 1}
    assert not [o for o in third.outcomes if o.action == Step.TAG]


def test_removed_metadata_removes_only_the_bridges_tag(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "lab"})
    service.backfill()
    device = mender_id(mender, "dev-1")
    inventory.write_tags(device, [Tag("site-notes", "by the door")], None, replace=False)
    registry.update(FLEET, "dev-1", metadata={})
    service.backfill()
    assert inventory.values(device) == {"registry": "fleet", "site-notes": "by the door"}


def test_a_write_refused_for_a_stale_etag_is_read_and_written_again(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "lab"})
    service.backfill()
    service.backfill()
    device = mender_id(mender, "dev-1")
    assert inventory.etags.get(device)
    registry.update(FLEET, "dev-1", metadata={"site": "field"})
    inventory.before_write = lambda: inventory.write_tags(device, [Tag("owner", "bob")], None,
                                                          replace=False) and None
    before = inventory.writes
    service.handle_change(event(ChangeKind.UPDATE, "dev-1", ("metadata",)))
    assert inventory.values(device) == {"site": "field", "registry": "fleet", "owner": "bob"}
    assert inventory.writes - before == 3  # the person's, ours refused (412), ours again


def test_a_bad_value_is_reported_and_not_sent(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "x" * 40000})
    service.backfill()
    service.backfill()
    writes = inventory.writes
    report = service.backfill()
    assert inventory.values(mender_id(mender, "dev-1")) == {"registry": "fleet"}
    assert inventory.writes == writes
    problems = [o for o in report.outcomes if o.action == Step.TAG]
    assert [(o.status, o.device) for o in problems] == [(Status.SKIPPED, "fleet/dev-1")]
    assert "40000 bytes" in problems[0].detail


def test_a_device_not_admitted_gets_no_tags_and_no_retry(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    registry.create(FLEET, "no-key", (), metadata={"site": "lab"})
    report = service.handle_change(event(ChangeKind.CREATE, "no-key"))
    assert inventory.total_calls == 0
    assert all(o.action != Step.TAG for o in report.outcomes)
    assert IdentityTemplate.parse("google_iot_id={device.id}") == Policy().template


def test_a_dry_run_plans_the_tag_writes_and_writes_nothing(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory)
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "lab"})
    service.backfill()
    planned = service.backfill(dry_run=True)
    assert [(o.status, o.detail) for o in planned.outcomes if o.action == Step.TAG] == [
        (Status.PLANNED, "registry=fleet, site=lab")]
    assert inventory.writes == 0 and inventory.values(mender_id(mender, "dev-1")) == {}


def test_tags_mender_could_not_keep_are_a_settings_problem() -> None:
    with pytest.raises(ConfigError, match="TAGS: 21 tags"):
        Settings.from_mapping({
            "mender_token": "t" * 20, "iot_project": "my-project",
            "tags": ",".join(f"t{i}={{registry}}" for i in range(21))})


def test_a_failed_notification_does_not_keep_the_tags_from_being_written(
        registry: FakeRegistry, mender: FakeMender, inventory: FakeInventory) -> None:
    service = service_of(registry, mender, inventory, notify_url="https://mender.example")
    registry.create(FLEET, "dev-1", (credential("ec", 0),), metadata={"site": "lab"})
    registry.fail_next("set_device_config", error=permanent("registry", "POST"))
    report = service.handle_change(event(ChangeKind.CREATE, "dev-1"))
    assert [o.status for o in report.outcomes if o.action == Step.NOTIFY] == [Status.SKIPPED]
    assert registry.configs == {}
    assert inventory.values(mender_id(mender, "dev-1")) == {"site": "lab", "registry": "fleet"}
