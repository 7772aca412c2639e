"""The stand-in's per-application state, reachable from request handlers."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from bridge.sandbox.faults import Faults
from bridge.sandbox.mender.ratelimit import RateLimiter
from bridge.sandbox.mender.store import Store
from bridge.sandbox.mender.useradm import Useradm
from bridge.sandbox.mender.workflows import Job, Workflows

EXTENSION = "mender_sandbox"
DEVICE_LOG_SIZE = 10000  # device API calls remembered for /_sandbox/device_log


@dataclass
class SandboxState:
    store: Store
    useradm: Useradm
    faults: Faults
    max_devices: int  # -1 = unlimited, 0 = none may be accepted (deviceauth main)
    admin_id: str
    workflows: Workflows = field(init=False)
    limiter: RateLimiter = field(init=False)
    _device_log: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=DEVICE_LOG_SIZE), repr=False)
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.workflows = Workflows(self.store)
        self.limiter = RateLimiter(self.faults)

    def inventory(self, *jobs: Job) -> None:
        """Start deviceauth's workflow jobs for inventory after the propagation delay."""
        self.workflows.submit(self.faults.inventory_delay_ms / 1000.0, *jobs)

    def record_device_call(self, arrived: float, method: str, path: str, status: int,
                           device_id: str | None) -> None:
        entry = {"time": arrived, "method": method, "path": path, "status": status,
                 "device_id": device_id}
        with self._log_lock:
            self._device_log.append(entry)

    def device_log(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._device_log)


def state() -> SandboxState:
    value = current_app.extensions[EXTENSION]
    assert isinstance(value, SandboxState)
    return value
