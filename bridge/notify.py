"""Optional device notification (NOTIFY_DEVICE=true): after the bridge admitted a device, by
any path, write a registry device config telling it where its Mender is, as the meta-gcp-iot
layer's activation agent expects.

The config is a hint, never a credential: a device that misses it still authenticates with
Mender on its next attempt, so a failed write is reported as skipped and never retried.
"""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

from bridge.actions import ADMITTING
from bridge.errors import BridgeError
from bridge.model import RegistryDevice, RegistryRef
from bridge.report import Outcome, Report, Status, Step


@runtime_checkable
class ConfigWriter(Protocol):
    def set_device_config(self, ref: RegistryRef, device_id: str, data: bytes) -> None:
        ...


def config_payload(server_url: str) -> bytes:
    """The bytes written as the device's config (a `modifyCloudToDeviceConfig` binaryData)."""
    body = {"mender": {"preauthorized": True, "server_url": server_url}}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def preauthorized(report: Report) -> bool:
    """Whether this sync newly preauthorized a key (first key or a rotated one)."""
    return any(o.action in ADMITTING and o.status is Status.DONE for o in report.outcomes)


def tell(registry: object, device: RegistryDevice, server_url: str) -> Outcome:
    """Write the config of `device`; the outcome says whether it was written."""
    label = str(device)
    if not isinstance(registry, ConfigWriter):
        return Outcome(label, Step.NOTIFY, Status.SKIPPED,
                       "NOTIFY_DEVICE is on but this registry backend cannot write configs")
    try:
        registry.set_device_config(device.ref, device.id, config_payload(server_url))
    except BridgeError as exc:
        return Outcome(label, Step.NOTIFY, Status.SKIPPED, f"device notification failed: {exc}")
    return Outcome(label, Step.NOTIFY, Status.DONE, f"config points it at {server_url}")
