"""Listing, counting, auth-set status changes, deletion and decommissioning (docs/mender-api.md)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sbm_support import (
    DEVAUTH,
    Mender,
    PrivateKey,
    device_id_of,
    new_key,
    public_pem,
    start,
    unique_identity,
)

pytestmark = pytest.mark.e2e


def _pending(mender: Mender) -> tuple[str, str, PrivateKey, dict[str, str]]:
    """A device that asked once with an unknown key: (device id, auth set id, key, identity)."""
    key, identity = new_key(), unique_identity()
    assert mender.authenticate(key, identity).status_code == 401
    found = mender.call("POST", f"{DEVAUTH}/devices/search", json={"status": "pending"},
                        params={"per_page": 500}).json()
    [device] = [d for d in found if d["identity_data"] == identity]
    return device["id"], device["auth_sets"][0]["id"], key, identity


def _links(response: requests.Response) -> dict[str, str]:
    return {link["rel"]: link["url"] for link in requests.utils.parse_header_links(
        response.headers["Link"])}


def test_list_pages_in_status_then_id_order_with_links(fresh: Mender) -> None:
    ids = [device_id_of(fresh.preauthorize(unique_identity(), public_pem(new_key())).headers[
        "Location"]) for _ in range(5)]
    pending_id, _, _, _ = _pending(fresh)
    expected = [pending_id, *sorted(ids)]  # "pending" sorts before "preauthorized"
    first = fresh.call("GET", f"{DEVAUTH}/devices", params={"per_page": 4})
    assert first.status_code == 200
    assert [d["id"] for d in first.json()] == expected[:4]
    links = _links(first)
    assert set(links) == {"first", "next"} and "page=2" in links["next"]
    second = fresh.call("GET", links["next"])
    assert [d["id"] for d in second.json()] == expected[4:]
    assert set(_links(second)) == {"first", "prev"}
    default = fresh.call("GET", f"{DEVAUTH}/devices").json()
    assert len(default) == 6


def test_list_filters_by_status_and_repeated_id(fresh: Mender) -> None:
    a, _, c = (device_id_of(fresh.preauthorize(unique_identity(), public_pem(new_key()))
                            .headers["Location"]) for _ in range(3))
    pending_id, _, _, _ = _pending(fresh)
    only = fresh.call("GET", f"{DEVAUTH}/devices", params=[("id", a), ("id", c)]).json()
    assert sorted(d["id"] for d in only) == sorted([a, c])
    statuses = fresh.call("GET", f"{DEVAUTH}/devices", params={"status": "pending"}).json()
    assert [d["id"] for d in statuses] == [pending_id]
    assert fresh.call("GET", f"{DEVAUTH}/devices/count").json() == {"count": 4}
    assert fresh.call("GET", f"{DEVAUTH}/devices/count",
                      params={"status": "preauthorized"}).json() == {"count": 3}


@pytest.mark.parametrize(("params", "message"), [
    ({"per_page": "501"}, 'parameter "per_page" above limit (max: 500)'),
    ({"per_page": "0"}, "invalid per_page query: value must be a non-zero positive integer"),
    ({"page": "x"}, 'invalid page query: "x"'),
    ({"status": "bogus"},
     "filter status must be one of: accepted, pending, rejected, preauthorized or noauth"),
])
def test_bad_list_parameters_are_400(mender: Mender, params: dict[str, str],
                                     message: str) -> None:
    response = mender.call("GET", f"{DEVAUTH}/devices", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == message


def test_count_rejects_unknown_status(mender: Mender) -> None:
    response = mender.call("GET", f"{DEVAUTH}/devices/count", params={"status": "x"})
    assert response.status_code == 400


def test_search_accepts_strings_arrays_and_forms_but_not_other_types(fresh: Mender) -> None:
    pending_id, _, _, _ = _pending(fresh)
    fresh.preauthorize(unique_identity(), public_pem(new_key()))
    as_list = fresh.call("POST", f"{DEVAUTH}/devices/search", json={"status": ["pending"]})
    as_form = fresh.call("POST", f"{DEVAUTH}/devices/search", data={"id": pending_id})
    assert [d["id"] for d in as_list.json()] == [pending_id]
    assert [d["id"] for d in as_form.json()] == [pending_id]
    assert "Link" in as_list.headers
    other = fresh.call("POST", f"{DEVAUTH}/devices/search", data="x",
                       headers={"Content-Type": "text/plain"})
    assert other.status_code == 415


TRANSITIONS: list[tuple[str, str, int, str | None]] = [
    ("pending", "accepted", 204, None),
    ("pending", "rejected", 204, None),
    ("pending", "pending", 204, None),
    ("accepted", "rejected", 204, None),
    ("accepted", "pending", 204, None),
    ("rejected", "accepted", 204, None),
    ("rejected", "pending", 204, None),
    ("preauthorized", "accepted", 400, "dev auth: bad request"),
    ("preauthorized", "pending", 400, "dev auth: bad request"),
    ("preauthorized", "rejected", 400, "dev auth: bad request"),
    ("pending", "preauthorized", 400, "incorrect device status"),
    ("pending", "bogus", 400, "incorrect device status"),
]


def _set_in(mender: Mender, status: str) -> tuple[str, str]:
    if status == "preauthorized":
        location = mender.preauthorize(unique_identity(), public_pem(new_key())).headers[
            "Location"]
        device = mender.device(device_id_of(location))
        return device["id"], device["auth_sets"][0]["id"]
    device_id, aid, _, _ = _pending(mender)
    if status != "pending":
        assert mender.set_status(device_id, aid, status).status_code == 204
    return device_id, aid


@pytest.mark.parametrize(("start_status", "target", "code", "message"), TRANSITIONS)
def test_status_transitions(mender: Mender, start_status: str, target: str, code: int,
                            message: str | None) -> None:
    device_id, aid = _set_in(mender, start_status)
    response = mender.set_status(device_id, aid, target)
    assert response.status_code == code
    got = mender.call("GET", f"{DEVAUTH}/devices/{device_id}/auth/{aid}/status").json()
    if message is None:
        assert got == {"status": target}
        assert mender.device(device_id)["status"] == target
    else:
        assert response.json()["error"] == message
        assert got == {"status": start_status}


def test_status_of_a_foreign_or_unknown_set(mender: Mender) -> None:
    device_id, _ = _set_in(mender, "pending")
    _, other_aid = _set_in(mender, "pending")
    mismatch = mender.set_status(device_id, other_aid, "accepted")
    assert mismatch.status_code == 400
    assert mismatch.json()["error"] == "dev auth: dev ID and auth ID mismatch"
    assert mender.set_status(device_id, "nope", "accepted").status_code == 404
    assert mender.call("GET", f"{DEVAUTH}/devices/{device_id}/auth/nope/status"
                       ).status_code == 404


def test_accepting_one_set_rejects_the_other_accepted_set(mender: Mender) -> None:
    device_id, first, _, identity = _pending(mender)
    assert mender.set_status(device_id, first, "accepted").status_code == 204
    second_key = new_key("rsa")
    assert mender.authenticate(second_key, identity).status_code == 401
    sets = {a["status"]: a["id"] for a in mender.device(device_id)["auth_sets"]}
    assert set(sets) == {"accepted", "pending"}
    assert mender.set_status(device_id, sets["pending"], "accepted").status_code == 204
    by_id = {a["id"]: a["status"] for a in mender.device(device_id)["auth_sets"]}
    assert by_id == {first: "rejected", sets["pending"]: "accepted"}
    assert mender.authenticate(second_key, identity).status_code == 200


def test_deleting_the_only_preauthorized_set_deletes_the_device(mender: Mender) -> None:
    device_id, aid = _set_in(mender, "preauthorized")
    response = mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}/auth/{aid}")
    assert response.status_code == 204
    assert mender.call("GET", f"{DEVAUTH}/devices/{device_id}").status_code == 404


def test_unknown_deletes_are_404_with_an_empty_body(mender: Mender) -> None:
    for path in (f"{DEVAUTH}/devices/nope", f"{DEVAUTH}/devices/nope/auth/nope"):
        response = mender.call("DELETE", path)
        assert response.status_code == 404
        assert response.content == b""


def test_decommission_removes_the_device_and_its_tokens(mender: Mender) -> None:
    identity, key = unique_identity(), new_key()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(key)).headers["Location"])
    token = mender.authenticate(key, identity)
    assert token.status_code == 200
    aid = mender.device(device_id)["auth_sets"][0]["id"]
    assert mender.call("DELETE", f"{DEVAUTH}/devices/{device_id}").status_code == 204
    assert mender.call("GET", f"{DEVAUTH}/devices/{device_id}").status_code == 404
    assert mender.call("DELETE", f"{DEVAUTH}/tokens/{aid}").status_code == 404
    # The device is gone: asking again makes a new pending device.
    assert mender.authenticate(key, identity).status_code == 401


def test_revoke_device_token(mender: Mender) -> None:
    identity, key = unique_identity(), new_key()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(key)).headers["Location"])
    assert mender.authenticate(key, identity).status_code == 200
    aid = mender.device(device_id)["auth_sets"][0]["id"]
    assert mender.call("DELETE", f"{DEVAUTH}/tokens/{aid}").status_code == 204
    assert mender.call("DELETE", f"{DEVAUTH}/tokens/{aid}").status_code == 404


def test_device_limit(tmp_path: Any) -> None:
    limited = start(tmp_path, max_devices=1)
    try:
        assert limited.call("GET", f"{DEVAUTH}/limits/max_devices").json() == {"limit": 1}
        first, first_aid, _, _ = _pending(limited)
        assert limited.set_status(first, first_aid, "accepted").status_code == 204
        second, second_aid, _, _ = _pending(limited)
        refused = limited.set_status(second, second_aid, "accepted")
        assert refused.status_code == 422
        assert refused.json()["error"] == "maximum number of accepted devices reached"
        identity, key = unique_identity(), new_key()
        limited.preauthorize(identity, public_pem(key))  # preauthorization is not limited
        denied = limited.authenticate(key, identity)
        assert denied.status_code == 401 and denied.json()["error"] == "unauthorized"
    finally:
        limited.stop()


def test_device_limit_can_be_changed_at_run_time(fresh: Mender) -> None:
    admin = fresh.url + "/_sandbox/max_devices"
    assert requests.post(admin, json={"max_devices": 0}, timeout=10).json() == {
        "max_devices": 0}
    device_id, aid, _, _ = _pending(fresh)
    assert fresh.set_status(device_id, aid, "accepted").status_code == 422
    assert requests.post(admin, json={"max_devices": "x"}, timeout=10).status_code == 400
    requests.post(admin, json={"max_devices": -1}, timeout=10)
    assert fresh.call("GET", f"{DEVAUTH}/limits/max_devices").json() == {"limit": -1}
    assert fresh.set_status(device_id, aid, "accepted").status_code == 204
