"""Helpers of the function/webhook tests: settings, keys, audit envelopes, a captured log
stream, a runtime over the fakes of tests/fakes.py."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.config import Settings
from bridge.factory import policy
from bridge.model import Credential, CredentialFormat, RegistryRef
from bridge.runtime import Runtime
from bridge.service import Service
from bridge.sync import Bridge
from tests.fakes import FakeMender, FakeRegistry

TOKEN = "pat-token-abcdef-0123456789"
SECRET = "webhook-secret-0123456789"
REF = RegistryRef("sandbox-project", "us-central1", "fleet")


def public_pem(kind: str = "ec", bits: int = 2048) -> str:
    key: Any = (ec.generate_private_key(ec.SECP256R1()) if kind == "ec"
                else rsa.generate_private_key(public_exponent=65537, key_size=bits))
    return str(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def credential(kind: str = "ec", bits: int = 2048) -> Credential:
    fmt = CredentialFormat.ES256_PEM if kind == "ec" else CredentialFormat.RSA_PEM
    return Credential(public_pem(kind, bits), fmt)


def settings_map(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "mender_url": "https://mender.example.com", "mender_token": TOKEN,
        "iot_project": REF.project, "iot_location": REF.location, "iot_registries": REF.registry,
        "webhook_secret": SECRET,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class World:
    registry: FakeRegistry
    mender: FakeMender
    runtime: Runtime
    builds: list[Settings]


def make_world(**overrides: Any) -> World:
    registry, mender, builds = FakeRegistry(), FakeMender(), []

    def build(settings: Settings) -> Service:
        builds.append(settings)
        notify_url = settings.mender_url if settings.notify_device else None
        return Service.single(Bridge(registry, mender, policy(settings), scope=settings.scope,
                                     notify_url=notify_url))

    runtime = Runtime(lambda: Settings.from_mapping(settings_map(**overrides)), build)
    return World(registry, mender, runtime, builds)


class LogCapture(io.StringIO):
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines() if line.strip()]

    def messages(self) -> list[str]:
        return [r["message"] for r in self.records()]


def audit_entry(method: str, ref: RegistryRef, device_id: str, num_id: str,
                mask: str | None = None) -> dict[str, Any]:
    """A Cloud IoT audit LogEntry shaped like the captured one (docs/cloud-iot.md)."""
    name = f"{ref.path}/devices/{device_id}"
    requests: dict[str, dict[str, Any]] = {
        "CreateDevice": {"parent": ref.path, "device": {"id": device_id}},
        "UpdateDevice": {"device": {"id": device_id, "name": name}},
        "DeleteDevice": {"name": name}}
    request = requests[method]
    if mask is not None:
        request["updateMask"] = mask
    return {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "cloudiot.googleapis.com",
            "methodName": f"google.cloud.iot.v1.DeviceManager.{method}",
            "resourceName": name,
            "request": request,
        },
        "resource": {"type": "cloudiot_device", "labels": {
            "device_num_id": num_id, "project_id": ref.project,
            "device_registry_id": ref.registry, "location": ref.location}},
        "severity": "NOTICE",
        "logName": f"projects/{ref.project}/logs/cloudaudit.googleapis.com%2Factivity",
    }


def push_body(entry: dict[str, Any] | str, message_id: str = "1000") -> bytes:
    """A Pub/Sub push envelope (docs/pubsub.md) carrying `entry` as its data."""
    import base64

    raw = entry if isinstance(entry, str) else json.dumps(entry)
    return json.dumps({"message": {
        "data": base64.b64encode(raw.encode()).decode(), "messageId": message_id,
        "message_id": message_id, "publishTime": "2026-01-01T00:00:00Z",
        "attributes": {"logging.googleapis.com/timestamp": "2026-01-01T00:00:00Z"}},
        "subscription": "projects/sandbox-project/subscriptions/s"}).encode()
