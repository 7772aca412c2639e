"""Preauthorization and device reads of the Mender stand-in over real HTTP (docs/mender-api.md)."""

from __future__ import annotations

import json

import pytest
from sbm_support import DEVAUTH, Mender, device_id_of, new_key, public_pem, unique_identity

pytestmark = pytest.mark.e2e


def test_preauthorize_answers_201_with_a_relative_location_and_no_body(mender: Mender) -> None:
    identity, pem = unique_identity(), public_pem(new_key())
    response = mender.preauthorize(identity, pem)
    assert response.status_code == 201
    assert response.content == b""
    assert "Content-Type" not in response.headers
    device = mender.device(device_id_of(response.headers["Location"]))
    assert device["status"] == "preauthorized"
    assert device["decommissioning"] is False
    assert device["identity_data"] == identity
    [auth] = device["auth_sets"]
    assert auth["status"] == "preauthorized" and auth["pubkey"] == pem
    assert "device_id" not in auth
    assert set(auth) == {"id", "identity_data", "pubkey", "ts", "status"}


def test_same_identity_conflicts_with_the_device_as_body(mender: Mender) -> None:
    identity = {"b": "2", "a": "1", "n": 1}
    first = mender.preauthorize(identity, public_pem(new_key()))
    assert first.status_code == 201
    # Other key order, other key, number spelled 1.0: still the same Go-canonical identity.
    text = json.dumps({"identity_data": {"n": 1.5, "a": "1", "b": "2"},
                       "pubkey": public_pem(new_key("rsa"))}).replace("1.5", "1.0")
    response = mender.call("POST", f"{DEVAUTH}/devices", data=text,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 409
    body = response.json()
    assert body["id"] == device_id_of(first.headers["Location"])
    assert body["auth_sets"] is None
    assert body["status"] == "preauthorized" and body["decommissioning"] is False
    assert set(body) == {"id", "identity_data", "status", "decommissioning", "created_ts",
                         "updated_ts", "auth_sets"}


def test_force_adds_a_preauthorized_set_and_names_a_fresh_id(mender: Mender) -> None:
    identity = unique_identity()
    device_id = device_id_of(mender.preauthorize(identity, public_pem(new_key())).headers[
        "Location"])
    second = public_pem(new_key("ed25519"))
    response = mender.preauthorize(identity, second, force=True)
    assert response.status_code == 201
    assert device_id_of(response.headers["Location"]) != device_id  # deviceauth's quirk
    device = mender.device(device_id)
    assert sorted(a["status"] for a in device["auth_sets"]) == ["preauthorized"] * 2
    assert second in [a["pubkey"] for a in device["auth_sets"]]


def test_force_flips_a_pending_set_but_leaves_the_device_status(mender: Mender) -> None:
    identity, key = unique_identity(), new_key()
    assert mender.authenticate(key, identity).status_code == 401
    pending = [d for d in mender.call("GET", f"{DEVAUTH}/devices",
                                      params={"status": "pending", "per_page": 500}).json()
               if d["identity_data"] == identity]
    assert len(pending) == 1
    device_id = pending[0]["id"]
    assert mender.preauthorize(identity, public_pem(key), force=True).status_code == 201
    device = mender.device(device_id)
    assert [a["status"] for a in device["auth_sets"]] == ["preauthorized"]
    assert device["status"] == "pending"  # FIXME in deviceauth: not recomputed
    assert mender.authenticate(key, identity).status_code == 200
    assert mender.device(device_id)["status"] == "accepted"


BAD_PREAUTH = [
    ("", "failed to decode preauth request: empty request body"),
    ('{"identity_data": "x", "pubkey": "p"}',
     "failed to decode preauth request: json: cannot unmarshal string into Go struct field "
     "preAuthReq.identity_data of type map[string]interface {}"),
    ('{"pubkey": "PEM"}', "failed to decode preauth request: identity_data: cannot be blank."),
    ('{"identity_data": {}, "pubkey": "PEM"}',
     "failed to decode preauth request: identity_data: cannot be blank."),
    ('{"identity_data": {"a": "1"}}', "failed to decode preauth request: pubkey: cannot be blank."),
    ("{}", "failed to decode preauth request: identity_data: cannot be blank; pubkey: cannot "
           "be blank."),
    ('{"identity_data": {"a": "1"}, "pubkey": "garbage"}',
     "failed to decode preauth request: cannot decode public key"),
    ('{"identity_data": {"a": "1"}, "pubkey": 5}',
     "failed to decode preauth request: json: cannot unmarshal number into Go struct field "
     "preAuthReq.pubkey of type string"),
    ('{"identity_data": {"a": "1"}, "pubkey": "PEM", "force": "yes"}',
     "failed to decode preauth request: json: cannot unmarshal string into Go struct field "
     "preAuthReq.force of type bool"),
]


@pytest.mark.parametrize(("body", "message"), BAD_PREAUTH)
def test_bad_preauthorize_requests_get_400_with_deviceauths_message(
        mender: Mender, body: str, message: str) -> None:
    pem = public_pem(new_key()).replace("\n", "\\n")
    response = mender.call("POST", f"{DEVAUTH}/devices", data=body.replace("PEM", pem),
                           headers={"Content-Type": "application/json",
                                    "X-MEN-RequestID": "req-42"})
    assert response.status_code == 400
    assert response.json() == {"error": message, "request_id": "req-42"}


def test_pkcs1_rsa_public_key_is_refused(mender: Mender) -> None:
    from cryptography.hazmat.primitives import serialization

    key = new_key("rsa")
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.PKCS1).decode()
    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")
    response = mender.preauthorize(unique_identity(), pkcs1)
    assert response.status_code == 400
    assert response.json()["error"] == "failed to decode preauth request: cannot decode public key"


def test_pubkey_is_stored_normalized(mender: Mender) -> None:
    pem = public_pem(new_key("rsa"))
    body = "".join(pem.splitlines()[1:-1])
    sloppy = "-----BEGIN PUBLIC KEY-----\r\n" + body + "\r\n-----END PUBLIC KEY-----"
    location = mender.preauthorize(unique_identity(), sloppy).headers["Location"]
    [auth] = mender.device(device_id_of(location))["auth_sets"]
    assert auth["pubkey"] == pem
    assert max(len(line) for line in auth["pubkey"].splitlines()) == 64


def test_non_json_content_type_is_415(mender: Mender) -> None:
    response = mender.call("POST", f"{DEVAUTH}/devices", data="identity_data=x",
                           headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"] == "Bad Content-Type, expected 'application/json'"


def test_get_unknown_device_is_404_with_error_body(mender: Mender) -> None:
    response = mender.call("GET", f"{DEVAUTH}/devices/nope", headers={"X-MEN-RequestID": "r1"})
    assert response.status_code == 404
    assert response.json() == {"error": "device not found", "request_id": "r1"}
