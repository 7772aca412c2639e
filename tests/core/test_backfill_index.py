"""The backfill's compact Mender index and its registry read-ahead, over the fakes: keys kept as
digests still match the registry's PEMs however they are written (a re-sync writes nothing),
a stale key is still revoked, hostile strings survive packing, the registry is listed while
Mender is, and no more is read ahead than the bound."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bridge.backfill import twins_possible
from bridge.backfill.feed import Feed
from bridge.backfill.index import (
    MenderIndex,
    digest_of,
    key_digest,
    pack,
    unknown_key,
    unpack,
)
from bridge.identity import IdentityTemplate
from bridge.model import (
    AuthSet,
    AuthStatus,
    Credential,
    CredentialFormat,
    MenderDevice,
    RegistryDevice,
    RegistryRef,
)
from bridge.reconcile import Policy
from bridge.sync import Bridge
from tests.core.credentials import credential, mender_pem
from tests.fakes import FakeMender, FakeRegistry

REF = RegistryRef("my-project", "europe-west1", "fleet")


def _rewrapped(cred: Credential) -> Credential:
    """The same key, its base64 in 76-column lines and CRLF: not Mender's form."""
    lines = cred.key.strip().splitlines()
    body = "".join(lines[1:-1])
    wrapped = [body[i:i + 76] for i in range(0, len(body), 76)]
    return Credential("\r\n".join([lines[0], *wrapped, lines[-1]]) + "\r\n", cred.format)


FORMATS = [
    pytest.param(credential("ec", 1), id="ES256_PEM"),
    pytest.param(credential("rsa", 1), id="RSA_PEM"),
    pytest.param(credential("ec", 2, x509_cert=True), id="ES256_X509_PEM"),
    pytest.param(credential("rsa", 2, x509_cert=True), id="RSA_X509_PEM"),
    pytest.param(_rewrapped(credential("ec", 3)), id="ES256_PEM-rewrapped"),
]


@pytest.mark.parametrize("cred", FORMATS)
def test_a_resync_writes_nothing_whatever_form_the_registry_key_has(cred: Credential) -> None:
    registry, mender = FakeRegistry(), FakeMender()
    registry.create(REF, "dev-1", (cred,))
    bridge = Bridge(registry, mender, Policy(), concurrency=2)
    assert not bridge.backfill([REF]).failed
    before = mender.snapshot()
    writes = mender.writes
    report = bridge.backfill([REF])
    assert mender.writes == writes and mender.snapshot() == before
    assert report.summary()["unchanged"] == 1


def _rotated(via_backfill: bool) -> FakeMender:
    """dev-1 admitted with key 4 and using it; the registry now holds key 5 only."""
    registry, mender = FakeRegistry(), FakeMender()
    registry.create(REF, "dev-1", (credential("ec", 4),))
    bridge = Bridge(registry, mender, Policy(), concurrency=2, scope=None)
    bridge.backfill([REF])
    assert mender.device_auth({"google_iot_id": "dev-1"}, mender_pem("ec", 4))
    registry.update(REF, "dev-1", credentials=(credential("ec", 5),))
    if via_backfill:
        bridge.backfill([REF])
    else:
        bridge.sync_device(REF, "dev-1")
    return mender


def test_a_key_no_longer_in_the_registry_is_revoked_as_by_the_event_path() -> None:
    # The event path reads the device with its PEMs; the backfill's index holds digests.
    backfilled, by_event = _rotated(True), _rotated(False)
    assert backfilled.snapshot() == by_event.snapshot()
    [device] = backfilled.devices.values()
    statuses = {s.pubkey: s.status for s in device.sets.values()}
    assert statuses.get(mender_pem("ec", 4)) in (None, AuthStatus.REJECTED)
    assert mender_pem("ec", 5) in statuses


@pytest.mark.parametrize("text", ["plain", "nul\x00inside", "lone \udc80 surrogate",
                                  "ünïcödé ✓", "x" * 70_000])
