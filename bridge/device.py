"""A simulated device: one private key that signs its Mender auth requests (as the Mender
client does) and its Cloud IoT JWTs, for the demo, the benchmarks and the tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from bridge import devicekeys, keykit
from bridge.errors import ApiError, TransientApiError, from_status
from bridge.identity import canonical_json
from bridge.model import MENDER_SERVICE, REGISTRY_SERVICE, RegistryRef

AUTH_PATH = "/api/devices/v1/authentication/auth_requests"


@dataclass
class SimulatedDevice:
    """A device holding `key`; its identity defaults to the bridge's default template."""

    key: devicekeys.PrivateKey = field(repr=False)
    device_id: str
    identity: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.identity:
            self.identity = {"google_iot_id": self.device_id}

    @classmethod
    def generate(cls, device_id: str, kind: devicekeys.KeyKind = "ec") -> SimulatedDevice:
        return cls(devicekeys.generate_key(kind), device_id)

    @classmethod
    def from_key_file(cls, path: str | Path, device_id: str) -> SimulatedDevice:
        return cls(keykit.load_private_key(path), device_id)

    @property
    def public_pem(self) -> str:
        return devicekeys.public_pem(self.key)

    def auth_request_body(self, identity: Mapping[str, str] | None = None) -> bytes:
        """The auth request body as the Mender client sends it (id_data is a JSON string)."""
        id_data = canonical_json(dict(identity if identity is not None else self.identity))
        body = {"id_data": id_data, "pubkey": self.public_pem, "tenant_token": ""}
        return json.dumps(body, separators=(",", ":")).encode("utf-8")

    def sign(self, body: bytes) -> str:
        """X-MEN-Signature: standard base64 of the signature over the raw body."""
        key = self.key
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            signature = key.sign(body, ec.ECDSA(hashes.SHA256()))  # DER SEQUENCE{r, s}
        else:
            assert isinstance(key, ed25519.Ed25519PrivateKey)
            signature = key.sign(body)
        return base64.b64encode(signature).decode("ascii")

    def authenticate(self, mender_url: str, ca_bundle: str | None = None,
                     session: requests.Session | None = None) -> str | None:
        """POST an auth request: the device JWT on 200, None on 401 (not admitted yet)."""
        body = self.auth_request_body()
        headers = {"Content-Type": "application/json", "X-MEN-Signature": self.sign(body),
                   "Authorization": "Bearer "}
        url = mender_url.rstrip("/") + AUTH_PATH
        response = _post(session, url, body, headers, ca_bundle, self.timeout, MENDER_SERVICE)
        if response.status_code == 200:
            return response.text.strip()
        if response.status_code == 401:
            return None
        raise _error(response, MENDER_SERVICE, AUTH_PATH, "device authentication")

    def registry_jwt(self, project: str, ttl: int = 3600) -> str:
        return devicekeys.mint_jwt(self.key, project, ttl=ttl)

    def publish_event(self, registry_url: str, ref: RegistryRef, payload: bytes,
                      session: requests.Session | None = None, ttl: int = 3600) -> int:
        """Publish telemetry through the Cloud IoT device HTTP bridge; returns the status."""
        path = f"/v1/{ref.path}/devices/{self.device_id}:publishEvent"
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {self.registry_jwt(ref.project, ttl)}"}
        body = json.dumps({"binaryData": base64.b64encode(payload).decode("ascii")}).encode()
        url = registry_url.rstrip("/") + path
        response = _post(session, url, body, headers, None, self.timeout, REGISTRY_SERVICE)
        return response.status_code


def _post(session: requests.Session | None, url: str, body: bytes, headers: dict[str, str],
          ca_bundle: str | None, timeout: float, service: str) -> requests.Response:
    sender = session or requests
    try:
        # Never to another host: a redirect would carry the signed request or the JWT along.
        return sender.post(url, data=body, headers=headers, timeout=timeout,
                           verify=ca_bundle if ca_bundle else True, allow_redirects=False)
    except requests.RequestException as exc:
        raise TransientApiError(f"request failed: {type(exc).__name__}", service=service,
                                method="POST", path=url) from None


def _error(response: requests.Response, service: str, path: str, what: str) -> ApiError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    detail = str(payload.get("error", "")) if isinstance(payload, dict) else ""
    return from_status(response.status_code, f"{what} failed", service=service, method="POST",
                       path=path, detail=detail[:200])
