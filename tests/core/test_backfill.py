"""The backfill run over the fakes: runs side by side on one bridge, what an interrupted or
fail-fast run reports, twins across registries, refused credentials, the pace it reports."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import pytest

from bridge.backfill import NOT_RUN
from bridge.errors import AuthError
from bridge.model import PreauthResult, RegistryDevice, RegistryRef
from bridge.ports import Pace
from bridge.reconcile import Policy
from bridge.sync import Bridge
from tests.core.credentials import credential
from tests.fakes import FakeMender, FakeRegistry, permanent

REF = RegistryRef("my-project", "europe-west1", "fleet")
TWIN_REF = RegistryRef("my-project", "europe-west1", "spare")


def fleet(registry: FakeRegistry, count: int, ref: RegistryRef = REF) -> None:
    for i in range(count):
        registry.create(ref, f"dev-{i:04d}", (credential("ec", i % 8),))


def test_runs_side_by_side_on_one_bridge_leave_one_device_per_identity() -> None:
    registry, mender = FakeRegistry(), FakeMender()
    fleet(registry, 40)
    fleet(registry, 40, TWIN_REF)
    bridge = Bridge(registry, mender, Policy(), concurrency=8)
    reports = []

    def run(ref: RegistryRef) -> None:
        reports.append(bridge.backfill([ref]))

    threads = [threading.Thread(target=run, args=(ref,)) for ref in (REF, TWIN_REF)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.stats["registry_devices"] for r in reports] == [40, 40]
    # Twins: the second registry's devices have the first's identities; one of each pair won.
    assert len(mender.devices) == 40


def test_fail_fast_stops_and_says_what_it_did_not_run() -> None:
    registry, mender = FakeRegistry(), FakeMender()
    fleet(registry, 30)
    mender.fail_next("preauthorize", error=permanent("mender", "preauthorize"))
    report = Bridge(registry, mender, Policy(), concurrency=1).backfill([REF], fail_fast=True)
    statuses = [o.status for o in report.outcomes]
    assert statuses.count("failed") == 1 and report.interrupted == "stopped by --fail-fast"
    not_run = [o.device for o in report.outcomes if o.detail.startswith(NOT_RUN)]
    assert not_run[-1] == str(REF)  # and the devices after those were not examined
    examined = {o.device for o in report.outcomes} - {str(REF)}
    done = {o.device for o in report.outcomes if o.status == "done"}
    assert len(examined) == 1 + len(done) + len(not_run) - 1 < 30
    assert len(mender.devices) == len(done)


class _Interrupted(FakeRegistry):
    """Ctrl-C arrives while the registry is being listed, after `after` devices."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        for i, device in enumerate(super().iter_devices(ref)):
            if i == self.after:
                raise KeyboardInterrupt
            yield device


def test_ctrl_c_ends_the_run_with_a_report_of_what_was_done() -> None:
    registry, mender = _Interrupted(after=12), FakeMender()
    fleet(registry, 30)
    report = Bridge(registry, mender, Policy(), concurrency=2).backfill([REF])
    assert report.interrupted == "interrupted"
    done = {o.device for o in report.outcomes if o.status == "done"}
    admitted = {f"fleet/{d.identity['google_iot_id']}" for d in mender.devices.values()}
    assert done == admitted and len(done) <= 12  # nothing done that the report does not say


def test_twins_across_registries_are_one_conflict_and_one_device() -> None:
    registry, mender = FakeRegistry(), FakeMender()
    registry.create(REF, "twin-1", (credential("ec", 1),))
    registry.create(TWIN_REF, "twin-1", (credential("ec", 2),))
    report = Bridge(registry, mender, Policy(), concurrency=1).backfill([REF, TWIN_REF])
    assert [(o.device, o.status) for o in report.outcomes if o.status != "done"] == [
        ("spare/twin-1", "conflict")]
    [device] = mender.devices.values()
    assert len(device.sets) == 1


def test_refused_credentials_stop_the_run_as_one_error() -> None:
    registry, mender = FakeRegistry(), FakeMender()
    fleet(registry, 10)
    mender.fail_next("preauthorize", error=AuthError("token refused", service="mender",
                                                     status=401), times=100)
    with pytest.raises(AuthError, match="token refused"):
        Bridge(registry, mender, Policy(), concurrency=2).backfill([REF])
    assert mender.devices == {}


class _PacedMender(FakeMender):
    """Reports what a paced client would: 429s seen and the rate learned, growing per call."""

    def __init__(self) -> None:
        super().__init__()
        self.pace_report = Pace(None, 3, 10)  # what earlier runs on the client saw

    def preauthorize(self, identity: Mapping[str, str], pubkey: str, *,
                     force: bool = False) -> PreauthResult:
        old = self.pace_report
        self.pace_report = Pace(12.5, old.limited + 1, old.passed + 1)
        return super().preauthorize(identity, pubkey, force=force)


def test_the_report_shows_the_rate_settled_on_and_the_429s_of_this_run() -> None:
    registry, mender = FakeRegistry(), _PacedMender()
    fleet(registry, 7)
    report = Bridge(registry, mender, Policy(), concurrency=2).backfill([REF])
    assert len(mender.devices) == 7
    assert report.stats["mender_429"] == 7  # not the 3 seen before this run
    assert report.stats["mender_rate_limit"] == 12.5
    quiet = Bridge(registry, FakeMender(), Policy(), concurrency=2).backfill([REF])
    assert quiet.stats["mender_429"] == 0 and "mender_rate_limit" not in quiet.stats
