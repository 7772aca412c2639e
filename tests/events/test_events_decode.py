"""The event decoder: the captured audit entry through every envelope, and precise errors."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from events_support import (
    EXPECTED,
    all_envelopes,
    ce_attributes,
    entry,
    legacy_body,
    pubsub_message,
    push_body,
)

from bridge.errors import EventError
from bridge.events import (
    ChangeKind,
    decode,
    decode_background,
    decode_cloudevent,
    decode_log_entry,
    decode_push,
)

NO_ID = EXPECTED.__class__(EXPECTED.kind, EXPECTED.ref, EXPECTED.device_id, EXPECTED.num_id)


@pytest.mark.parametrize("name", sorted(all_envelopes()))
def test_the_fixture_decodes_through_every_envelope(name: str) -> None:
    envelope = all_envelopes()[name]
    # A bare entry has no message id; a gen1 event carries it in its context only.
    expected = NO_ID if name in ("log entry", "background event") else EXPECTED
    assert decode(envelope) == expected
    assert decode(json.dumps(envelope)) == expected
    assert decode(json.dumps(envelope).encode()) == expected


def test_each_specific_decoder() -> None:
    assert decode_push(json.dumps(push_body()).encode()) == EXPECTED
    assert decode_push(push_body()) == EXPECTED
    assert decode_cloudevent(ce_attributes(), push_body()) == EXPECTED
    assert decode_cloudevent(ce_attributes("google.cloud.audit.log.v1.written"),
                             json.dumps(entry())) == EXPECTED
    context = SimpleNamespace(event_id="ctx-1", event_type="google.pubsub.topic.publish")
    event = legacy_body()["data"]
    assert decode_background(event, context).message_id == "ctx-1"
    assert decode_background(event, {"eventId": "ctx-2"}).message_id == "ctx-2"
    assert decode_background(event, None) == NO_ID
    assert decode_log_entry(entry()) == NO_ID


def test_a_cloudevents_sdk_object() -> None:
    event = CloudEvent(ce_attributes(), push_body())
    assert decode(event) == EXPECTED


def with_payload(**changes: Any) -> dict[str, Any]:
    log = entry()
    log["protoPayload"].update(changes)
    return log


def test_update_with_mask_and_delete_by_numeric_id() -> None:
    update = with_payload(
        methodName="google.cloud.iot.v1.DeviceManager.UpdateDevice",
        request={"@type": "type.googleapis.com/google.cloud.iot.v1.UpdateDeviceRequest",
                 "device": {"id": "custodian-device", "blocked": True},
                 "updateMask": "blocked,gatewayConfig.gatewayAuthMethod"})
    change = decode_push(push_body(update))
    assert change.kind is ChangeKind.UPDATE
    assert change.update_mask == ("blocked", "gateway_config.gateway_auth_method")
    masked = with_payload(methodName="google.cloud.iot.v1.DeviceManager.UpdateDevice",
                          request={"updateMask": {"paths": ["credentials"]}})
    assert decode_log_entry(masked).update_mask == ("credentials",)
    delete = with_payload(
        methodName="google.cloud.iot.v1.DeviceManager.DeleteDevice",
        resourceName="projects/cloud-custodian/locations/europe-west1/registries/custodian/"
                     "devices/2945293131701148",
        request={"name": "x"}, response={})
    deleted = decode_log_entry(delete)
    assert (deleted.kind, deleted.device_id, deleted.num_id) == (
        ChangeKind.DELETE, None, "2945293131701148")


def test_the_registry_from_resource_name_when_labels_are_missing() -> None:
    log = entry()
    del log["resource"]
    change = decode_log_entry(log)
    assert change.ref == EXPECTED.ref and change.device_id == "custodian-device"
    assert change.num_id == "2945293131701148"  # response.name ends in the numeric id


def bad_data(data: str) -> dict[str, Any]:
    body = push_body()
    body["message"]["data"] = data
    return body


@pytest.mark.parametrize(("event", "message"), [
    (with_payload(methodName="google.cloud.iot.v1.DeviceManager.CreateDeviceRegistry"),
     "not a Cloud IoT device change"),
    (with_payload(status={"code": 6, "message": "exists"}), "failed (status 6)"),
    ({**entry(), "resource": {"labels": {"project_id": "p", "location": "l",
                                         "device_registry_id": "../x"}}}, "not a valid name"),
    ({**with_payload(resourceName=7), "resource": {}}, "no registry"),
    ({**with_payload(request={}, response={}, resourceName=""),
      "resource": {"labels": {"project_id": "p", "location": "l",
                              "device_registry_id": "reg"}}}, "names no device"),
    (bad_data("%%%"), "not valid base64"),
    (bad_data(base64.b64encode(b"[1, 2]").decode()), "expected a JSON object"),
    (bad_data(base64.b64encode(b"{nope").decode()), "not valid JSON"),
    ({**ce_attributes("google.cloud.storage.object.v1.finalized"), "data": {}},
     "unsupported CloudEvent type"),
    ({"hello": "world"}, "unrecognized event"),
    ("[" * 100_000, "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (42, "unrecognized event of type int"),
    ({"message": {"data": 5}}, "no base64 `data`"),
])
def test_unreadable_events_raise_precise_errors(event: Any, message: str) -> None:
    with pytest.raises(EventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(event)


def test_message_id_falls_back_to_snake_case() -> None:
    message = pubsub_message()
    del message["messageId"]
    message["message_id"] = "snake-1"
    assert decode({"message": message}).message_id == "snake-1"
