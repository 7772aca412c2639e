"""Login, Personal Access Tokens, the management token check, inventory search (facts §4, §7)."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from sbm_support import (
    DEVAUTH,
    LOGIN,
    SEARCH,
    TOKENS,
    Mender,
    device_id_of,
    new_key,
    public_pem,
    unique_identity,
)

from bridge.sandbox.mender import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD

pytestmark = pytest.mark.e2e
REALM = 'Bearer realm="ManagementJWT"'


def test_login_with_basic_auth_returns_a_jwt(mender: Mender) -> None:
    response = requests.post(mender.url + LOGIN, auth=(DEFAULT_ADMIN_EMAIL.upper(),
                                                       DEFAULT_ADMIN_PASSWORD), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/jwt"
    claims = jwt.decode(response.text, options={"verify_signature": False})
    assert claims["sub"] and claims["exp"] - claims["iat"] == 604800
    forever = requests.post(mender.url + LOGIN, json={"no_expiry": True}, timeout=10,
                            auth=(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD))
    assert "exp" not in jwt.decode(forever.text, options={"verify_signature": False})


@pytest.mark.parametrize("auth", [(DEFAULT_ADMIN_EMAIL, "wrong"), ("who@x", "pw"), None])
def test_bad_login_is_401(mender: Mender, auth: tuple[str, str] | None) -> None:
    response = requests.post(mender.url + LOGIN, auth=auth, timeout=10)
    assert response.status_code == 401
    assert set(response.json()) == {"error", "request_id"}


def _signing_key(mender: Mender) -> object:
    return serialization.load_pem_private_key(
        (mender.data_dir / "jwt-signing-key.pem").read_bytes(), password=None)


@pytest.mark.parametrize("case", ["none", "basic", "garbage", "two-spaces", "foreign",
                                  "device", "expired"])
def test_management_calls_need_a_valid_bearer_token(mender: Mender, case: str) -> None:
    key = _signing_key(mender)
    now = int(time.time())
    user = {"sub": "u", "jti": "j", "iss": "Mender", "mender.user": True}
    headers = {
        "none": {},
        "basic": {"Authorization": "Basic YTpi"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "two-spaces": {"Authorization": f"Bearer  {mender.token}"},
        "foreign": {"Authorization": "Bearer " + jwt.encode(
            user, new_key("rsa"), algorithm="RS256")},
        "device": {"Authorization": "Bearer " + jwt.encode(
            {"sub": "d", "jti": "a", "iss": "Mender", "mender.device": True}, key,  # type: ignore[arg-type]
            algorithm="RS256")},
        "expired": {"Authorization": "Bearer " + jwt.encode(
            {**user, "exp": now - 10}, key, algorithm="RS256")},  # type: ignore[arg-type]
    }[case]
    response = requests.get(mender.url + f"{DEVAUTH}/devices", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert response.json()["request_id"] == response.headers["X-MEN-RequestID"]


def test_personal_access_tokens(fresh: Mender) -> None:
    created = fresh.call("POST", TOKENS, json={"name": "ci", "expires_in": 3600})
    assert created.status_code == 200
    assert created.headers["Content-Type"] == "application/jwt"
    pat = created.text
    listed = fresh.call("GET", TOKENS).json()
    [entry] = [t for t in listed if t["name"] == "ci"]
    assert set(entry) >= {"id", "name", "created_ts", "expiration_date"}
    as_pat = requests.get(fresh.url + f"{DEVAUTH}/devices", timeout=10,
                          headers={"Authorization": f"Bearer {pat}"})
    assert as_pat.status_code == 200
    assert fresh.call("POST", TOKENS, json={"name": "ci"}).status_code == 409
    assert fresh.call("POST", TOKENS, json={"name": "x", "expires_in": 31536001}
                      ).status_code == 400
    assert fresh.call("POST", TOKENS, json={"expires_in": 5}).status_code == 400
    for n in range(9):
        assert fresh.call("POST", TOKENS, json={"name": f"t{n}"}).status_code == 200
    too_many = fresh.call("POST", TOKENS, json={"name": "eleventh"})
    assert too_many.status_code == 422
    assert fresh.call("DELETE", f"{TOKENS}/{entry['id']}").status_code == 204
    revoked = requests.get(fresh.url + f"{DEVAUTH}/devices", timeout=10,
                           headers={"Authorization": f"Bearer {pat}"})
    assert revoked.status_code == 401


def test_inventory_identity_search(mender: Mender) -> None:
    identity = {"google_iot_id": unique_identity()["google_iot_id"], "sn": "7"}
    device_id = device_id_of(mender.preauthorize(identity, public_pem(new_key())).headers[
        "Location"])
    query = {"filters": [{"scope": "identity", "attribute": "google_iot_id", "type": "$eq",
                          "value": identity["google_iot_id"]}]}
    response = mender.call("POST", SEARCH, json=query)
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "1"
    [device] = response.json()
    assert device["id"] == device_id
    assert {(a["scope"], a["name"], a["value"]) for a in device["attributes"]} == {
        ("identity", "google_iot_id", identity["google_iot_id"]), ("identity", "sn", "7"),
        ("identity", "status", "preauthorized")}
    query["filters"][0]["value"] = "nobody"
    assert mender.call("POST", SEARCH, json=query).json() == []
    both = mender.call("POST", SEARCH, json={"filters": [
        {"scope": "identity", "attribute": "sn", "type": "$in", "value": ["7", "8"]},
        {"scope": "identity", "attribute": "google_iot_id", "type": "$eq",
         "value": identity["google_iot_id"]}]})
    assert [d["id"] for d in both.json()] == [device_id]


def test_inventory_search_refuses_what_it_does_not_implement(mender: Mender) -> None:
    response = mender.call("POST", SEARCH, json={"filters": [
        {"scope": "inventory", "attribute": "x", "type": "$regex", "value": "a"}]})
    assert response.status_code == 400
    assert mender.call("POST", SEARCH, data="x", headers={"Content-Type": "text/plain"}
                       ).status_code == 415
