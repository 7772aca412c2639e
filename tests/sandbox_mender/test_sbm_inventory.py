"""The inventory stand-in: records and their `status` following deviceauth after the
propagation delay, tags with ETags and limits, the v1 list and v2 search, and the device APIs
a client calls with its token (inventory submission, update check)."""

from __future__ import annotations

from typing import Any

import pytest
from sbm_support import (
    DEVAUTH,
    DEVICE_INVENTORY,
    INVENTORY,
    NEXT_V1,
    NEXT_V2,
    SEARCH,
    Mender,
    device_id_of,
    eventually,
    new_key,
    public_pem,
    unique_identity,
)

pytestmark = pytest.mark.e2e
PROVIDES = {"device_provides": {"artifact_name": "a1", "device_type": "t1"},
            "update_control_map": True}


def _record(mender: Mender, device_id: str) -> dict[str, Any]:
    response = eventually(lambda: mender.call("GET", f"{INVENTORY}/devices/{device_id}"),
                          lambda r: r.status_code == 200)
    result: dict[str, Any] = response.json()
    return result


def _attrs(record: dict[str, Any], scope: str) -> dict[str, Any]:
    return {a["name"]: a["value"] for a in record["attributes"] if a["scope"] == scope}


def _accepted(mender: Mender, identity: dict[str, str] | None = None) -> tuple[str, str]:
    """A preauthorized device that authenticated: (device id, device JWT)."""
    identity, key = identity or unique_identity(), new_key()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(key)).headers["Location"])
    token = mender.authenticate(key, identity)
    assert token.status_code == 200
    return device_id, token.text


def test_status_follows_preauthorize_accept_reject_and_decommission(mender: Mender) -> None:
    identity = {**unique_identity(), "sn": "7"}
    key = new_key()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(key)).headers["Location"])
    eventually(lambda: _attrs(_record(mender, device_id), "identity"),
               lambda got: got == {**identity, "status": "preauthorized"})
    mender.authenticate(key, identity)
    eventually(lambda: mender.inventory_status(device_id), lambda s: s == "accepted")
    [aid] = [a["id"] for a in mender.device(device_id)["auth_sets"]]
    mender.set_status(device_id, aid, "rejected")
    eventually(lambda: mender.inventory_status(device_id), lambda s: s == "rejected")
    mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}")
    eventually(lambda: mender.call("GET", f"{INVENTORY}/devices/{device_id}").status_code,
               lambda code: code == 404)


def test_a_device_that_asks_first_is_pending_in_inventory(mender: Mender) -> None:
    identity = unique_identity()
    assert mender.authenticate(new_key(), identity).status_code == 401
    found = eventually(lambda: mender.call("POST", SEARCH, json={"filters": [
        {"scope": "identity", "attribute": "google_iot_id", "type": "$eq",
         "value": identity["google_iot_id"]}]}).json(), lambda got: len(got) == 1)
    assert _attrs(found[0], "identity")["status"] == "pending"


def test_inventory_lags_deviceauth_by_the_propagation_delay(fresh: Mender) -> None:
    fresh.set_faults(inventory_delay_ms=3000)
    device_id = device_id_of(fresh.preauthorize(unique_identity(), public_pem(new_key()))
                             .headers["Location"])
    assert fresh.call("GET", f"{INVENTORY}/devices/{device_id}").status_code == 404
    eventually(lambda: fresh.inventory_status(device_id), lambda s: s == "preauthorized")
    fresh.set_faults(inventory_delay_ms=0)
    other = device_id_of(fresh.preauthorize(unique_identity(), public_pem(new_key()))
                         .headers["Location"])
    assert fresh.inventory_status(other) == "preauthorized"  # no delay: in the request


