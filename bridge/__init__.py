"""mender-bridge: admit Cloud IoT registry devices to Mender with the same identity and key."""

__version__ = "0.1.0"
