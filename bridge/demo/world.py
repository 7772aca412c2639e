"""The demo's world: the sandbox, the real function under functions-framework, the real
`google-cloud-iot` client, and the simulated devices it registers. Real HTTP everywhere."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import bridge
from bridge.demo.children import Child, wait_for
from bridge.demo.events import POLICY, Events
from bridge.device import SimulatedDevice
from bridge.devicekeys import certificate, formats
from bridge.keys import normalize
from bridge.mender import MenderClient
from bridge.model import CredentialFormat, MenderDevice, RegistryRef
from bridge.pubsub.local import PubsubMode
from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox

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


def function_source() -> tuple[Path, str]:
    """The function's source and how to name it: functions/main.py, what Terraform deploys,
    when the package runs from its source tree; else (`pip install .` puts only the package
    in site-packages) the same push entry from the package."""
    main = Path(bridge.__file__).resolve().parent.parent / "functions" / "main.py"
    if main.is_file():
        return main, "functions/main.py"
    packaged = Path(__file__).resolve().with_name("function.py")
    return packaged, "bridge/demo/function.py (functions/main.py is not installed)"


class FunctionProcess:
    """`functions-framework --target on_push` serving the function, in its own session."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.source, self.source_name = function_source()
        self._env = env
        self._child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> FunctionProcess:
        command = [sys.executable, "-m", "functions_framework", "--target", "on_push",
                   "--source", str(self.source), "--host", "127.0.0.1",
                   "--port", str(self.port)]
        self._child = Child(command, env={**os.environ, **self._env}, log=self.log_path)
        wait_for(self._listening, timeout, "the function to start")
        return self

    def _listening(self) -> bool:
        if self._child is not None and not self._child.running():
            raise RuntimeError(f"the function exited early; see {self.log_path}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()


class World:
    """Owns the running pieces; every registry write goes through the real Google client."""

    def __init__(self, data_dir: Path, function_env: dict[str, str] | None = None, *,
                 pubsub: PubsubMode | str = PubsubMode.AUTO) -> None:
        self.data_dir = data_dir
        self.function_env = dict(function_env or {})
        self.sandbox = Sandbox(data_dir, tls=True, pubsub=pubsub, pubsub_project=PROJECT,
                               pubsub_policy=POLICY)
        self.function: FunctionProcess | None = None
        self.iot: Any = None
        self.mender: MenderClient | None = None
        self.http = requests.Session()
        self.events = Events(self.sandbox, self.http)

    def start(self) -> World:
        self.sandbox.start()
        env = {"MENDER_URL": self.sandbox.mender_url,
               "MENDER_TOKEN": self.sandbox.token.reveal(),
               "MENDER_CA_BUNDLE": str(self.sandbox.ca_cert),
               "IOT_PROJECT": PROJECT, "IOT_LOCATION": LOCATION, "IOT_REGISTRIES": REGISTRY,
               "IOT_ENDPOINT": self.sandbox.registry_url, "IOT_CREDENTIALS": "anonymous",
               "ON_BLOCKED": "reject", "LOG_LEVEL": "INFO", **self.function_env}
        self.function = FunctionProcess(env, self.data_dir / "function.log")
        self.function.start()
        self.iot = _iot_client(self.sandbox.registry_url)
        self.mender = MenderClient(self.sandbox.mender_url, token=self.sandbox.token,
                                   ca_bundle=str(self.sandbox.ca_cert))
        return self

    def stop(self) -> None:
        """Stop everything that was started, each part even if another fails to stop."""
        try:
            if self.function is not None:
                self.function.stop()
        finally:
            try:
                if self.mender is not None:
                    self.mender.close()
            finally:
                self.sandbox.stop()
                self.http.close()

    # registry side -----------------------------------------------------------------------
    def deploy(self) -> None:
        """The bridge is deployed: audit entries from now on reach the function."""
        assert self.function is not None, "the world is not started"
        self.events.connect(self.function.url + "/")

    def drain(self, timeout: float = 60.0) -> None:
        self.events.drain(timeout)

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

    def key_status(self, device_id: str, device: SimulatedDevice) -> str:
        """The status of the Mender auth set holding `device`'s key, or "absent"."""
        wanted = normalize(device.public_pem).fingerprint
        found = self.mender_devices().get(device_id)
        for auth_set in (found.auth_sets or ()) if found is not None else ():
            if normalize(auth_set.pubkey).fingerprint == wanted:
                return auth_set.status.value
        return "absent"

    def authenticate(self, device: SimulatedDevice) -> bool:
        token = device.authenticate(self.sandbox.mender_url, str(self.sandbox.ca_cert),
                                    session=self.http)
        return token is not None

    def publish(self, device: SimulatedDevice) -> bool:
        status = device.publish_event(self.sandbox.registry_url, REF, b'{"temperature": 21.5}',
                                      session=self.http)
        return status == 200


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