def test_tags_with_etags(mender: Mender) -> None:
    device_id, _ = _accepted(mender)
    path = f"{INVENTORY}/devices/{device_id}/tags"
    assert "ETag" not in eventually(lambda: mender.call("GET", f"{INVENTORY}/devices/{device_id}"),
                                    lambda r: r.status_code == 200).headers
    put = mender.call("PUT", path, json=[{"name": "site", "value": "lyon"},
                                         {"name": "env", "value": "test", "description": "d"}])
    assert put.status_code == 200
    first = mender.call("GET", f"{INVENTORY}/devices/{device_id}")
    etag = first.headers["ETag"]
    assert _attrs(first.json(), "tags") == {"site": "lyon", "env": "test"}
    assert all("timestamp" in a for a in first.json()["attributes"] if a["scope"] == "tags")
    patched = mender.call("PATCH", path, json=[{"name": "rack", "value": "3"}],
                          headers={"If-Match": etag})
    assert patched.status_code == 200
    second = mender.call("GET", f"{INVENTORY}/devices/{device_id}")
    assert second.headers["ETag"] != etag
    assert _attrs(second.json(), "tags") == {"site": "lyon", "env": "test", "rack": "3"}
    for stale in (etag, f'"{second.headers["ETag"]}"'):
        refused = mender.call("PATCH", path, json=[{"name": "x", "value": "y"}],
                              headers={"If-Match": stale})
        assert refused.status_code == 412 and refused.json()["error"] == "ETag does not match"
    replaced = mender.call("PUT", path, json=[{"name": "only", "value": "1"}],
                           headers={"If-Match": second.headers["ETag"]})
    assert replaced.status_code == 200
    assert _attrs(_record(mender, device_id), "tags") == {"only": "1"}


def test_tag_limits_and_validation(mender: Mender) -> None:
    device_id, _ = _accepted(mender)
    _record(mender, device_id)
    path = f"{INVENTORY}/devices/{device_id}/tags"
    tags = [{"name": f"t{i}", "value": str(i)} for i in range(21)]
    too_many = mender.call("PUT", path, json=tags)
    assert too_many.status_code == 400
    assert too_many.json()["error"] == "the number of attributes in the scope is above the limit"
    assert mender.call("PUT", path, json=tags[:20]).status_code == 200
    assert mender.call("PATCH", path, json=tags[20:]).status_code == 400
    assert mender.call("PATCH", path, json=[{"name": "t0", "value": "new"}]).status_code == 200
    assert _attrs(_record(mender, device_id), "tags")["t0"] == "new"
    for body, message in (([{"name": "", "value": "v"}], "name: cannot be blank."),
                          ([{"name": "n" * 1025, "value": "v"}],
                           "name: the length must be between 1 and 1024."),
                          ([{"name": "n", "value": None}],
                           "value: supported types are string, float64, and arrays thereof."),
                          ([{"name": "n", "value": {"a": 1}}],
                           "value: supported types are string, float64, and arrays thereof.")):
        response = mender.call("PATCH", path, json=body)
        assert (response.status_code, response.json()["error"]) == (400, message)
    assert mender.call("PUT", path, json={"name": "n"}).status_code == 400
    assert mender.call("PUT", path, data="x", headers={"Content-Type": "text/plain"}
                       ).status_code == 415
    assert len(_attrs(_record(mender, device_id), "tags")) == 20


def test_tags_of_an_unknown_device(mender: Mender) -> None:
    path = f"{INVENTORY}/devices/nobody/tags"
    assert mender.call("PUT", path, json=[{"name": "a", "value": "b"}]).status_code == 200
    assert mender.call("GET", f"{INVENTORY}/devices/nobody").status_code == 404  # none made
    assert mender.call("PATCH", path, json=[{"name": "a", "value": "b"}],
                       headers={"If-Match": "x"}).status_code == 412


def test_v2_search(fresh: Mender) -> None:
    fresh.set_faults(inventory_delay_ms=0)
    a, _ = _accepted(fresh, {"google_iot_id": "a", "sn": "1"})
    b = device_id_of(fresh.preauthorize({"google_iot_id": "b", "sn": "2"},
                                        public_pem(new_key())).headers["Location"])
    fresh.call("PUT", f"{INVENTORY}/devices/{b}/tags", json=[{"name": "site", "value": "x"}])

    def ids(*filters: dict[str, Any], **extra: Any) -> list[str]:
        response = fresh.call("POST", SEARCH, json={"filters": list(filters), **extra})
        assert response.status_code == 200, response.text
        assert int(response.headers["X-Total-Count"]) >= len(response.json())
        return [d["id"] for d in response.json()]

    def f(scope: str, name: str, op: str, value: Any) -> dict[str, Any]:
        return {"scope": scope, "attribute": name, "type": op, "value": value}

    assert ids(f("identity", "google_iot_id", "$eq", "a")) == [a]
    assert sorted(ids(f("identity", "sn", "$in", ["1", "2"]))) == sorted([a, b])
    assert ids(f("identity", "status", "$eq", "accepted")) == [a]
    assert ids(f("identity", "sn", "$ne", "1")) == [b]
    assert ids(f("tags", "site", "$exists", True)) == [b]
    assert ids(f("tags", "site", "$exists", False)) == [a]
    assert ids(f("identity", "google_iot_id", "$eq", "nobody")) == []
    assert len(ids(per_page=1, page=2)) == 1
    refused = fresh.call("POST", SEARCH, json={"filters": [f("inventory", "x", "$regex", "a")]})
    assert refused.status_code == 400
    assert fresh.call("POST", SEARCH, data="x", headers={"Content-Type": "text/plain"}
                      ).status_code == 415


