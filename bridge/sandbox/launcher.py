"""Start both stand-ins (Mender and the registry) and write a bridge config that talks to them.

`Sandbox(data_dir).start()` serves Mender (HTTPS with a certificate kept in data_dir, or plain
HTTP on loopback on request) and the registry (plain HTTP, always on loopback), makes sure the
admin user and a Personal Access Token exist, and writes `data_dir/bridge.toml`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from flask import Flask

from bridge.sandbox.faults import BYPASS, Faults
from bridge.sandbox.mender import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
from bridge.sandbox.mender import create_app as create_mender_app
from bridge.sandbox.mender.crypto import ensure_tls_certificate
from bridge.sandbox.mender.state import EXTENSION
from bridge.sandbox.registry import create_app as create_registry_app
from bridge.sandbox.server import RunningServer, serve

if TYPE_CHECKING:
    from bridge.model import Secret

PROJECT, LOCATION, REGISTRY = "sandbox-project", "us-central1", "sandbox-registry"
PAT_NAME = "mender-bridge-sandbox"
PAT_LIFETIME = 31536000  # the longest useradm allows
WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 - binds that listen on every address


class Sandbox:
    """Both stand-ins in this process; a context manager (`with Sandbox(dir) as box: ...`)."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", mender_port: int = 0,
                 registry_port: int = 0, tls: bool = True, audit_endpoints: Sequence[str] = (),
                 mender_faults: Faults | None = None, registry_faults: Faults | None = None,
                 max_devices: int = -1, admin_email: str = DEFAULT_ADMIN_EMAIL,
                 admin_password: str = DEFAULT_ADMIN_PASSWORD) -> None:
        if not tls and not is_loopback(host):
            raise ValueError(f"plain HTTP is for loopback only, not {host}: serve Mender over "
                             "TLS or bind 127.0.0.1")
        self.data_dir = Path(data_dir).resolve()
        self.host, self.tls = host, tls
        self.mender_port, self.registry_port = mender_port, registry_port
        self.audit_endpoints = tuple(audit_endpoints)
        self.mender_faults = mender_faults or Faults()
        self.registry_faults = registry_faults or Faults()
        self.max_devices = max_devices
        self.admin_email, self.admin_password = admin_email, admin_password
        self.config_path = self.data_dir / "bridge.toml"
        self.ca_cert: Path | None = None
        self.mender_url = self.registry_url = ""
        self._token: str | None = None  # never in a repr: Sandbox defines none
        self._servers: list[RunningServer] = []
        self._registry_app: Flask | None = None
        self.mender_app: Flask | None = None

    @property
    def token(self) -> Secret:
        """The PAT as the bridge's `Secret`, for the bridge side of a test or demo.

        Imported here, not at module level: the stand-ins themselves use nothing of the bridge.
        """
        from bridge.model import Secret as SecretValue

        assert self._token is not None, "the sandbox is not started"
        return SecretValue(self._token)

    def start(self) -> Sandbox:
        """Serve both stand-ins, ensure the admin PAT, write bridge.toml; stop all on failure."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Sandbox:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.mender_app = create_mender_app(
            self.data_dir, admin_email=self.admin_email, admin_password=self.admin_password,
            faults=self.mender_faults, max_devices=self.max_devices)
        context = None
        if self.tls:
            # A specific address or name is how a device elsewhere reaches the sandbox.
            names = () if self.host in WILDCARDS else (self.host,)
            cert, key = ensure_tls_certificate(self.data_dir, names)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.ca_cert = cert
        self._registry_app = create_registry_app(
            self.data_dir, audit_endpoints=self.audit_endpoints, faults=self.registry_faults,
            project=PROJECT, location=LOCATION, registries=(REGISTRY,))
        mender = serve(self.mender_app, self.host, self.mender_port, context)
        self._servers.append(mender)
        # Plain HTTP stays on loopback whatever host Mender is served on.
        registry_host = self.host if is_loopback(self.host) else "127.0.0.1"
        registry = serve(self._registry_app, registry_host, self.registry_port)
        self._servers.append(registry)
        self.mender_url = _url(mender, "https" if self.tls else "http")
        self.registry_url = _url(registry, "http")
        self._token = self._ensure_pat()
        self._write_config()
        return self

    def _ensure_pat(self) -> str:
        """Reuse the PAT saved in data_dir if the stand-in still accepts it, else make one."""
        assert self.mender_app is not None
        client = self.mender_app.test_client()
        client.environ_base[BYPASS] = "1"  # the sandbox's own set-up ignores injected faults
        saved = self.data_dir / "sandbox-token"
        if saved.exists():
            token = saved.read_text(encoding="utf-8").strip()
            check = client.get("/api/management/v1/useradm/settings/tokens",
                               headers={"Authorization": f"Bearer {token}"})
            if check.status_code == 200:
                return token
        login = client.post("/api/management/v1/useradm/auth/login",
                            auth=(self.admin_email, self.admin_password))
        if login.status_code != 200:
            raise RuntimeError(f"cannot log in to the Mender stand-in: {login.status_code}")
        headers = {"Authorization": f"Bearer {login.get_data(as_text=True)}"}
        listed = client.get("/api/management/v1/useradm/settings/tokens", headers=headers)
        for item in listed.get_json() or []:
            if item.get("name") == PAT_NAME:
                client.delete(f"/api/management/v1/useradm/settings/tokens/{item['id']}",
                              headers=headers)
        created = client.post("/api/management/v1/useradm/settings/tokens", headers=headers,
                              json={"name": PAT_NAME, "expires_in": PAT_LIFETIME})
        if created.status_code != 200:
            raise RuntimeError(f"cannot create the sandbox PAT: {created.status_code}")
        token = created.get_data(as_text=True)
        _write_private(saved, token + "\n")
        return token

    def _write_config(self) -> None:
        assert self._token is not None
        lines = ["# Written by `mender-bridge sandbox`: a bridge config for the local sandbox.",
                 "# It holds the sandbox's own access token (a local, throw-away server).",
                 f"mender_url = {json.dumps(self.mender_url)}",
                 f"mender_token = {json.dumps(self._token)}"]
        if self.ca_cert is not None:
            lines.append(f"mender_ca_bundle = {json.dumps(str(self.ca_cert))}")
        lines += [f"iot_project = {json.dumps(PROJECT)}",
                  f"iot_location = {json.dumps(LOCATION)}",
                  f"iot_registries = [{json.dumps(REGISTRY)}]",
                  f"iot_endpoint = {json.dumps(self.registry_url)}",
                  'iot_credentials = "anonymous"']
        _write_private(self.config_path, "\n".join(lines) + "\n")

    def stop(self) -> None:
        while self._servers:
            self._servers.pop().stop()
        if self._registry_app is not None:
            service = self._registry_app.extensions.get("registry_sandbox")
            deliverer = getattr(service, "deliverer", None)
            if deliverer is not None:
                deliverer.close()
            self._registry_app = None
        if self.mender_app is not None:
            self.mender_app.extensions[EXTENSION].store.close()
            self.mender_app = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(server: RunningServer, scheme: str) -> str:
    # The certificate names localhost and 127.0.0.1; a wildcard bind is reached on loopback.
    # (Plain HTTP is only ever bound to a loopback address: see Sandbox.)
    host = server.host
    if scheme == "https" and (host == "127.0.0.1" or host in WILDCARDS):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{server.port}"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
