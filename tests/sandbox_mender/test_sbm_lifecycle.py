"""Key rotation, the device status deviceauth derives from its auth sets, auth-set deletion
(Mender 4.1.3 and main), the decommissioning window and the 4.1.3 preauthorization failure,
each read back over the stand-in's HTTP APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sbm_support import (
    DEVAUTH,
    DEVICE_INVENTORY,
    Mender,
    PrivateKey,
    device_id_of,
    eventually,
    new_key,
    public_pem,
    start,
    unique_identity,
)

pytestmark = pytest.mark.e2e
ATTRS = [{"name": "artifact_name", "value": "a1"}]


def _by_identity(mender: Mender, identity: dict[str, str]) -> list[dict[str, Any]]:
    listed = mender.call("GET", f"{DEVAUTH}/devices", params={"per_page": 500}).json()
    return [d for d in listed if d["identity_data"] == identity]


def _sets(mender: Mender, device_id: str) -> dict[str, str]:
    """auth-set status by public key."""
    return {a["pubkey"]: a["status"] for a in mender.device(device_id)["auth_sets"]}


def test_rotation_accepts_the_forced_key_and_rejects_the_old_one(mender: Mender) -> None:
    identity, old, new = unique_identity(), new_key(), new_key("rsa")
    device_id = device_id_of(mender.preauthorize(identity, public_pem(old)).headers["Location"])
    old_token = mender.authenticate(old, identity).text
    assert mender.device_call(old_token, "PUT", DEVICE_INVENTORY, json=ATTRS).status_code == 200
    assert mender.preauthorize(identity, public_pem(new), force=True).status_code == 201
    assert mender.device(device_id)["status"] == "accepted"  # force recomputes nothing
    assert _sets(mender, device_id) == {public_pem(old): "accepted",
                                        public_pem(new): "preauthorized"}
    assert mender.authenticate(new, identity).status_code == 200  # its first request
    assert _sets(mender, device_id) == {public_pem(old): "rejected",
                                        public_pem(new): "accepted"}
    assert mender.device(device_id)["status"] == "accepted"
    refused = mender.device_call(old_token, "PUT", DEVICE_INVENTORY, json=ATTRS)
    assert refused.status_code == 401 and refused.content == b""
    assert mender.authenticate(old, identity).status_code == 401
    assert _sets(mender, device_id)[public_pem(old)] == "rejected"


def _pending_device(mender: Mender, *keys: PrivateKey) -> tuple[str, dict[str, str]]:
    identity = unique_identity()
    for key in keys:
        assert mender.authenticate(key, identity).status_code == 401
    [device] = _by_identity(mender, identity)
    return device["id"], identity


def test_device_status_is_derived_from_its_auth_sets(mender: Mender) -> None:
    first, second = new_key(), new_key()
    device_id, _identity = _pending_device(mender, first, second)
    ids = {a["pubkey"]: a["id"] for a in mender.device(device_id)["auth_sets"]}
    steps = [(first, "rejected", "pending"),   # one pending set left
             (second, "rejected", "rejected"),
             (second, "accepted", "accepted"),
             (first, "pending", "accepted"),   # accepted outweighs pending
             (second, "rejected", "pending")]
    for key, status, device_status in steps:
        assert mender.set_status(device_id, ids[public_pem(key)], status).status_code == 204
        assert mender.device(device_id)["status"] == device_status, (status, device_status)
        assert eventually(lambda: mender.inventory_status(device_id),
                          lambda got, want=device_status: got == want) == device_status
    mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}/auth/{ids[public_pem(first)]}")
    mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}/auth/{ids[public_pem(second)]}")
    assert mender.device(device_id)["status"] == "noauth"
    eventually(lambda: mender.inventory_status(device_id), lambda got: got == "noauth")


def test_a_forced_key_leaves_a_rejected_device_rejected_until_it_authenticates(
        mender: Mender) -> None:
    old, new = new_key(), new_key()
    device_id, identity = _pending_device(mender, old)
    [aid] = [a["id"] for a in mender.device(device_id)["auth_sets"]]
    mender.set_status(device_id, aid, "rejected")
    assert mender.preauthorize(identity, public_pem(new), force=True).status_code == 201
    assert mender.device(device_id)["status"] == "rejected"  # deviceauth's FIXME
    assert mender.authenticate(new, identity).status_code == 200
    assert mender.device(device_id)["status"] == "accepted"


def test_two_preauthorized_sets_break_the_derived_status(mender: Mender) -> None:
    identity = unique_identity()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(new_key())).headers[
        "Location"])
    assert mender.preauthorize(identity, public_pem(new_key()), force=True).status_code == 201
    stranger = new_key()
    broken = mender.authenticate(stranger, identity)
    assert broken.status_code == 500 and broken.json()["error"] == "internal error"
    # deviceauth writes without a transaction: the pending set was kept all the same.
    assert sorted(_sets(mender, device_id).values()) == ["pending", "preauthorized",
                                                         "preauthorized"]
    assert mender.device(device_id)["status"] == "preauthorized"


def _preauthorized_with_pending(mender: Mender) -> tuple[str, dict[str, str], PrivateKey,
                                                           dict[str, str]]:
    identity, other = unique_identity(), new_key()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(new_key())).headers[
        "Location"])
    assert mender.authenticate(other, identity).status_code == 401
    ids = {a["status"]: a["id"] for a in mender.device(device_id)["auth_sets"]}
    return device_id, identity, other, ids


def test_deleting_a_preauthorized_set_deletes_its_device_in_4_1_3(mender: Mender) -> None:
    device_id, identity, other, ids = _preauthorized_with_pending(mender)
    deleted = mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}/auth/{ids['preauthorized']}")
    assert deleted.status_code == 204
    assert mender.call("GET", f"{DEVAUTH}/devices/{device_id}").status_code == 404
    eventually(lambda: mender.inventory_status(device_id), lambda got: got is None)
    # The pending set outlived its device: the key's next request makes a device that can
    # never get an auth set of its own (the set's key is taken).
    assert mender.authenticate(other, identity).status_code == 401
    [ghost] = _by_identity(mender, identity)
    assert ghost["status"] == "noauth" and ghost["auth_sets"] == []


def test_deleting_a_preauthorized_set_keeps_a_device_with_other_sets_in_main(
        tmp_path: Path) -> None:
    main = start(tmp_path)
    try:
        main.set_faults(preauth_set_delete="last_set")
        device_id, _, _, ids = _preauthorized_with_pending(main)
        path = f"{DEVAUTH}/devices/{device_id}/auth/{ids['preauthorized']}"
        assert main.call("DELETE", path).status_code == 204
        device = main.device(device_id)
        assert device["status"] == "pending"
        assert [a["id"] for a in device["auth_sets"]] == [ids["pending"]]
        last = f"{DEVAUTH}/devices/{device_id}/auth/{ids['pending']}"
        assert main.call("DELETE", last).status_code == 204
        assert main.device(device_id)["status"] == "noauth"
    finally:
        main.stop()


def test_deleting_the_accepted_set_revokes_its_token(mender: Mender) -> None:
    identity, key = unique_identity(), new_key()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(key)).headers["Location"])
    token = mender.authenticate(key, identity).text
    [aid] = [a["id"] for a in mender.device(device_id)["auth_sets"]]
    assert mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}/auth/{aid}").status_code == 204
    assert mender.device_call(token, "PUT", DEVICE_INVENTORY, json=ATTRS).status_code == 401
    assert mender.device(device_id)["status"] == "noauth"


def test_a_set_of_another_device_is_not_deleted(mender: Mender) -> None:
    device_id, _ = _pending_device(mender, new_key())
    other_id, _ = _pending_device(mender, new_key())
    [other_aid] = [a["id"] for a in mender.device(other_id)["auth_sets"]]
    response = mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}/auth/{other_aid}")
    assert response.status_code == 404 and response.content == b""
    assert [a["id"] for a in mender.device(other_id)["auth_sets"]] == [other_aid]


def test_decommissioning_window(fresh: Mender) -> None:
    fresh.set_faults(decommission_delay_ms=1500)
    identity, key = unique_identity(), new_key()
    device_id = device_id_of(fresh.preauthorize(identity, public_pem(key)).headers["Location"])
    token = fresh.authenticate(key, identity).text
    assert fresh.call("DELETE", f"{DEVAUTH}/devices/{device_id}").status_code == 204
    assert fresh.device(device_id)["decommissioning"] is True
    conflict = fresh.preauthorize(identity, public_pem(new_key()))
    assert conflict.status_code == 409
    assert conflict.json()["id"] == device_id and conflict.json()["decommissioning"] is True
    assert fresh.authenticate(key, identity).status_code == 401
    assert fresh.device_call(token, "PUT", DEVICE_INVENTORY, json=ATTRS).status_code == 401
    eventually(lambda: fresh.call("GET", f"{DEVAUTH}/devices/{device_id}").status_code,
               lambda code: code == 404)
    assert fresh.inventory_status(device_id) is None  # inventory's record went first
    created = fresh.preauthorize(identity, public_pem(new_key()))
    assert created.status_code == 201


def test_decommission_without_delay_removes_the_device_in_the_request(fresh: Mender) -> None:
    identity = unique_identity()
    device_id = device_id_of(fresh.preauthorize(identity, public_pem(new_key())).headers[
        "Location"])
    assert fresh.call("DELETE", f"{DEVAUTH}/devices/{device_id}").status_code == 204
    assert fresh.call("GET", f"{DEVAUTH}/devices/{device_id}").status_code == 404
    assert fresh.preauthorize(identity, public_pem(new_key())).status_code == 201


def test_lost_auth_set_on_preauthorization(fresh: Mender) -> None:
    fresh.set_faults(lose_authset_on_preauth=True, inventory_delay_ms=0)
    identity, key = unique_identity(), new_key()
    failed = fresh.preauthorize(identity, public_pem(key))
    assert failed.status_code == 500 and failed.json()["error"] == "internal error"
    [device] = _by_identity(fresh, identity)
    assert device["status"] == "preauthorized" and device["auth_sets"] == []
    retry = fresh.preauthorize(identity, public_pem(key))
    assert retry.status_code == 409
    assert retry.json()["id"] == device["id"] and retry.json()["auth_sets"] is None
    assert fresh.device(device["id"])["auth_sets"] == []  # the key is not there
    assert fresh.preauthorize(identity, public_pem(key), force=True).status_code == 201
    assert _sets(fresh, device["id"]) == {public_pem(key): "preauthorized"}
    assert fresh.inventory_status(device["id"]) is None  # the status workflow never ran
    assert fresh.authenticate(key, identity).status_code == 200
    record = fresh.call("GET", f"/api/management/v1/inventory/devices/{device['id']}").json()
    # Inventory learns the status from the acceptance, never the identity attributes.
    assert {(a["scope"], a["name"]) for a in record["attributes"]
            if a["scope"] == "identity"} == {("identity", "status")}