def test_packing_keeps_hostile_strings(text: str) -> None:
    pem = mender_pem("ec", 1)
    device = MenderDevice(text, {"google_iot_id": text}, AuthStatus.PENDING, True,
                          (AuthSet(text, pem, AuthStatus.PENDING),
                           AuthSet("a2", "other key", AuthStatus.REJECTED)))
    back = unpack(pack(device), lambda d: pem if d == key_digest(pem) else unknown_key(d))
    assert back.id == text and back.identity_data == {"google_iot_id": text}
    assert back.status is AuthStatus.PENDING and back.decommissioning
    assert [(s.id, s.status) for s in back.auth_sets or ()] == [
        (text, AuthStatus.PENDING), ("a2", AuthStatus.REJECTED)]
    first, second = (s.pubkey for s in back.auth_sets or ())
    assert first == pem and second != "other key"  # never mistaken for a PEM


def test_the_index_keeps_only_devices_that_follow_the_template() -> None:
    index = MenderIndex(Policy().template.follows)
    index.add(MenderDevice("m1", {"google_iot_id": "a"}, AuthStatus.ACCEPTED, False, ()))
    index.add(MenderDevice("m2", {"mac": "00:11"}, AuthStatus.ACCEPTED, False, ()))
    assert len(index) == 1
    claimed = index.claim(digest_of({"google_iot_id": "a"}))
    assert claimed is not None and claimed.id == "m1"
    assert len(index) == 0 and list(index.remaining()) == []


@pytest.mark.parametrize(("template", "refs", "possible"), [
    ("google_iot_id={device.id}", [REF], False),
    ("google_iot_id={device.id}", [REF, RegistryRef("my-project", "europe-west1", "b")], True),
    ("r={registry},d={device.id}", [REF, RegistryRef("my-project", "europe-west1", "b")], False),
    ("r={registry},d={device.id}", [REF, RegistryRef("other", "europe-west1", "fleet")], True),
    ("site={metadata[site]}", [REF], True),
])
def test_twins_are_remembered_only_where_there_can_be_any(template: str,
                                                          refs: list[RegistryRef],
                                                          possible: bool) -> None:
    assert twins_possible(Policy(IdentityTemplate.parse(template)), refs) is possible


class _SlowMender(FakeMender):
    """Its listing waits until the registry's has begun: both must run at once."""

    def __init__(self, registry_started: threading.Event) -> None:
        super().__init__()
        self.registry_started = registry_started
        self.overlapped = False

    def iter_devices(self, status: AuthStatus | None = None) -> Iterator[MenderDevice]:
        self.overlapped = self.registry_started.wait(timeout=10)
        yield from super().iter_devices(status)


class _SignalingRegistry(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        self.started.set()
        yield from super().iter_devices(ref)


def test_the_registry_is_listed_while_mender_is() -> None:
    registry = _SignalingRegistry()
    for i in range(30):
        registry.create(REF, f"dev-{i:03d}", (credential("ec", i % 4),))
    mender = _SlowMender(registry.started)
    report = Bridge(registry, mender, Policy(), concurrency=4).backfill([REF])
    assert mender.overlapped
    assert not report.failed and len(mender.devices) == 30


class _Endless(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.pulled = 0

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        key = credential("ec", 0)
        while True:
            self.pulled += 1
            yield RegistryDevice(ref, f"dev-{self.pulled}", str(self.pulled),
                                 (Credential(key.key, CredentialFormat.ES256_PEM),))


def test_no_more_is_read_ahead_than_the_bound() -> None:
    registry = _Endless()
    with Feed(registry, [REF], batch=10, ahead=3) as feed:
        first = next(iter(feed))
        for _ in range(200):  # let the reader run as far as it can
            threading.Event().wait(0.005)
        # Three batches queued, one taken, one waiting for room: nothing more was read.
        assert len(first.devices) == 10 and registry.pulled <= 10 * (3 + 2) + 1
