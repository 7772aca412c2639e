"""Response bodies and keys shaped as the Mender server sends them (docs/mender-api.md)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.model import Secret

# The bundled spec's server: contract validation matches requests against it.
BASE = "https://hosted.mender.io"
DEVICES = f"{BASE}/api/management/v2/devauth/devices"
SEARCH = f"{BASE}/api/management/v2/inventory/filters/search"
LOGIN = f"{BASE}/api/management/v1/useradm/auth/login"
TOKEN = Secret("pat-eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBhdA.sig")
TS = "2026-11-25T09:00:00.123456789Z"


def _pem(key: Any) -> str:
    return str(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii"))


EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_PEM = _pem(EC_KEY)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = _pem(RSA_KEY)
RSA_PKCS1 = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode("ascii")


def auth_set(aid: str, identity: dict[str, str], pubkey: str = EC_PEM,
             status: str = "preauthorized") -> dict[str, Any]:
    # No `device_id`: the server does not serialize it (docs/mender-api.md#listing).
    return {"id": aid, "identity_data": identity, "pubkey": pubkey, "ts": TS, "status": status}


def device(did: str, identity: dict[str, str] | None = None, status: str = "preauthorized",
           auth_sets: list[dict[str, Any]] | None = None,
           decommissioning: bool = False) -> dict[str, Any]:
    identity = identity if identity is not None else {"google_iot_id": did}
    return {"id": did, "identity_data": identity, "status": status,
            "decommissioning": decommissioning, "created_ts": TS, "updated_ts": TS,
            "auth_sets": auth_sets if auth_sets is not None
            else [auth_set(f"{did}-a1", identity, status=status)]}


def error(text: str, request_id: str = "srv-req-1") -> dict[str, str]:
    return {"error": text, "request_id": request_id}
