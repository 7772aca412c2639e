"""Builds a Bridge from settings: the one place that picks and constructs the adapters.

Adapters are imported here, lazily, so the core and the CLI's `--help` stay light.
"""

from __future__ import annotations

from dataclasses import replace

from bridge.config import Settings
from bridge.reconcile import Policy
from bridge.sync import Bridge


def build_bridge(settings: Settings, *, concurrency: int | None = None) -> Bridge:
    """A Bridge over the configured registry backend and Mender server; `concurrency`
    overrides the setting (the Mender connection pool is sized from it)."""
    from bridge import registry
    from bridge.mender import MenderClient

    if concurrency is not None:
        settings = replace(settings, concurrency=concurrency)
    return Bridge(registry.from_settings(settings), MenderClient.from_settings(settings),
                  Policy.from_settings(settings), concurrency=settings.concurrency)
