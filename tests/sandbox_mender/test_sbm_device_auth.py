"""The device `auth_requests` endpoint of the Mender stand-in (docs/mender-api.md#device-auth)."""

from __future__ import annotations

import json

import jwt
import pytest
from sbm_support import AUTH_REQUESTS, DEVAUTH, Mender, device_id_of, new_key, public_pem, sign
from sbm_support import unique_identity as new_identity

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519"])
def test_preauthorized_key_gets_a_device_jwt_on_the_first_request(mender: Mender,
                                                                   kind: str) -> None:
    key, identity = new_key(kind), new_identity()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(key)).headers["Location"])
    response = mender.authenticate(key, identity)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/jwt"
    claims = jwt.decode(response.text, options={"verify_signature": False})
    device = mender.device(device_id)
    assert claims["sub"] == device_id and claims["jti"] == device["auth_sets"][0]["id"]
    assert claims["mender.device"] is True and claims["iss"] == "Mender"
    assert claims["exp"] - claims["iat"] == 604800
    assert device["status"] == "accepted" and "check_in_time" in device


def test_unknown_key_becomes_pending_then_accepted_by_an_admin(mender: Mender) -> None:
    key, identity = new_key(), new_identity()
    first = mender.authenticate(key, identity)
    assert first.status_code == 401
    assert first.json()["error"] == "dev auth: unauthorized"
    found = [d for d in mender.call("GET", f"{DEVAUTH}/devices",
                                    params={"status": "pending", "per_page": 500}).json()
             if d["identity_data"] == identity]
    assert len(found) == 1
    device = found[0]
    assert mender.authenticate(key, identity).status_code == 401  # still pending
    assert mender.set_status(device["id"], device["auth_sets"][0]["id"],
                             "accepted").status_code == 204
    assert mender.authenticate(key, identity).status_code == 200


def test_bad_signature_is_401_and_records_nothing(mender: Mender) -> None:
    key, identity = new_key("rsa"), new_identity()
    forged = sign(new_key("rsa"), b"something else")
    response = mender.authenticate(key, identity, signature=forged)
    assert response.status_code == 401
    assert response.json()["error"] == "signature verification failed"
    listed = mender.call("GET", f"{DEVAUTH}/devices", params={"per_page": 500}).json()
    assert identity not in [d["identity_data"] for d in listed]


def test_signature_over_other_bytes_fails_even_with_the_right_key(mender: Mender) -> None:
    key, identity = new_key(), new_identity()
    mender.preauthorize(identity, public_pem(key))
    body = json.dumps({"id_data": json.dumps(identity), "pubkey": public_pem(key)}).encode()
    response = mender.session.post(mender.url + AUTH_REQUESTS, data=body + b" ", headers={
        "Content-Type": "application/json", "X-MEN-Signature": sign(key, body)})
    assert response.status_code == 401


def test_missing_signature_header_is_400(mender: Mender) -> None:
    key = new_key()
    body = json.dumps({"id_data": '{"a":"b"}', "pubkey": public_pem(key)}).encode()
    response = mender.session.post(mender.url + AUTH_REQUESTS, data=body,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "missing request signature header"


@pytest.mark.parametrize(("body", "message"), [
    ({"pubkey": "PEM"}, "invalid auth request: id_data must be provided"),
    ({"id_data": '{"a":"b"}'}, "invalid auth request: pubkey must be provided"),
    ({"id_data": '{"a":"b"}', "pubkey": "junk"}, "invalid auth request: cannot decode public key"),
])
def test_malformed_auth_requests_are_400(mender: Mender, body: dict[str, str],
                                         message: str) -> None:
    key = new_key()
    data = json.dumps({k: public_pem(key) if v == "PEM" else v for k, v in body.items()})
    response = mender.session.post(mender.url + AUTH_REQUESTS, data=data, headers={
        "Content-Type": "application/json", "X-MEN-Signature": sign(key, data.encode())})
    assert response.status_code == 400
    assert response.json()["error"] == message


def test_same_identity_other_key_adds_a_pending_set(mender: Mender) -> None:
    identity = new_identity()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(new_key())).headers[
        "Location"])
    assert mender.authenticate(new_key(), identity).status_code == 401
    device = mender.device(device_id)
    assert device["status"] == "preauthorized"  # weight: preauthorized > pending
    assert sorted(a["status"] for a in device["auth_sets"]) == ["pending", "preauthorized"]


def test_rejected_set_is_refused(mender: Mender) -> None:
    key, identity = new_key(), new_identity()
    mender.authenticate(key, identity)
    [device] = [d for d in mender.call("GET", f"{DEVAUTH}/devices",
                                       params={"per_page": 500}).json()
                if d["identity_data"] == identity]
    assert mender.set_status(device["id"], device["auth_sets"][0]["id"],
                             "rejected").status_code == 204
    response = mender.authenticate(key, identity)
    assert response.status_code == 401
    assert mender.device(device["id"])["status"] == "rejected"