def test_v1_list_filters_by_scope_and_pages(fresh: Mender) -> None:
    fresh.set_faults(inventory_delay_ms=0)
    accepted, _ = _accepted(fresh)
    fresh.preauthorize(unique_identity(), public_pem(new_key()))
    listed = fresh.call("GET", f"{INVENTORY}/devices", params={"identity/status": "accepted"})
    assert [d["id"] for d in listed.json()] == [accepted]
    assert listed.headers["X-Total-Count"] == "1"
    first = fresh.call("GET", f"{INVENTORY}/devices", params={"per_page": 1})
    assert first.headers["X-Total-Count"] == "2" and 'rel="next"' in first.headers["Link"]


def test_device_inventory_submission_and_update_check(mender: Mender) -> None:
    device_id, token = _accepted(mender)
    sent = [{"name": "device_type", "value": "t1"}, {"name": "artifact_name", "value": "a1"},
            {"name": "cpus", "value": 4}, {"name": "ips", "value": ["10.0.0.1", "::1"]}]
    assert mender.device_call(token, "PUT", DEVICE_INVENTORY, json=sent).status_code == 200
    assert _attrs(_record(mender, device_id), "inventory") == {
        "device_type": "t1", "artifact_name": "a1", "cpus": 4, "ips": ["10.0.0.1", "::1"]}
    patch = [{"name": "cpus", "value": 8}]
    assert mender.device_call(token, "PATCH", DEVICE_INVENTORY, json=patch).status_code == 200
    assert _attrs(_record(mender, device_id), "inventory")["cpus"] == 8
    replace = [{"name": "artifact_name", "value": "a2"}]
    assert mender.device_call(token, "PUT", DEVICE_INVENTORY, json=replace).status_code == 200
    assert _attrs(_record(mender, device_id), "inventory") == {"artifact_name": "a2"}
    too_many = [{"name": f"a{i}", "value": "v"} for i in range(101)]
    assert mender.device_call(token, "PUT", DEVICE_INVENTORY, json=too_many).status_code == 400
    check = mender.device_call(token, "POST", NEXT_V2, json=PROVIDES)
    assert check.status_code == 204 and check.content == b""
    old_style = mender.device_call(token, "GET", NEXT_V1,
                                   params={"artifact_name": "a1", "device_type": "t1"})
    assert old_style.status_code == 204
    blank = mender.device_call(token, "POST", NEXT_V2, json={"device_provides": {}})
    assert blank.json()["error"] == "artifact_name: cannot be blank; device_type: cannot be blank."
    log = mender.session.get(mender.url + "/_sandbox/device_log",
                             params={"device_id": device_id}, timeout=10).json()
    assert [(e["method"], e["path"], e["status"]) for e in log][-3:] == [
        ("POST", NEXT_V2, 204), ("GET", NEXT_V1, 204), ("POST", NEXT_V2, 400)]


def test_device_apis_refuse_tokens_that_are_not_valid_device_tokens(mender: Mender) -> None:
    no_header = mender.session.post(mender.url + NEXT_V2, json=PROVIDES, timeout=10)
    assert no_header.status_code == 401
    assert no_header.json()["error"] == "Authorization not present in header"
    for token in ("garbage", mender.token):  # a management token is no device token
        response = mender.device_call(token, "POST", NEXT_V2, json=PROVIDES)
        assert response.status_code == 401 and response.content == b""


def test_a_rejected_or_decommissioned_device_loses_access(mender: Mender) -> None:
    rejected, rejected_token = _accepted(mender)
    [aid] = [a["id"] for a in mender.device(rejected)["auth_sets"]]
    assert mender.set_status(rejected, aid, "rejected").status_code == 204
    assert mender.device_call(rejected_token, "POST", NEXT_V2, json=PROVIDES
                              ).status_code == 401
    gone, gone_token = _accepted(mender)
    assert mender.device_call(gone_token, "POST", NEXT_V2, json=PROVIDES).status_code == 204
    assert mender.call("DELETE", f"{DEVAUTH}/devices/{gone}").status_code == 204
    assert mender.device_call(gone_token, "POST", NEXT_V2, json=PROVIDES).status_code == 401
