"""Audit-log events of the stand-in, delivered as the Logging sink + Pub/Sub chain would.

Each device create/update/delete becomes a Cloud Audit LogEntry shaped like the captured one,
queued (SQLite) once per target: the Pub/Sub topic of a `TopicSink` (the entry's JSON, as a
sink publishes it) and each direct push endpoint (a push envelope). A background thread sends
due items, retrying failures with exponential backoff, at least once, then moves an item that
keeps failing to the dead letters.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from bridge.sandbox.registry.sink import TopicSink
from bridge.sandbox.registry.store import Delivery, Store

METHOD = "google.cloud.iot.v1.DeviceManager."
_PERMISSION = {"CreateDevice": "create", "UpdateDevice": "update", "DeleteDevice": "delete"}
_ACK = {102, 200, 201, 202, 204}  # what a push endpoint answers to acknowledge (Pub/Sub docs)


def log_entry(method: str, reg: Sequence[str], device: dict[str, Any], requested_as: str,
              request: dict[str, Any], response: dict[str, Any], when: str) -> dict[str, Any]:
    project, location, registry = reg
    path = f"projects/{project}/locations/{location}/registries/{registry}"
    return {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "sandbox@example.com"},
            "requestMetadata": {"callerIp": "127.0.0.1",
                                "requestAttributes": {"time": when, "auth": {}},
                                "destinationAttributes": {}},
            "serviceName": "cloudiot.googleapis.com",
            "methodName": METHOD + method,
            # The real service writes this path without its `registries/` segment.
            "authorizationInfo": [{
                "resource": f"projects/{project}/locations/{location}/{registry}/{requested_as}",
                "permission": f"cloudiot.devices.{_PERMISSION[method]}", "granted": True,
                "resourceAttributes": {}}],
            "resourceName": f"{path}/devices/{requested_as}",
            "request": request,
            "response": response,
        },
        "insertId": secrets.token_hex(6),
        "resource": {"type": "cloudiot_device", "labels": {
            "device_num_id": device["numId"], "project_id": project,
            "device_registry_id": registry, "location": location}},
        "timestamp": when,
        "severity": "NOTICE",
        "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2Factivity",
        "receiveTimestamp": when,
    }


def push_envelope(entry: dict[str, Any], project: str) -> bytes:
    message_id = str(secrets.randbelow(9 * 10**15) + 10**15)
    when = entry["timestamp"]
    data = base64.b64encode(json.dumps(entry).encode()).decode()
    return json.dumps({
        "message": {"data": data, "attributes": {"logging.googleapis.com/timestamp": when},
                    "messageId": message_id, "message_id": message_id,
                    "publishTime": when, "publish_time": when},
        "subscription": f"projects/{project}/subscriptions/sandbox-audit-push",
    }).encode()


def is_topic(target: str) -> bool:
    return target.startswith("projects/")


class Deliverer:
    """Owns the push endpoint list, the topic sink and the delivery thread."""

    def __init__(self, store: Store, endpoints: Sequence[str], *, min_backoff: float = 0.5,
                 max_backoff: float = 30.0, max_attempts: int = 8, timeout: float = 10.0,
                 sink: TopicSink | None = None) -> None:
        self.store, self.sink = store, sink
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.max_attempts, self.timeout = max_attempts, timeout
        self._endpoints = list(endpoints) or json.loads(store.meta("audit_endpoints", "[]"))
        store.set_meta("audit_endpoints", json.dumps(self._endpoints))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="registry-audit", daemon=True)
        self._thread.start()

    @property
    def endpoints(self) -> list[str]:
        return list(self._endpoints)

    def set_endpoints(self, endpoints: Sequence[str]) -> None:
        self._endpoints = list(endpoints)
        self.store.set_meta("audit_endpoints", json.dumps(self._endpoints))

    def deliveries(self, entry: dict[str, Any], project: str) -> list[Delivery]:
        found: list[Delivery] = []
        if self.sink is not None:
            found.append((self.sink.topic, json.dumps(entry).encode()))
        if self._endpoints:
            body = push_envelope(entry, project)
            found += [(endpoint, body) for endpoint in self._endpoints]
        return found

    def notify(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._session.close()
        if self.sink is not None:
            self.sink.close()

    def status(self) -> dict[str, Any]:
        return {**self.store.audit_counts(), "endpoints": self.endpoints,
                "topic": self.sink.topic if self.sink else None}

    def _run(self) -> None:
        while not self._stop.is_set():
            due = self.store.due(time.time())
            self._publish([d for d in due if is_topic(d[1])])
            for item, endpoint, body, attempts in due:
                if self._stop.is_set():
                    return
                if not is_topic(endpoint):
                    self._deliver(item, endpoint, body, attempts + 1)
            upcoming = self.store.next_due()
            wait = 1.0 if upcoming is None else min(max(upcoming - time.time(), 0.0), 1.0)
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _publish(self, due: Sequence[tuple[int, str, bytes, int]]) -> None:
        """All due topic items at once: the sink publishes them in parallel batches."""
        if not due:
            return
        if self.sink is None:
            errors = ["no Pub/Sub topic configured (started without the emulator)"] * len(due)
            for item, _, _, attempts in due:
                self.store.mark(item, "dead", attempts, time.time(), errors[0])
            return
        errors = self.sink.publish([(topic, body) for _, topic, body, _ in due])
        for (item, _, _, attempts), error in zip(due, errors, strict=True):
            self._settle(item, attempts + 1, error)

    def _deliver(self, item: int, endpoint: str, body: bytes, attempt: int) -> None:
        try:
            answer = self._session.post(endpoint, data=body, timeout=self.timeout,
                                        headers={"Content-Type": "application/json"})
            error = "" if answer.status_code in _ACK else f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            error = type(exc).__name__
        self._settle(item, attempt, error)

    def _settle(self, item: int, attempt: int, error: str) -> None:
        if not error:
            self.store.mark(item, "delivered", attempt, time.time())
        elif attempt >= self.max_attempts:
            self.store.mark(item, "dead", attempt, time.time(), error)
        else:
            delay = min(self.min_backoff * 2 ** (attempt - 1), self.max_backoff)
            self.store.mark(item, "pending", attempt, time.time() + delay, error)
