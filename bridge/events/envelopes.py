"""Unwrap the envelopes an audit-log entry arrives in: a gen2 CloudEvent (Pub/Sub message
published, or an audit log written directly), a gen1 background event, a Pub/Sub push body,
or the bare LogEntry. Sizes are bounded and types checked; only EventError is raised.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from bridge.errors import EventError
from bridge.events.entry import decode_log_entry, mapping
from bridge.model import DeviceChange

MAX_BYTES = 1024 * 1024
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
AUDIT_WRITTEN = "google.cloud.audit.log.v1.written"
LEGACY_PUBSUB = "google.pubsub.topic.publish"


def _json(raw: bytes | str, what: str) -> object:
    if len(raw) > MAX_BYTES:
        raise EventError(f"{what} is larger than {MAX_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise EventError(f"{what} is not valid JSON: {str(exc)[:120]}") from None


def _message_id(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and 0 < len(value) <= 256:
        return value
    return None


def decode_pubsub_message(message: Mapping[str, object], message_id: str | None = None
                          ) -> DeviceChange:
    """A PubsubMessage whose `data` is the base64 of a LogEntry in JSON."""
    message = mapping(message, "the Pub/Sub message")
    data = message.get("data")
    if not isinstance(data, str):
        raise EventError("the Pub/Sub message has no base64 `data` string")
    if len(data) > MAX_BYTES:
        raise EventError(f"the Pub/Sub message data is larger than {MAX_BYTES} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise EventError("the Pub/Sub message data is not valid base64") from None
    entry = _json(raw, "the Pub/Sub message data")
    message_id = message_id or _message_id(message.get("messageId")) \
        or _message_id(message.get("message_id"))
    return decode_log_entry(mapping(entry, "the Pub/Sub message data"), message_id)


def decode_entry_bytes(data: bytes, message_id: str | None = None) -> DeviceChange:
    """A pulled Pub/Sub message's data: the LogEntry JSON a Logging sink published."""
    entry = _json(data, "the Pub/Sub message data")
    return decode_log_entry(mapping(entry, "the Pub/Sub message data"), _message_id(message_id))


def decode_push(body: bytes | str | Mapping[str, object]) -> DeviceChange:
    """A Pub/Sub push request body `{"message": {...}, "subscription": ...}`."""
    parsed = _json(body, "the push body") if isinstance(body, bytes | str) else body
    envelope = mapping(parsed, "the push body")
    return decode_pubsub_message(mapping(envelope.get("message"), "the push body's message"))


def decode_cloudevent(attributes: Mapping[str, object], data: object) -> DeviceChange:
    """A CloudEvent: Pub/Sub messagePublished (data = MessagePublishedData) or an audit log
    written directly (data = the LogEntry)."""
    attributes = mapping(attributes, "the CloudEvent attributes")
    kind = attributes.get("type")
    event_id = _message_id(attributes.get("id"))
    if isinstance(data, bytes | str):
        data = _json(data, "the CloudEvent data")
    if kind == PUBSUB_PUBLISHED:
        published = mapping(data, "the CloudEvent data")
        message = mapping(published.get("message"), "the CloudEvent data's message")
        return decode_pubsub_message(message, event_id)
    if kind == AUDIT_WRITTEN:
        return decode_log_entry(mapping(data, "the CloudEvent data"), event_id)
    raise EventError(f"unsupported CloudEvent type {str(kind)[:120]!r} (expected "
                     f"{PUBSUB_PUBLISHED} or {AUDIT_WRITTEN})")


def _context_id(context: object) -> str | None:
    if context is None:
        return None
    if isinstance(context, Mapping):
        return _message_id(context.get("eventId")) or _message_id(context.get("event_id"))
    try:
        return _message_id(getattr(context, "event_id", None))
    except Exception:  # a foreign context object; its id is only informative
        return None


def decode_background(event: Mapping[str, object], context: object | None = None
                      ) -> DeviceChange:
    """A gen1 background event `(event, context)`: event is the PubsubMessage."""
    event = mapping(event, "the background event")
    return decode_pubsub_message(event, _context_id(context))


def decode(obj: object) -> DeviceChange:
    """Detect the envelope of `obj` (JSON text or bytes, a mapping, or a CloudEvent object)."""
    if isinstance(obj, bytes | str):
        obj = _json(obj, "the event")
    if not isinstance(obj, Mapping):
        attributes, data = _cloudevent_parts(obj)
        return decode_cloudevent(attributes, data)
    if "protoPayload" in obj:
        return decode_log_entry(obj)
    if "specversion" in obj and "type" in obj:
        return decode_cloudevent(obj, obj.get("data"))
    if isinstance(obj.get("message"), Mapping):
        return decode_push(obj)
    if "context" in obj and isinstance(obj.get("data"), Mapping):
        data = mapping(obj.get("data"), "the background event data")
        return decode_background(data, obj.get("context"))
    if "data" in obj:
        return decode_background(obj, None)
    raise EventError("unrecognized event: not a LogEntry, CloudEvent, push body or "
                     "background event")


def _cloudevent_parts(obj: object) -> tuple[Mapping[str, object], object]:
    """Attributes and data of a CloudEvent object (cloudevents SDK, functions-framework)."""
    getter = getattr(obj, "get_attributes", None)
    if not callable(getter):
        raise EventError(f"unrecognized event of type {type(obj).__name__}")
    try:
        attributes = getter()
        data = getattr(obj, "data", None)
    except Exception as exc:  # a foreign object: anything it raises is an unreadable event
        raise EventError(f"cannot read the CloudEvent: {type(exc).__name__}") from None
    return mapping(attributes, "the CloudEvent attributes"), data
