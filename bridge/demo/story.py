"""The demo's story, chapter by chapter; every claim it prints is checked against the
running services, and the final table is read back from both of them."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from bridge.config import Settings
from bridge.demo.children import wait_for
from bridge.demo.narrate import Narrator, Row
from bridge.demo.world import REF, DemoDevice, World
from bridge.device import SimulatedDevice
from bridge.devicekeys import KeyKind
from bridge.factory import build_service
from bridge.keys import normalize
from bridge.model import AuthStatus, MenderDevice
from bridge.report import Report

KINDS: list[tuple[KeyKind, bool]] = [("ec", False), ("ec", True), ("rsa", False), ("rsa", True)]
FLEET, EARLY, ROTATED, BLOCKED, DELETED, LEGACY = (
    "fleet", "booted early", "key rotated", "blocked", "deleted", "pre-existing")


class Story:
    def __init__(self, world: World, narrator: Narrator, fleet_size: int) -> None:
        self.world, self.n, self.fleet_size = world, narrator, fleet_size
        self.devices: list[DemoDevice] = []

    def _make(self) -> None:
        plan: list[tuple[str, str, KeyKind, bool]] = [
            (f"demo-{i + 1:03d}", FLEET, *KINDS[i % len(KINDS)]) for i in range(self.fleet_size)]
        plan += [("demo-early-bird", EARLY, "ec", True), ("demo-rotator", ROTATED, "rsa", False),
                 ("demo-blocked", BLOCKED, "ec", False), ("demo-deleted", DELETED, "rsa", True),
                 ("legacy-001", LEGACY, "ec", True), ("legacy-002", LEGACY, "rsa", False)]
        for device_id, role, kind, x509 in self.n.progress(plan, "generating keys", len(plan)):
            self.devices.append(DemoDevice(SimulatedDevice.generate(device_id, kind), role, x509))

    def role(self, role: str) -> list[DemoDevice]:
        return [d for d in self.devices if d.role == role]

    def one(self, role: str) -> DemoDevice:
        return self.role(role)[0]

    def expect_mender(self, devices: list[DemoDevice], status: str | None, what: str) -> None:
        """Wait (briefly) until Mender shows `status` for each device, then check it."""
        def settled() -> bool:
            seen = self.world.mender_devices()
            return all(_status(seen, d.id) == (status or "absent") for d in devices)
        with contextlib.suppress(TimeoutError):  # the check below says what was seen
            wait_for(settled, 20.0, what)
        seen = self.world.mender_devices()
        good = [d for d in devices if _status(seen, d.id) == (status or "absent")]
        detail = ", ".join(f"{d.id}={_status(seen, d.id)}" for d in devices if d not in good)
        self.n.check(len(good) == len(devices),
                     f"{len(good)}/{len(devices)} {what}" + (f" (got {detail})" if detail else ""))

    def play(self) -> list[Row]:
        w, n = self.world, self.n
        n.chapter("0. Keys: each simulated device makes one key pair (EC P-256 or RSA 3072)")
        self._make()
        legacy = self.role(LEGACY)
        for d in legacy:
            w.register(d)
        w.drain()
        n.say(f"{len(legacy)} devices were registered before the bridge existed: "
              + ", ".join(d.id for d in legacy))
        w.deploy()
        n.say("the bridge is deployed: audit-log events now reach the Cloud Function "
              f"({w.events.short()})")

        main = [*self.role(FLEET), self.one(ROTATED), self.one(BLOCKED), self.one(DELETED)]
        n.chapter(f"1. Registering {len(main)} devices with the google-cloud-iot client "
                  "(PEM and X.509 credentials)")
        for d in n.progress(main, "registering", len(main)):
            w.register(d)
        w.drain()
        self.expect_mender(main, AuthStatus.PREAUTHORIZED, "devices preauthorized in Mender "
                           "by the function, nobody clicked accept")

        n.chapter("2. Each device uses its one private key for both clouds")
        self.both_clouds(main, "authenticated to Mender and published telemetry")

        early = self.one(EARLY)
        n.chapter(f"3. {early.id} contacted Mender before it was registered")
        n.check(not w.authenticate(early.device), "Mender answered 401: not admitted yet")
        self.expect_mender([early], AuthStatus.PENDING, "device waits as pending in Mender "
                           "(an auth set with its key)")
        w.register(early)
        w.drain()
        self.expect_mender([early], AuthStatus.ACCEPTED, "pending device accepted by the bridge "
                           "once the registry knew its key")
        self.both_clouds([early], "authenticated and published")

        self.changes()
        self.backfill(legacy)
        return self.final_table()

    def settle(self, demo: DemoDevice, key: SimulatedDevice, statuses: tuple[str, ...],
               what: str) -> None:
        """Wait (briefly) for Mender to show `key` in one of `statuses`; the check that follows
        says what was seen. Pub/Sub delivers on its own time, after the registry answered."""
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: self.world.key_status(demo.id, key) in statuses, 20.0, what)

    def both_clouds(self, devices: list[DemoDevice], what: str) -> None:
        results = [(self.world.authenticate(d.device), self.world.publish(d.device))
                   for d in self.n.progress(devices, "devices at work", len(devices))]
        good = sum(1 for ota, telemetry in results if ota and telemetry)
        noun = "device" if len(devices) == 1 else "devices"
        self.n.check(good == len(devices), f"{good}/{len(devices)} {noun} {what}")

    def changes(self) -> None:
        w, n, d = self.world, self.n, self.one(ROTATED)
        n.chapter(f"4. {d.id} rotates its key (RSA → EC); one device is blocked, one deleted")
        old, new = d.device, SimulatedDevice.generate(d.id, "ec")
        w.set_credentials(d, [old, new])
        w.drain()
        self.settle(d, new, ("preauthorized", "accepted"), "the new key to reach Mender")
        n.check(w.authenticate(new), "new key admitted by Mender as soon as it was registered")
        w.set_credentials(d, [new])
        w.drain()
        self.settle(d, old, ("rejected", "absent"), "the old key to leave Mender")
        d.device, d.old = new, old
        n.check(not w.authenticate(old), "old key refused by Mender once it left the registry")
        n.check(w.publish(new) and not w.publish(old), "registry takes telemetry from the new "
                "key only")
        blocked, deleted = self.one(BLOCKED), self.one(DELETED)
        w.block(blocked)
        w.delete(deleted)
        w.drain()
        self.expect_mender([blocked], AuthStatus.REJECTED, "blocked device rejected in Mender")
        self.expect_mender([deleted], None, "deleted device decommissioned from Mender")

    def backfill(self, legacy: list[DemoDevice]) -> None:
        n = self.n
        n.chapter("5. `sync` backfills the devices that existed before the bridge")
        self.expect_mender(legacy, None, "pre-existing devices unknown to Mender before sync")
        first = self.sync()
        changed = sorted({o.device.rsplit("/", 1)[-1] for o in first.outcomes
                          if o.status == "done"})
        n.check(changed == sorted(d.id for d in legacy) and not first.failed,
                f"first sync changed exactly the pre-existing devices ({', '.join(changed)})")
        self.expect_mender(legacy, AuthStatus.PREAUTHORIZED, "pre-existing devices "
                           "preauthorized by sync")
        self.both_clouds(legacy, "authenticated and published")
        second = self.sync()
        n.check(not second.changed and not second.failed,
                "second sync changed nothing: " + _counts(second))

    def sync(self) -> Report:
        settings = Settings.from_toml(self.world.sandbox.config_path, env={"ON_BLOCKED": "reject"})
        with build_service(settings) as service:
            report = service.backfill([REF])
        if report.interrupted == "interrupted":  # the backfill ends early on Ctrl-C
            raise KeyboardInterrupt
        self.n.say("sync: " + _counts(report))
        return report

    def final_table(self) -> list[Row]:
        seen = self.world.mender_devices()
        rows = []
        for d in self.devices:
            mender = _status(seen, d.id)
            telemetry, ota = self.world.publish(d.device), self.world.authenticate(d.device)
            live = d.registry_state == "active"
            expected = ("accepted", True, True) if live else (
                ("rejected" if d.role == BLOCKED else "absent"), False, False)
            rows.append(Row(d.id, d.role, d.registry_state, mender,
                            normalize(d.device.public_pem).fingerprint[:16],
                            _yes(telemetry), _yes(ota), (mender, telemetry, ota) == expected))
        return rows


def _status(seen: Mapping[str, MenderDevice], device_id: str) -> str:
    device = seen.get(device_id)
    if device is None or device.decommissioning:
        return "absent"
    return device.status.value


def _yes(ok: bool) -> str:
    return "ok" if ok else "refused"


def _counts(report: Report) -> str:
    return ", ".join(f"{k} {v}" for k, v in report.summary().items() if v) or "nothing to do"
