"""Helpers of the end-to-end tests: the function's environment and a free port for it (the
process itself is `tests.support.function_proc.FunctionProcess`), the real google-cloud-iot
client against the registry stand-in, and an independent look at the Mender stand-in."""

from __future__ import annotations

import os
import socket
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from cryptography.hazmat.primitives import serialization

from bridge.model import RegistryRef

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
        time.sleep(0.1)


def env_from_config(path: Path, **extra: str) -> dict[str, str]:
    """The sandbox's bridge.toml as the environment variables a function would get."""
    data = tomllib.loads(path.read_text())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    for key, value in data.items():
        env[key.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iot_client(endpoint: str) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import iot_v1

    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return iot_v1.DeviceManagerClient(credentials=anonymous, transport="rest",
                                      client_options=ClientOptions(api_endpoint=endpoint))


def iot_credential(pem: str, fmt: str = "ES256_PEM") -> dict[str, Any]:
    return {"public_key": {"format": fmt, "key": pem}}


def create_device(client: Any, ref: RegistryRef, device_id: str, pem: str,
                  fmt: str = "ES256_PEM") -> Any:
    return client.create_device(parent=ref.path, device={
        "id": device_id, "credentials": [iot_credential(pem, fmt)]})


def der(pem: str) -> bytes:
    return serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class MenderView:
    """Reads the Mender stand-in's management API directly (not through the bridge)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.session = url, requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def devices(self, device_id: str) -> list[dict[str, Any]]:
        found, page = [], 1
        while True:
            answer = self.session.get(f"{self.url}/api/management/v2/devauth/devices",
                                      params={"page": page, "per_page": 500}, timeout=10)
            answer.raise_for_status()
            batch = answer.json()
            found += [d for d in batch
                      if d.get("identity_data") == {"google_iot_id": device_id}]
            if len(batch) < 500:
                return found
            page += 1

    def keys(self, device_id: str) -> dict[bytes, str]:
        """DER of each auth set's key → its status, over every device with that identity."""
        return {der(s["pubkey"]): s["status"] for d in self.devices(device_id)
                for s in d.get("auth_sets") or []}
