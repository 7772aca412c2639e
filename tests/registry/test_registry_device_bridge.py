"""The sandbox's device HTTP bridge: publishEvent authenticated with the device's JWT."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
import pytest
import requests
from registry_support import PARENT, PROJECT, Sandbox, key_for, private_key

pytestmark = pytest.mark.e2e
PAST = "2001-01-01T00:00:00Z"


def register(sandbox: Sandbox, device_id: str, credentials: list[dict[str, Any]],
             blocked: bool = False) -> None:
    answer = requests.post(f"{sandbox.url}/v1/{PARENT}/devices", timeout=5, json={
        "id": device_id, "credentials": credentials, "blocked": blocked})
    assert answer.status_code == 200, answer.text


def credential(fmt: str, index: int = 0, expires: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"publicKey": {"format": fmt, "key": key_for(fmt, index)}}
    if expires:
        out["expirationTime"] = expires
    return out


def token(kind: str = "rsa", index: int = 0, *, aud: str = PROJECT, iat: float | None = None,
          lifetime: float = 3600) -> str:
    issued = int(time.time() if iat is None else iat)
    return jwt.encode({"iat": issued, "exp": issued + int(lifetime), "aud": aud},
                      private_key(kind, index), algorithm="RS256" if kind == "rsa" else "ES256")


def publish(sandbox: Sandbox, device_id: str, jwt_text: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {jwt_text}"} if jwt_text else {}
    return requests.post(f"{sandbox.url}/v1/{PARENT}/devices/{device_id}:publishEvent",
                         json={"binaryData": base64.b64encode(b"21.5C").decode()},
                         headers=headers, timeout=5)


@pytest.fixture(scope="module")
def sandbox(shared_sandbox: Sandbox) -> Sandbox:
    """One sandbox and its devices for the module: the tests only read them."""
    register(shared_sandbox, "dev-rsa", [credential("RSA_PEM")])
    register(shared_sandbox, "dev-ec", [credential("ES256_X509_PEM")])
    register(shared_sandbox, "dev-old", [credential("RSA_PEM", expires=PAST),
                                         credential("ES256_PEM")])
    register(shared_sandbox, "dev-blocked", [credential("RSA_PEM")], blocked=True)
    return shared_sandbox


def test_a_jwt_signed_by_the_registered_key_is_accepted(sandbox: Sandbox) -> None:
    assert publish(sandbox, "dev-rsa", token("rsa")).status_code == 200
    assert publish(sandbox, "dev-ec", token("ec")).status_code == 200
    device = requests.get(f"{sandbox.url}/v1/{PARENT}/devices/dev-ec", timeout=5).json()
    assert device["lastEventTime"].startswith("20")


@pytest.mark.parametrize(("jwt_text", "reason"), [
    (lambda: token("rsa", iat=time.time() - 7200, lifetime=3600), "expired"),
    (lambda: token("rsa", index=5), "matches none"),
    (lambda: token("rsa", aud="another-project"), "audience"),
    (lambda: token("rsa", lifetime=25 * 3600), "24 hours"),
    (lambda: token("ec"), "no current credential for ES256"),
    (lambda: "not-a-jwt", "malformed"),
    (lambda: None, "Bearer"),
])
def test_bad_tokens_are_refused(sandbox: Sandbox, jwt_text: Any, reason: str) -> None:
    answer = publish(sandbox, "dev-rsa", jwt_text())
    assert answer.status_code == 401
    assert reason in answer.json()["error"]["message"]


def test_an_expired_credential_no_longer_authenticates(sandbox: Sandbox) -> None:
    assert publish(sandbox, "dev-old", token("rsa")).status_code == 401
    assert publish(sandbox, "dev-old", token("ec")).status_code == 200


def test_a_blocked_device_is_refused(sandbox: Sandbox) -> None:
    answer = publish(sandbox, "dev-blocked", token("rsa"))
    assert answer.status_code == 403 and "blocked" in answer.json()["error"]["message"]
