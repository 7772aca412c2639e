"""The captured CreateDevice audit entry and the envelopes it can arrive in."""

from __future__ import annotations

import base64
import json
from typing import Any

from bridge.events import ChangeKind, DeviceChange
from bridge.model import RegistryRef
from tests.fixtures import audit_entry

MESSAGE_ID = "2070443601311540"
PUBLISHED = "2019-05-22T16:16:48.500Z"
EXPECTED = DeviceChange(ChangeKind.CREATE, RegistryRef("cloud-custodian", "europe-west1",
                                                       "custodian"),
                        "custodian-device", "2945293131701148", None, MESSAGE_ID)


def entry() -> dict[str, Any]:
    """The captured CreateDevice entry (tests/fixtures/audit-log), a fresh copy each call."""
    return audit_entry()


def pubsub_message(log: dict[str, Any] | None = None) -> dict[str, Any]:
    log = entry() if log is None else log
    return {"data": base64.b64encode(json.dumps(log).encode()).decode(),
            "attributes": {"logging.googleapis.com/timestamp": log.get("timestamp", "")},
            "messageId": MESSAGE_ID, "message_id": MESSAGE_ID,
            "publishTime": PUBLISHED, "publish_time": PUBLISHED}


def push_body(log: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": pubsub_message(log), "subscription": "projects/p/subscriptions/s"}


def ce_attributes(kind: str = "google.cloud.pubsub.topic.v1.messagePublished"
                  ) -> dict[str, Any]:
    return {"specversion": "1.0", "id": MESSAGE_ID, "type": kind, "time": PUBLISHED,
            "source": "//pubsub.googleapis.com/projects/cloud-custodian/topics/iot"}


def legacy_body(log: dict[str, Any] | None = None) -> dict[str, Any]:
    message = pubsub_message(log)
    event = {"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
             "attributes": message["attributes"], "data": message["data"]}
    return {"context": {"eventId": MESSAGE_ID, "timestamp": PUBLISHED,
                        "eventType": "google.pubsub.topic.publish",
                        "resource": {"service": "pubsub.googleapis.com",
                                     "name": "projects/cloud-custodian/topics/iot"}},
            "data": event}


def all_envelopes(log: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every JSON envelope `decode` must recognize, by name."""
    log = entry() if log is None else log
    return {
        "push": push_body(log),
        "structured cloudevent": {**ce_attributes(), "datacontenttype": "application/json",
                                  "data": push_body(log)},
        "audit cloudevent": {**ce_attributes("google.cloud.audit.log.v1.written"),
                             "data": log},
        "legacy background body": legacy_body(log),
        "background event": legacy_body(log)["data"],
        "log entry": log,
    }
