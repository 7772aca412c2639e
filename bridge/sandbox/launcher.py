"""Start both stand-ins (Mender and the registry) and write a bridge config that talks to them.

`Sandbox(data_dir).start()` locks data_dir, serves Mender (HTTPS with a certificate kept in
data_dir, or plain HTTP on loopback on request) and the registry (plain HTTP, always on
loopback), sets up the events' path (Pub/Sub emulator or direct delivery), makes sure the
admin user and a Personal Access Token exist, and writes `data_dir/bridge.toml`.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from flask import Flask

from bridge.pubsub.local import EventPath, LocalPubsub, PubsubMode
from bridge.pubsub.topology import DeliveryPolicy
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
LOCK_NAME = "sandbox.lock"


class SandboxError(Exception):
    """The sandbox cannot start as asked; `option` names the setting to change."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


class Sandbox:
    """Both stand-ins in this process; a context manager (`with Sandbox(dir) as box: ...`)."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", mender_port: int = 0,
                 registry_port: int = 0, tls: bool = True, audit_endpoints: Sequence[str] = (),
                 mender_faults: Faults | None = None, registry_faults: Faults | None = None,
                 max_devices: int = -1, admin_email: str = DEFAULT_ADMIN_EMAIL,
                 admin_password: str = DEFAULT_ADMIN_PASSWORD,
                 pubsub: PubsubMode | str = PubsubMode.DIRECT,
                 pubsub_emulator_host: str | None = None, pubsub_project: str = PROJECT,
                 pubsub_policy: DeliveryPolicy | None = None) -> None:
        """`pubsub`: "emulator" publishes the audit events to a topic of Google's Pub/Sub
        emulator (the one at `pubsub_emulator_host`, else one started here), "direct" has the
        registry post them to `audit_endpoints` itself, "auto" is the emulator where it is
        installed. With the emulator, each audit endpoint becomes a push subscription."""
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
        self._lock: int | None = None
        self._events = LocalPubsub(pubsub, project=pubsub_project, policy=pubsub_policy,
                                   emulator_host=pubsub_emulator_host,
                                   log=self.data_dir / "pubsub-emulator.log")
        self.pubsub = EventPath(self._events.mode, note="not started")

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
        self._lock = _lock_folder(self.data_dir)
        _probe(self.host, self.mender_port, "Mender")
        _probe(self._registry_host, self.registry_port, "registry")
        self._events.launch()  # the emulator starts while the stand-ins are set up
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
        self.pubsub = self._events.ready(self.audit_endpoints)
        emulated = self.pubsub.mode is PubsubMode.EMULATOR
        self._registry_app = create_registry_app(
            self.data_dir, audit_endpoints=() if emulated else self.audit_endpoints,
            faults=self.registry_faults, project=PROJECT, location=LOCATION,
            registries=(REGISTRY,), audit_topic=self.pubsub.topic,
            pubsub_emulator_host=self.pubsub.emulator_host)
        if emulated:  # push subscriptions replace the endpoints an earlier run kept
            self._registry_app.extensions["registry_sandbox"].deliverer.set_endpoints([])
        mender = serve(self.mender_app, self.host, self.mender_port, context)
        self._servers.append(mender)
        registry = serve(self._registry_app, self._registry_host, self.registry_port)
        self._servers.append(registry)
        self.mender_url = _url(mender, "https" if self.tls else "http")
        self.registry_url = _url(registry, "http")
        self._token = self._ensure_pat()
        self._write_config()
        return self

    @property
    def _registry_host(self) -> str:
        # Plain HTTP stays on loopback whatever host Mender is served on.
        return self.host if is_loopback(self.host) else "127.0.0.1"

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
        if self.pubsub.mode is PubsubMode.EMULATOR:
            lines += [f"pubsub_emulator_host = {json.dumps(self.pubsub.emulator_host)}",
                      f"pubsub_subscription = {json.dumps(self.pubsub.subscription)}"]
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
        self._events.stop()
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

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


def _lock_folder(data_dir: Path) -> int:
    """Hold an exclusive lock on data_dir for as long as the sandbox runs (two sandboxes on
    one folder would overwrite each other's databases and bridge.toml)."""
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SandboxError(f"the data folder {data_dir} is in use by another sandbox "
                           f"(pid {holder})", "data") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _probe(host: str, port: int, what: str) -> None:
    """Bind as the server will, to turn a failure into a SandboxError naming the setting to
    change (werkzeug prints its own lines and exits the process instead)."""
    option = "mender_port" if what == "Mender" else "registry_port"
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise SandboxError(f"unknown host {host[:100]!r}: give an address or a name of "
                           "this machine", "host") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SandboxError(f"port {port} of the {what} stand-in is already in use",
                                   option) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise SandboxError(f"{host[:100]} is not an address of this machine",
                                   "host") from None
            raise SandboxError(f"cannot listen on {host[:100]} port {port}: "
                               f"{exc.strerror or exc}", option) from None


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
