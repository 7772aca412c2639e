"""Login, users, Personal Access Tokens, the management token check (docs/mender-api.md#login)."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from sbm_support import (
    DEVAUTH,
    LOGIN,
    TOKENS,
    Mender,
    new_key,
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


def test_an_admin_creates_a_user_who_can_log_in(fresh: Mender) -> None:
    users = "/api/management/v1/useradm/users"
    body = {"email": "Second@Sandbox.local", "password": "second-password"}
    created = fresh.call("POST", users, json=body)
    assert created.status_code == 201 and created.headers["Location"].startswith("users/")
    assert fresh.call("POST", users, json=body).status_code == 422  # the email is taken
    short = fresh.call("POST", users, json={"email": "third@sandbox.local", "password": "x"})
    assert short.status_code == 422
    login = requests.post(fresh.url + LOGIN, auth=("second@sandbox.local", "second-password"),
                          timeout=10)
    assert login.status_code == 200
    claims = jwt.decode(login.text, options={"verify_signature": False})
    assert claims["sub"] == created.headers["Location"].removeprefix("users/")
