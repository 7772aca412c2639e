"""Decode a registry device change from whatever envelope the trigger delivers.

`decode` detects the envelope; each `decode_*` reads one kind. Only EventError is raised.
"""

from bridge.events.entry import decode_log_entry
from bridge.events.envelopes import (
    AUDIT_WRITTEN,
    PUBSUB_PUBLISHED,
    decode,
    decode_background,
    decode_cloudevent,
    decode_entry_bytes,
    decode_pubsub_message,
    decode_push,
)
from bridge.model import ChangeKind, DeviceChange

__all__ = [
    "AUDIT_WRITTEN",
    "PUBSUB_PUBLISHED",
    "ChangeKind",
    "DeviceChange",
    "decode",
    "decode_background",
    "decode_cloudevent",
    "decode_entry_bytes",
    "decode_log_entry",
    "decode_pubsub_message",
    "decode_push",
]
