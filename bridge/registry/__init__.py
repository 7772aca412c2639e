"""Registry adapters: Google Cloud IoT Core and ClearBlade IoT Core behind `bridge.ports.Registry`.

`from_settings` picks one by `settings.registry_backend`. Nothing here imports a Google
library at module import (the Cloud Function's cold start must not pay for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.config import Settings
from bridge.registry.clearblade import ClearBladeRegistry
from bridge.registry.google import GoogleRegistry

if TYPE_CHECKING:
    from bridge.ports import Registry

__all__ = ["ClearBladeRegistry", "GoogleRegistry", "from_settings"]


def from_settings(settings: Settings) -> Registry:
    """The registry adapter the settings ask for (`REGISTRY_BACKEND`)."""
    if settings.registry_backend == "clearblade":
        assert settings.clearblade_configuration is not None  # Settings.problems checks it
        return ClearBladeRegistry(settings.clearblade_configuration)
    return GoogleRegistry(endpoint=settings.iot_endpoint, credentials=settings.iot_credentials)
