"""Audit-log delivery of the sandbox: Pub/Sub push envelopes to a real local HTTP endpoint,
redelivered after failures, dead-lettered after too many, and kept across a restart."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from registry_support import (
    LOCATION,
    PARENT,
    PROJECT,
    REGISTRY,
    PushEndpoint,
    StartSandbox,
    audit_status,
    drained,
    key_for,
    wait_for,
)

from bridge.events import ChangeKind, decode_push
from bridge.model import RegistryRef

pytestmark = pytest.mark.e2e
REF = RegistryRef(PROJECT, LOCATION, REGISTRY)


@pytest.fixture
def endpoint() -> Iterator[PushEndpoint]:
    push = PushEndpoint().start()
    yield push
    push.stop()


def change_device(url: str) -> str:
    """Create, update and delete one device; returns its numeric id."""
    devices = f"{url}/v1/{PARENT}/devices"
    made = requests.post(devices, timeout=5, json={"id": "dev-a", "credentials": [
        {"publicKey": {"format": 3, "key": key_for("RSA_PEM")}}]})
    assert made.status_code == 200
    patched = requests.patch(f"{devices}/dev-a", params={"updateMask": "blocked,logLevel"},
                             json={"blocked": True, "logLevel": 30}, timeout=5)
    assert patched.status_code == 200
    num_id: str = made.json()["numId"]
    assert requests.delete(f"{devices}/{num_id}", timeout=5).status_code == 200
    return num_id


def test_changes_arrive_as_push_envelopes(start_sandbox: StartSandbox,
                                          endpoint: PushEndpoint) -> None:
    sandbox = start_sandbox(audit_endpoints=[endpoint.url])
    num_id = change_device(sandbox.url)
    wait_for(lambda: len(endpoint.received) == 3, "three deliveries")
    bodies = [json.loads(b) for b in endpoint.received]
    entries = [json.loads(base64.b64decode(b["message"]["data"])) for b in bodies]
    assert {e["protoPayload"]["methodName"].rsplit(".", 1)[1] for e in entries} == {
        "CreateDevice", "UpdateDevice", "DeleteDevice"}
    for body, entry in zip(bodies, entries, strict=True):
        message = body["message"]
        assert message["messageId"] == message["message_id"]
        assert message["attributes"]["logging.googleapis.com/timestamp"] == entry["timestamp"]
        assert entry["resource"] == {"type": "cloudiot_device", "labels": {
            "device_num_id": num_id, "project_id": PROJECT, "device_registry_id": REGISTRY,
            "location": LOCATION}}
    changes = sorted((decode_push(b) for b in endpoint.received), key=lambda c: c.kind)
    assert [(c.kind, c.ref, c.num_id) for c in changes] == [
        (ChangeKind.CREATE, REF, num_id), (ChangeKind.DELETE, REF, num_id),
        (ChangeKind.UPDATE, REF, num_id)]
    update = next(c for c in changes if c.kind is ChangeKind.UPDATE)
    assert update.device_id == "dev-a" and update.update_mask == ("blocked", "log_level")
    assert changes[0].device_id == "dev-a" and changes[0].message_id
    assert audit_status(sandbox.url)["delivered"] == 3


def test_failed_deliveries_are_retried(start_sandbox: StartSandbox) -> None:
    flaky = PushEndpoint(fail_first=4).start()
    try:
        sandbox = start_sandbox(audit_endpoints=[flaky.url])
        change_device(sandbox.url)
        wait_for(drained(sandbox.url), "the queue to drain")
        assert len(flaky.received) == 3 and flaky.attempts == 7
        assert audit_status(sandbox.url) | {"endpoints": []} == {
            "pending": 0, "delivered": 3, "dead": 0, "retrying": 0, "endpoints": [],
            "topic": None}
    finally:
        flaky.stop()


def test_undeliverable_events_go_to_dead_letters(start_sandbox: StartSandbox) -> None:
    broken = PushEndpoint(always_fail=True).start()
    try:
        sandbox = start_sandbox(audit_endpoints=[broken.url], audit_max_attempts=3)
        change_device(sandbox.url)
        wait_for(drained(sandbox.url), "the queue to drain")
        assert audit_status(sandbox.url)["dead"] == 3 and broken.attempts == 9
    finally:
        broken.stop()


def test_endpoints_set_at_run_time_and_queue_kept_across_restart(
        start_sandbox: StartSandbox, tmp_path: Any) -> None:
    endpoint = PushEndpoint().start()
    assert endpoint.server is not None
    port = endpoint.server.port
    endpoint.stop()  # its port now refuses connections
    first = start_sandbox(tmp_path / "kept", audit_backoff=(0.3, 0.3))
    set_to = requests.post(f"{first.url}/_sandbox/audit-endpoints",
                           json={"endpoints": [endpoint.url]}, timeout=5)
    assert set_to.json() == {"endpoints": [endpoint.url]}
    change_device(first.url)
    wait_for(lambda: audit_status(first.url)["pending"] == 3, "three pending deliveries")
    first.stop()
    back = PushEndpoint().start(port)
    try:
        second = start_sandbox(tmp_path / "kept")
        assert audit_status(second.url)["endpoints"] == [endpoint.url]  # persisted
        wait_for(drained(second.url), "the kept queue to drain")
        assert len(back.received) == 3 and audit_status(second.url)["delivered"] == 3
    finally:
        back.stop()
    bad = requests.post(f"{second.url}/_sandbox/audit-endpoints", json={"x": 1}, timeout=5)
    assert bad.status_code == 400
