"""The stand-in's per-application state, reachable from request handlers."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from bridge.sandbox.faults import Faults
from bridge.sandbox.mender.store import Store
from bridge.sandbox.mender.useradm import Useradm

EXTENSION = "mender_sandbox"


@dataclass
class SandboxState:
    store: Store
    useradm: Useradm
    faults: Faults
    max_devices: int  # -1 = unlimited, 0 = none may be accepted (deviceauth main)
    admin_id: str


def state() -> SandboxState:
    value = current_app.extensions[EXTENSION]
    assert isinstance(value, SandboxState)
    return value
