"""The demo's world: the sandbox, the real function under functions-framework, the real
`google-cloud-iot` client, and the simulated devices it registers. Real HTTP everywhere."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import bridge
from bridge.device import SimulatedDevice
from bridge.devicekeys import certificate, formats
from bridge.mender import MenderClient
from bridge.model import CredentialFormat, MenderDevice, RegistryRef
from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox

TOPIC = "iot-device-lifecycle"
REF = RegistryRef(PROJECT, LOCATION, REGISTRY)


@dataclass
class DemoDevice:
    """A simulated device, the role it plays in the story, and the key it registered."""

    device: SimulatedDevice
    role: str
    x509: bool
    old: SimulatedDevice | None = None  # the key it had before a rotation
    registry_state: str = "not registered"
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.device.device_id

    def credential(self, device: SimulatedDevice | None = None) -> tuple[CredentialFormat, str]:
        device = device or self.device
        cert_format, key_format = formats(device.key)
        if self.x509:
            return cert_format, certificate(device.key, device.device_id)
        return key_format, device.public_pem


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def function_source() -> Path:
    """functions/main.py of this checkout (the demo runs from a clone: `pip install -e .`)."""
    main = Path(bridge.__file__).resolve().parent.parent / "functions" / "main.py"
    if not main.is_file():
        raise RuntimeError("functions/main.py not found: run the demo from a clone of the "
                           "repository installed with `pip install -e .`")
    return main


class FunctionProcess:
    """`functions-framework --target on_device_event` serving functions/main.py."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> FunctionProcess:
        command = [sys.executable, "-m", "functions_framework", "--target", "on_device_event",
                   "--source", str(function_source()), "--host", "127.0.0.1",
                   "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(command, env={**os.environ, **self._env},
                                          stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._listening, timeout, "the function to start")
        return self

    def _listening(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"the function exited early; see {self.log_path}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class World:
    """Owns the running pieces; every registry write goes through the real Google client."""

    def __init__(self, data_dir: Path, function_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.function_env = dict(function_env or {})
        self.sandbox = Sandbox(data_dir, tls=True)
        self.function: FunctionProcess | None = None
        self.iot: Any = None
        self.mender: MenderClient | None = None
        self.http = requests.Session()

    def start(self) -> World:
        self.sandbox.start()
        env = {"MENDER_URL": self.sandbox.mender_url,
               "MENDER_TOKEN": self.sandbox.token.reveal(),
               "MENDER_CA_BUNDLE": str(self.sandbox.ca_cert),
               "IOT_PROJECT": PROJECT, "IOT_LOCATION": LOCATION, "IOT_REGISTRIES": REGISTRY,
               "IOT_ENDPOINT": self.sandbox.registry_url, "IOT_CREDENTIALS": "anonymous",
               "ON_BLOCKED": "reject", "LOG_LEVEL": "INFO", **self.function_env}
        self.function = FunctionProcess(env, self.data_dir / "function.log").start()
        self.iot = _iot_client(self.sandbox.registry_url)
        self.mender = MenderClient(self.sandbox.mender_url, token=self.sandbox.token,
                                   ca_bundle=str(self.sandbox.ca_cert))
        return self

    def stop(self) -> None:
        if self.function is not None:
            self.function.stop()
        if self.mender is not None:
            self.mender.close()
        self.sandbox.stop()
        self.http.close()

    # registry side -----------------------------------------------------------------------
    def deliver_events(self, on: bool) -> None:
        assert self.function is not None
        endpoints = [f"{self.function.url}/projects/{PROJECT}/topics/{TOPIC}"] if on else []
        self._admin("POST", "/_sandbox/audit-endpoints", {"endpoints": endpoints})

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until every audit-log delivery reached the function (and it answered 2xx)."""
        def drained() -> bool:
            status = self._admin("GET", "/_sandbox/audit-status")
            if int(status.get("dead", 0)):
                raise RuntimeError(f"audit deliveries were dead-lettered: {status}")
            return int(status.get("pending", 0)) == 0
        wait_for(drained, timeout, "audit-log deliveries to the function")

    def register(self, demo: DemoDevice, *, blocked: bool = False) -> None:
        from google.cloud import iot_v1

        device = iot_v1.Device(id=demo.id, credentials=[_credential(*demo.credential())],
                               blocked=blocked)
        self.iot.create_device(parent=REF.path, device=device)
        demo.registry_state = "blocked" if blocked else "active"

    def set_credentials(self, demo: DemoDevice, devices: Sequence[SimulatedDevice]) -> None:
        from google.cloud import iot_v1
        from google.protobuf import field_mask_pb2

        device = iot_v1.Device(name=f"{REF.path}/devices/{demo.id}",
                               credentials=[_credential(*demo.credential(d)) for d in devices])
        self.iot.update_device(device=device,
                               update_mask=field_mask_pb2.FieldMask(paths=["credentials"]))

    def block(self, demo: DemoDevice) -> None:
        from google.cloud import iot_v1
        from google.protobuf import field_mask_pb2

        device = iot_v1.Device(name=f"{REF.path}/devices/{demo.id}", blocked=True)
        self.iot.update_device(device=device,
                               update_mask=field_mask_pb2.FieldMask(paths=["blocked"]))
        demo.registry_state = "blocked"

    def delete(self, demo: DemoDevice) -> None:
        self.iot.delete_device(name=f"{REF.path}/devices/{demo.id}")
        demo.registry_state = "deleted"

    # Mender side -------------------------------------------------------------------------
    def mender_devices(self) -> dict[str, MenderDevice]:
        """Mender devices by their `google_iot_id`, read with the bridge's Mender client."""
        assert self.mender is not None, "the world is not started"
        return {str(d.identity_data.get("google_iot_id")): d
                for d in self.mender.iter_devices()}

    def authenticate(self, device: SimulatedDevice) -> bool:
        token = device.authenticate(self.sandbox.mender_url, str(self.sandbox.ca_cert),
                                    session=self.http)
        return token is not None

    def publish(self, device: SimulatedDevice) -> bool:
        status = device.publish_event(self.sandbox.registry_url, REF, b'{"temperature": 21.5}',
                                      session=self.http)
        return status == 200

    def _admin(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        response = self.http.request(method, self.sandbox.registry_url + path, json=body,
                                     timeout=10)
        response.raise_for_status()
        data = response.json()
        assert isinstance(data, dict)
        return data


def _iot_client(endpoint: str) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import iot_v1

    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return iot_v1.DeviceManagerClient(credentials=credentials, transport="rest",
                                      client_options=ClientOptions(api_endpoint=endpoint))


def _credential(fmt: CredentialFormat, pem: str) -> Any:
    from google.cloud import iot_v1

    return iot_v1.DeviceCredential(public_key=iot_v1.PublicKeyCredential(
        format=getattr(iot_v1.PublicKeyFormat, fmt.value), key=pem))
