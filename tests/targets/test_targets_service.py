"""Several Mender targets over the fakes: routing by registry, identity collisions judged per
target, a target that is down delaying only its own devices, outcomes naming their target.
Each case reads the final state of every fake back."""

from __future__ import annotations

import pytest

from bridge.errors import TransientApiError
from bridge.model import ChangeKind, DeviceChange, RegistryRef
from bridge.reconcile import Policy
from bridge.report import Status
from bridge.scope import Scope
from bridge.service import Service
from bridge.sync import Bridge
from tests.core.credentials import credential, mender_pem
from tests.fakes import FakeMender, FakeRegistry

PROJECT, LOCATION = "my-project", "europe-west1"
STAGING = RegistryRef(PROJECT, LOCATION, "staging-fleet")
PRODUCTION = RegistryRef(PROJECT, LOCATION, "production-fleet")


def two_targets(registry: FakeRegistry, staging: FakeMender, production: FakeMender
                ) -> Service:
    scope = Scope.of(PROJECT, LOCATION, [STAGING.registry, PRODUCTION.registry])
    targets = []
    for name, mender, ref in (("staging", staging, STAGING), ("production", production,
                                                              PRODUCTION)):
        mine = frozenset({ref})
        bridge = Bridge(registry, mender, Policy(), concurrency=4, name=name,
                        scope=Scope(PROJECT, LOCATION, mine))
        targets.append((bridge, mine))
    return Service(scope, registry, targets)


def keys(mender: FakeMender) -> dict[str, set[str]]:
    return {str(d.identity_data["google_iot_id"]): {s.pubkey for s in d.auth_sets or ()}
            for d in mender.iter_devices()}


def test_one_device_id_in_both_registries_is_no_collision_across_targets() -> None:
    registry, staging, production = FakeRegistry(), FakeMender(), FakeMender()
    service = two_targets(registry, staging, production)
    registry.create(STAGING, "dev-1", (credential("ec", 0),))
    registry.create(PRODUCTION, "dev-1", (credential("ec", 1),))
    report = service.backfill()
    assert keys(staging) == {"dev-1": {mender_pem("ec", 0)}}
    assert keys(production) == {"dev-1": {mender_pem("ec", 1)}}
    assert {(o.target, o.status) for o in report.outcomes} == {("staging", Status.DONE),
                                                               ("production", Status.DONE)}
    registry.update(PRODUCTION, "dev-1", credentials=(credential("ec", 2),))
    event = service.handle_change(DeviceChange(ChangeKind.UPDATE, PRODUCTION, "dev-1", None,
                                               ("credentials",)))
    assert {o.target for o in event.outcomes} == {"production"}
    assert mender_pem("ec", 2) in keys(production)["dev-1"]
    assert keys(staging) == {"dev-1": {mender_pem("ec", 0)}}


def test_a_target_that_is_down_delays_only_its_own_devices() -> None:
    registry, staging, production = FakeRegistry(), FakeMender(fail_rate=1.0), FakeMender()
    service = two_targets(registry, staging, production)
    for i in range(3):
        registry.create(STAGING, f"s-{i}", (credential("ec", i),))
        registry.create(PRODUCTION, f"p-{i}", (credential("ec", i),))
    report = service.backfill()
    assert set(keys(production)) == {"p-0", "p-1", "p-2"}
    assert staging.devices == {}
    assert {o.target for o in report.outcomes if o.status is Status.FAILED} == {"staging"}
    with pytest.raises(TransientApiError):
        service.handle_change(DeviceChange(ChangeKind.CREATE, STAGING, "s-0", None))
    registry.create(PRODUCTION, "p-new", (credential("ec", 5),))
    service.handle_change(DeviceChange(ChangeKind.CREATE, PRODUCTION, "p-new", None))
    assert "p-new" in keys(production)
    staging.fail_rate = 0.0  # back up: the next run converges both
    again = service.backfill()
    assert set(keys(staging)) == {"s-0", "s-1", "s-2"}
    assert not again.failed
    assert {o.target for o in service.backfill().outcomes if o.status is Status.DONE} == set()
