"""Helpers of the end-to-end tests: processes serving the function, the real google-cloud-iot
client against the registry stand-in, and an independent look at the Mender stand-in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
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


class Server:
    """A subprocess serving HTTP on loopback, its output collected in a file."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path,
                 port: int | None = None) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(list(argv), env=env, cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.port = port or wait_for(self._announced_port, 30, f"{argv[0]} to start")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._accepts, 30, f"{self.url} to accept connections")

    def _announced_port(self) -> int | None:
        self._check_alive()
        match = re.search(rb"serving on http://[\d.]+:(\d+)", self.log_path.read_bytes())
        return int(match.group(1)) if match else None

    def _accepts(self) -> bool:
        self._check_alive()
        try:
            requests.get(self.url + "/healthz", timeout=2)
        except requests.ConnectionError:
            return False
        return True

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited: {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def function_server(target: str, env: dict[str, str], log: Path, *extra: str) -> Server:
    port = free_port()
    binary = Path(sys.executable).parent / "functions-framework"
    return Server([str(binary), "--target", target, "--source", str(ROOT / "functions/main.py"),
                   "--host", "127.0.0.1", "--port", str(port), *extra], env, log, port)


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
