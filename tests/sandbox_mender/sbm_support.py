"""Helpers for the Mender stand-in's tests: a served app, device keys, signed auth requests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from flask import Flask

from bridge.sandbox.faults import Faults
from bridge.sandbox.mender import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, create_app
from bridge.sandbox.mender.state import EXTENSION
from bridge.sandbox.server import RunningServer, serve

DEVAUTH = "/api/management/v2/devauth"
AUTH_REQUESTS = "/api/devices/v1/authentication/auth_requests"
LOGIN = "/api/management/v1/useradm/auth/login"
TOKENS = "/api/management/v1/useradm/settings/tokens"
SEARCH = "/api/management/v2/inventory/filters/search"
INVENTORY = "/api/management/v1/inventory"
DEVICE_INVENTORY = "/api/devices/v1/inventory/device/attributes"
NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
NEXT_V1 = "/api/devices/v1/deployments/device/deployments/next"
T = TypeVar("T")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(key: PrivateKey, body: bytes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(body, ec.ECDSA(hashes.SHA256()))
    else:
        raw = key.sign(body)
    return base64.b64encode(raw).decode()


def unique_identity() -> dict[str, str]:
    return {"google_iot_id": f"dev-{uuid.uuid4().hex[:12]}"}


@dataclass
class Mender:
    """A served stand-in and an admin session on it."""

    server: RunningServer
    data_dir: Path
    faults: Faults
    token: str
    app: Flask
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.session.request(method, self.url + path, headers=headers, timeout=10,
                                    **kwargs)

    def preauthorize(self, identity: dict[str, Any], pubkey: str,
                     force: bool = False) -> requests.Response:
        body: dict[str, Any] = {"identity_data": identity, "pubkey": pubkey}
        if force:
            body["force"] = True
        return self.call("POST", f"{DEVAUTH}/devices", json=body)

    def device(self, device_id: str) -> dict[str, Any]:
        response = self.call("GET", f"{DEVAUTH}/devices/{device_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def authenticate(self, key: PrivateKey, identity: dict[str, Any],
                     signature: str | None = None) -> requests.Response:
        body = json.dumps({"id_data": json.dumps(identity), "pubkey": public_pem(key),
                           "tenant_token": ""}).encode()
        headers = {"Content-Type": "application/json",
                   "X-MEN-Signature": signature if signature is not None else sign(key, body)}
        return self.session.post(self.url + AUTH_REQUESTS, data=body, headers=headers,
                                 timeout=10)

    def set_status(self, device_id: str, aid: str, status: str) -> requests.Response:
        return self.call("PUT", f"{DEVAUTH}/devices/{device_id}/auth/{aid}/status",
                         json={"status": status})

    def device_call(self, token: str, method: str, path: str,
                    **kwargs: Any) -> requests.Response:
        """A device API call with a device JWT."""
        return self.session.request(method, self.url + path, timeout=10,
                                    headers={"Authorization": f"Bearer {token}"}, **kwargs)

    def set_faults(self, **values: Any) -> None:
        response = self.session.post(self.url + "/_sandbox/faults", json=values, timeout=10)
        assert response.status_code == 200, response.text

    def inventory_status(self, device_id: str) -> str | None:
        """The identity-scope `status` in the device's inventory record; None without one."""
        response = self.call("GET", f"{INVENTORY}/devices/{device_id}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        found = [a["value"] for a in response.json()["attributes"]
                 if (a["scope"], a["name"]) == ("identity", "status")]
        return found[0] if found else None

    def stop(self) -> None:
        self.session.close()
        self.server.stop()
        self.app.extensions[EXTENSION].store.close()  # and so its pending workflow jobs


def eventually(read: Callable[[], T], wanted: Callable[[T], bool], *,
               timeout: float = 15.0) -> T:
    """Poll `read()` until `wanted(value)` holds, within a deadline (inventory and the
    workflows are asynchronous); fail with the last value read."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if wanted(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {timeout} s"
        time.sleep(0.05)


def start(data_dir: Path, *, max_devices: int = -1, faults: Faults | None = None) -> Mender:
    faults = faults or Faults()
    app = create_app(data_dir, faults=faults, max_devices=max_devices)
    server = serve(app)
    login = requests.post(server.url + LOGIN, auth=(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD),
                          timeout=10)
    assert login.status_code == 200, login.text
    return Mender(server, data_dir, faults, login.text, app)


def device_id_of(location: str) -> str:
    assert location.startswith("devices/")
    return location.removeprefix("devices/")
