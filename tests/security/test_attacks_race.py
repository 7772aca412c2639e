"""Issue 13, the create/delete race, end to end: two `on_push` instances (as Cloud Functions
scale out), the first handling a device's create event whose preauthorize the Mender stand-in
answers 429 with Retry-After, the second handling the device's delete event while the first
waits. The device must end decommissioned in Mender, and nothing else touched."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from bridge.device import SimulatedDevice
from tests.function.e2e_support import wait_for
from tests.security.attack_support import (
    HOME,
    MANAGEMENT,
    VICTIM,
    Relay,
    attack_world,
    ec_credential,
    entry,
    functions,
    push,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
RACER = "racer-1"
# Mender indexes a new device in inventory through a workflow (docs/mender-api.md#inventory),
# which a loaded server takes seconds to run (the stand-in's default is 50 ms); 5 s here, so
# that the re-read below comes before it however slow this machine is.
INVENTORY_DELAY_MS = 5000


def test_a_device_deleted_while_its_create_waits_on_a_429_ends_decommissioned(
        tmp_path: Path) -> None:
    # The rule (Bridge.sync_device): an event-path write that took longer than a second
    # (RECONFIRM_AFTER_S: a 429's wait, retries) re-reads the registry before it counts as
    # done; a device gone by then is decommissioned again, as its delete event would have.
    with attack_world(tmp_path) as world:
        world.mender_faults(inventory_delay_ms=INVENTORY_DELAY_MS)
        made = world.add_device(HOME, RACER, [ec_credential(
            SimulatedDevice.generate(RACER).public_pem)])
        victim = world.auth_sets(VICTIM)

        def refused(method: str, path: str) -> bool:
            return any(s == 429 for m, p, s in relay.calls if (m, p) == (method, path))

        # The first instance reaches Mender through a relay that records every call and holds
        # the retried preauthorize until the delete event has been handled.
        relay = Relay(world.sandbox.mender_url,
                      hold=lambda method, path: (method, path) == ("POST", MANAGEMENT)
                      and refused(method, path))
        first_env = {**world.env, "MENDER_URL": relay.url, "MENDER_TIMEOUT": "60"}
        answers: list[requests.Response] = []
        try:
            with functions(first_env, tmp_path / "first", "on_push") as first, \
                    functions(world.env, tmp_path / "second", "on_push") as second:
                world.mender_faults(rate_429=1.0, retry_after=1)
                create = threading.Thread(target=lambda: answers.append(push(
                    first["on_push"].url, entry("CreateDevice", HOME, RACER, made["numId"]))),
                    daemon=True)
                create.start()
                try:
                    wait_for(lambda: refused("POST", MANAGEMENT), 60, "the preauthorize's 429")
                finally:
                    world.mender_faults(rate_429=0.0)
                world.delete_device(HOME, RACER)
                deleted = push(second["on_push"].url,
                               entry("DeleteDevice", HOME, RACER, made["numId"]))
                # The delete found nothing to decommission: the create had not landed yet.
                assert deleted.json()["outcome"] == "done", deleted.text
                assert world.auth_sets(RACER) == []
                relay.release()
                create.join(90)
                logs = first["on_push"].records()
        finally:
            relay.stop()
        assert [a.status_code for a in answers] == [200]
        assert world.auth_sets(RACER) == [], "deleted from the registry, admitted in Mender"
        # It was admitted after the delete was handled, then decommissioned again.
        writes = [(m, p.split("/")[-1] if m == "DELETE" else p, s) for m, p, s in relay.calls
                  if m in ("POST", "DELETE") and not p.endswith("/search")]
        assert writes[:2] == [("POST", MANAGEMENT, 429), ("POST", MANAGEMENT, 201)], writes
        assert [(m, s) for m, _, s in writes[2:]] == [("DELETE", 204)], writes
        assert world.registry_call("GET", f"{HOME.path}/devices/{RACER}").status_code == 404
        assert world.auth_sets(VICTIM) == victim
        assert any(r.get("action") == "decommission" and r.get("outcome") == "done"
                   for r in logs)
