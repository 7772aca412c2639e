"""Optional device notification (NOTIFY_DEVICE=true): after the bridge preauthorized a device,
write a registry device config telling it Mender is ready for it.

The config is a hint, never a credential: a device that misses it still authenticates with
Mender on its next attempt, so a failed write is logged and not retried.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bridge import logs
from bridge.errors import BridgeError
from bridge.model import RegistryRef

if TYPE_CHECKING:
    from bridge.report import Report


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
    return any(o.action.startswith("preauthorize") and o.status == "done"
               for o in report.outcomes)


def after_sync(
    registry: object,
    ref: RegistryRef,
    device_id: str,
    server_url: str,
    report: Report,
    logger: logging.Logger,
) -> bool:
    """Write the config if `report` preauthorized something; True if it was written."""
    if not preauthorized(report):
        return False
    device = f"{ref.registry}/{device_id}"
    if not isinstance(registry, ConfigWriter):
        logs.emit(logger, logging.WARNING,
                  "NOTIFY_DEVICE is on but this registry backend cannot write device configs",
                  device=device, action="notify", outcome="skipped")
        return False
    try:
        registry.set_device_config(ref, device_id, config_payload(server_url))
    except BridgeError as exc:
        logs.emit(logger, logging.WARNING, f"device notification failed: {exc}",
                  device=device, action="notify", outcome="failed")
        return False
    logs.emit(logger, logging.INFO, f"notify {device}: done", device=device,
              action="notify", outcome="done")
    return True
