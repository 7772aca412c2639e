"""Registry adapters: Google Cloud IoT Core and ClearBlade IoT Core behind `bridge.ports.Registry`.

The composition root (`bridge.factory.registry`) picks one by `REGISTRY_BACKEND`. Nothing here
imports a Google library at module import (the Cloud Function's cold start must not pay for it).
"""

from __future__ import annotations

from bridge.registry.clearblade import ClearBladeRegistry
from bridge.registry.google import GoogleRegistry

__all__ = ["ClearBladeRegistry", "GoogleRegistry"]
