"""Audit-log events of the stand-in, delivered as the Logging sink + Pub/Sub push chain would.

Each device create/update/delete becomes a Cloud Audit LogEntry shaped like the captured one,
wrapped in a Pub/Sub push envelope and queued (SQLite) per endpoint; a background thread POSTs
due items, retrying non-2xx answers and connection errors with exponential backoff, at least
once, then moves an item that keeps failing to the dead letters.
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


class Deliverer:
    """Owns the endpoint list and the delivery thread."""

    def __init__(self, store: Store, endpoints: Sequence[str], *, min_backoff: float = 0.5,
                 max_backoff: float = 30.0, max_attempts: int = 8, timeout: float = 10.0
                 ) -> None:
        self.store = store
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
        if not self._endpoints:
            return []
        body = push_envelope(entry, project)
        return [(endpoint, body) for endpoint in self._endpoints]

    def notify(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._session.close()

    def status(self) -> dict[str, Any]:
        return {**self.store.audit_counts(), "endpoints": self.endpoints}

    def _run(self) -> None:
        while not self._stop.is_set():
            for item, endpoint, body, attempts in self.store.due(time.time()):
                if self._stop.is_set():
                    return
                self._deliver(item, endpoint, body, attempts + 1)
            upcoming = self.store.next_due()
            wait = 1.0 if upcoming is None else min(max(upcoming - time.time(), 0.0), 1.0)
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _deliver(self, item: int, endpoint: str, body: bytes, attempt: int) -> None:
        try:
            answer = self._session.post(endpoint, data=body, timeout=self.timeout,
                                        headers={"Content-Type": "application/json"})
            error = "" if answer.status_code in _ACK else f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            error = type(exc).__name__
        if not error:
            self.store.mark(item, "delivered", attempt, time.time())
        elif attempt >= self.max_attempts:
            self.store.mark(item, "dead", attempt, time.time(), error)
        else:
            delay = min(self.min_backoff * 2 ** (attempt - 1), self.max_backoff)
            self.store.mark(item, "pending", attempt, time.time() + delay, error)
