"""Issue 15 end to end: registry changes made with the real google-cloud-iot client reach
`on_push` (functions-framework) as audit events, the bridge changes the Mender stand-in, and
Debian's real `mender` client lives with the result: a key rotation, a decommission that locks
the daemon out, a re-creation inside the decommissioning window, a preauthorization that lost
its auth set, and inventory's `status` through the bridge's every action (with `mender-cli`
listing the result). Every assertion reads the stand-ins back over their own APIs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.realism_support import (
    AUTH,
    DEVAUTH,
    DEVICE_INVENTORY,
    GONE,
    NEXT_V2,
    Stack,
    device_key,
    mender_cli_devices,
    need_mender_cli,
    start_stack,
)
from tests.function.e2e_support import der, wait_for
from tests.function.helpers import public_pem
from tests.support.mender_client import need_mender_client
from tests.support.mender_daemon import AUTH_REFUSED

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
real_client = pytest.mark.mender_client


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("realism"))


@pytest.fixture(autouse=True)
def _faults_restored(stack: Stack) -> Iterator[None]:
    """A test's Mender faults end with it."""
    saved = stack.faults()
    yield
    stack.set_faults(**saved)
    assert stack.faults() == saved


def _refused_from_the_first_401(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls from the first refused one on, each checked refused (401)."""
    statuses = [c["status"] for c in calls]
    assert 401 in statuses, calls
    first = statuses.index(401)
    assert all(c["status"] < 300 for c in calls[:first]), calls
    refused = calls[first:]
    assert all(c["status"] == 401 for c in refused), refused
    return refused


@real_client
def test_rotation_reaches_the_real_client(stack: Stack, tmp_path: Path) -> None:
    need_mender_client()
    device_id, path_a, path_b = "rotate-1", tmp_path / "a.pem", tmp_path / "b.pem"
    key_a, key_b = device_key(path_a), device_key(path_b)
    stack.create(device_id, key_a)
    stack.wait_for_keys(device_id, {der(key_a): "preauthorized"}, "A preauthorized")
    with stack.daemon(path_a, device_id) as old:
        old.wait_for_update_checks(1)
        assert stack.mender.keys(device_id) == {der(key_a): "accepted"}
        rotated = time.time()
        stack.set_keys(device_id, key_b)
        stack.wait_for_keys(device_id, {der(key_a): "rejected", der(key_b): "preauthorized"},
                            "A revoked and B preauthorized by the bridge")
        old.wait_for_log(AUTH_REFUSED)
    # Once the bridge acted, A's token is refused at its next call, and so is its attempt to
    # authenticate again.
    refused = _refused_from_the_first_401(stack.device_calls(rotated))
    assert refused[0]["path"] != AUTH and any(c["path"] == AUTH for c in refused), refused

    started = time.time()
    with stack.daemon(path_b, device_id) as new:
        new.wait_for_update_checks(1)
    calls = stack.device_calls(started)
    assert [c["status"] for c in calls if c["path"] == AUTH][:1] == [200], calls
    assert AUTH_REFUSED not in new.log()

    again = time.time()
    with stack.daemon(path_a, device_id) as old:
        old.wait_for_log(AUTH_REFUSED)
    calls = stack.device_calls(again)
    assert calls and all(c["path"] == AUTH and c["status"] == 401 for c in calls), calls
    [device] = stack.mender.devices(device_id)
    assert device["status"] == "accepted"
    assert stack.mender.keys(device_id) == {der(key_a): "rejected", der(key_b): "accepted"}


@real_client
def test_decommission_locks_the_real_daemon_out(stack: Stack, tmp_path: Path) -> None:
    need_mender_client()
    device_id, path = "retire-1", tmp_path / "device.pem"
    key = device_key(path)
    stack.create(device_id, key)
    stack.wait_for_keys(device_id, {der(key): "preauthorized"}, "preauthorized")
    with stack.daemon(path, device_id, artifact_name="bridge-e2e-7",
                      device_type="bridge-e2e-board") as daemon:
        daemon.wait_for_update_checks(2)
        [device] = stack.mender.devices(device_id)
        mender_id = device["id"]
        polled = {(c["method"], c["path"], c["status"]) for c in stack.device_calls(0)
                  if c["device_id"] == mender_id}
        assert {("POST", NEXT_V2, 204), ("PUT", DEVICE_INVENTORY, 200)} <= polled, polled
        reported = stack.inventory(mender_id, "inventory")
        assert (reported["artifact_name"], reported["device_type"]) == (
            "bridge-e2e-7", "bridge-e2e-board")

        deleted = time.time()
        stack.delete(device_id)
        wait_for(lambda: stack.device(mender_id) is None, 60, "decommissioned by the bridge")
        wait_for(lambda: any(c["path"] == AUTH for c in stack.device_calls(deleted)), 60,
                 "the daemon to try to authenticate again")
        daemon.wait_for_log(AUTH_REFUSED, 2)
    refused = _refused_from_the_first_401(stack.device_calls(deleted))
    assert refused[0]["path"] != AUTH and any(c["path"] == AUTH for c in refused), refused
    assert stack.inventory_status(mender_id) == GONE
    # Its attempts made a new device for the identity, which nothing accepts.
    assert [d["status"] for d in stack.mender.devices(device_id)] == ["pending"]
    assert any(r.get("action") == "decommission" and r.get("outcome") == "done"
               for r in stack.records(device_id)), stack.records(device_id)


def test_recreated_within_the_decommissioning_window(stack: Stack) -> None:
    device_id, old, new = "window-1", public_pem(), public_pem()
    stack.set_faults(decommission_delay_ms=2000)
    stack.create(device_id, old)
    stack.wait_for_keys(device_id, {der(old): "preauthorized"}, "preauthorized")
    [first] = stack.mender.devices(device_id)
    # The delete path finds the Mender device through inventory (asynchronous).
    wait_for(lambda: stack.inventory_status(first["id"]) == "preauthorized", 60, "inventory")
    stack.delete(device_id)
    wait_for(lambda: (stack.device(first["id"]) or {}).get("decommissioning"), 60,
             "decommissioning")
    stack.create(device_id, new)
    wait_for(lambda: [(d["decommissioning"], d["status"]) for d in stack.mender.devices(
        device_id)] == [(False, "preauthorized")], 60, "one device again")
    assert stack.mender.keys(device_id) == {der(new): "preauthorized"}
    assert stack.device(first["id"]) is None
    records = stack.records(device_id)
    # The create event met the decommissioning device (409), was answered "deliver again",
    # and its redelivery preauthorized the new key; no event failed.
    retried = [r for r in records if r.get("outcome") == "retry"]
    assert retried and "decommissioned" in retried[0]["message"], records
    assert any(r.get("message_id") == retried[0]["message_id"]
               and r.get("action") == "preauthorize" and r.get("outcome") == "done"
               for r in records), records
    assert not [r for r in records if r.get("outcome") == "failed"]
    wait_for(lambda: stack.audit_status()["pending"] == 0, 60, "every event delivered")
    assert stack.audit_status()["dead"] == 0


@real_client
def test_a_preauthorization_that_lost_its_auth_set_ends_preauthorized(
        stack: Stack, tmp_path: Path) -> None:
    need_mender_client()
    device_id, path = "lost-1", tmp_path / "device.pem"
    key = device_key(path)
    stack.set_faults(lose_authset_on_preauth=True)
    stack.create(device_id, key)
    # Mender keeps the device without its auth set (500, then 409 to the retries) ...
    wait_for(lambda: any(d.get("auth_sets") == [] for d in stack.mender.devices(device_id)),
             60, "the device written without its auth set")
    stack.set_faults(lose_authset_on_preauth=False)  # ... until its workflows are back
    stack.wait_for_keys(device_id, {der(key): "preauthorized"}, "the key preauthorized")
    [device] = stack.mender.devices(device_id)
    assert device["status"] == "preauthorized"
    done = [r.get("action") for r in stack.records(device_id) if r.get("outcome") == "done"]
    # The half-made device was made again: decommissioned, then preauthorized whole.
    assert done[-2:] == ["decommission", "preauthorize"], done
    assert not [r for r in stack.records(device_id) if r.get("outcome") == "failed"]
    started = time.time()
    with stack.daemon(path, device_id) as daemon:
        daemon.wait_for_update_checks(1)
    calls = stack.device_calls(started)
    assert [c["status"] for c in calls if c["path"] == AUTH][:1] == [200], calls
    assert stack.mender.keys(device_id) == {der(key): "accepted"}


def test_a_repaired_device_is_decommissioned_when_deleted(stack: Stack) -> None:
    device_id, key = "lost-2", public_pem()
    stack.set_faults(lose_authset_on_preauth=True)
    stack.create(device_id, key)
    wait_for(lambda: any(d.get("auth_sets") == [] for d in stack.mender.devices(device_id)),
             60, "the device written without its auth set")
    stack.set_faults(lose_authset_on_preauth=False)  # the workflows service is back
    stack.wait_for_keys(device_id, {der(key): "preauthorized"}, "the key preauthorized")
    stack.delete(device_id)
    wait_for(lambda: [r for r in stack.records(device_id)
                      if r.get("kind") == "delete" and r.get("outcome")], 60,
             "the delete event handled")
    wait_for(lambda: stack.mender.devices(device_id) == [], 60, "the device decommissioned")


def _follows(stack: Stack, mender_id: str, status: str) -> None:
    """deviceauth's status, then inventory's `status` attribute within its delay."""
    wait_for(lambda: (stack.device(mender_id) or {}).get("status", GONE) == status, 60,
             f"deviceauth status {status}")
    wait_for(lambda: stack.inventory_status(mender_id) == status, 60,
             f"inventory status {status}")


@real_client
def test_inventory_status_follows_the_bridge(stack: Stack, tmp_path: Path) -> None:
    need_mender_client()
    need_mender_cli()
    device_id, path = "inventory-1", tmp_path / "device.pem"
    key = device_key(path)
    stack.set_faults(inventory_delay_ms=500)
    with stack.daemon(path, device_id) as daemon:  # a device in the field asks first
        daemon.wait_for_log(AUTH_REFUSED)
    [device] = stack.mender.devices(device_id)
    _follows(stack, device["id"], "pending")
    stack.create(device_id, key)  # the bridge accepts the pending set of a registry key
    _follows(stack, device["id"], "accepted")
    stack.set_keys(device_id)  # no credential left: the bridge rejects it
    _follows(stack, device["id"], "rejected")
    stack.delete(device_id)  # the bridge decommissions it: its record goes
    _follows(stack, device["id"], GONE)
    stack.create(device_id, key)  # the bridge preauthorizes it again, a new device
    [again] = wait_for(lambda: stack.mender.devices(device_id), 60, "preauthorized again")
    _follows(stack, again["id"], "preauthorized")
    actions = [r["action"] for r in stack.records(device_id) if r.get("outcome") == "done"]
    assert actions == ["accept", "reject", "decommission", "preauthorize"], actions

    listed = stack.call("GET", DEVAUTH, params={"per_page": 500}).json()
    cli = mender_cli_devices(stack)
    assert cli == {d["id"]: d["status"] for d in listed}
    assert cli[again["id"]] == "preauthorized" and device["id"] not in cli
