"""Key material, the served sandbox handle, a recording push endpoint and waiting helpers for
the registry tests (imported by name: test modules must not import `conftest`, whose name is
shared by every test directory)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from flask import Flask, request

from bridge.sandbox.faults import Faults
from bridge.sandbox.server import RunningServer, serve

PROJECT, LOCATION, REGISTRY = "sandbox-project", "us-central1", "reg0"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}/registries/{REGISTRY}"


@dataclass
class Sandbox:
    """A registry sandbox served over real HTTP."""

    url: str
    data_dir: Path
    faults: Faults
    server: RunningServer
    app: Any

    def stop(self) -> None:
        self.server.stop()
        self.app.extensions["registry_sandbox"].close()


StartSandbox = Callable[..., Sandbox]


@functools.cache
def private_key(kind: str, index: int = 0) -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def public_pem(key: Any) -> str:
    return str(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def certificate_pem(key: Any, issuer_key: Any = None, issuer: str = "device") -> str:
    """A certificate for `key`, self-signed or signed by `issuer_key` (named `issuer`)."""
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .sign(issuer_key or key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_for(fmt: str, index: int = 0) -> str:
    """The registry credential text for a format name, from a cached key of the right kind."""
    key = private_key("rsa" if fmt.startswith("RSA") else "ec", index)
    return certificate_pem(key) if fmt.endswith("X509_PEM") else public_pem(key)


@dataclass
class PushEndpoint:
    """A real local HTTP endpoint recording each push body; it fails the first `fail_first`
    requests (or all of them while `always_fail`)."""

    fail_first: int = 0
    always_fail: bool = False
    received: list[bytes] = field(default_factory=list)
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: RunningServer | None = None

    def start(self, port: int = 0) -> PushEndpoint:
        app = Flask("push-endpoint")

        @app.post("/push")
        def push() -> tuple[str, int]:
            with self._lock:
                self.attempts += 1
                if self.always_fail or self.attempts <= self.fail_first:
                    return "no", 500
                self.received.append(request.get_data())
            return "", 204

        self.server = serve(app, port=port)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/push"

    def stop(self) -> None:
        if self.server:
            self.server.stop()


def wait_for(condition: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Poll until `condition()`; fail the test (naming `what`) if it never becomes true."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def audit_status(url: str) -> dict[str, Any]:
    answer = requests.get(f"{url}/_sandbox/audit-status", timeout=5)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


def drained(url: str) -> Callable[[], bool]:
    return lambda: audit_status(url)["pending"] == 0
