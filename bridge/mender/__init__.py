"""Mender management API client: the bridge's only way to change Mender (bridge.ports.Mender)."""

from bridge.mender.client import MenderClient
from bridge.mender.transport import Stats

__all__ = ["MenderClient", "Stats"]
