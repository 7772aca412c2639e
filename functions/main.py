"""Cloud Function entry points of mender-bridge, thin over `bridge.runtime.Runtime`.

on_device_event (gen2 CloudEvent), on_device_event_legacy (gen1 background), on_push (HTTP,
Pub/Sub push envelope), provision (HTTP, provisioning webhook), reconcile (HTTP, backfill).
Settings come from environment variables (MENDER_TOKEN from Secret Manager). The Bridge is
built at the first event and reused on warm starts. The runtime decides for each event: a
transient failure or a configuration error is delivered again (the function answers 5xx;
bounded by the dead-letter policy); a permanent failure, an unreadable or out-of-scope event
is logged and acknowledged.
"""

from __future__ import annotations

import os
from typing import Any

import functions_framework
from flask import Request, Response
from werkzeug.exceptions import ServiceUnavailable

from bridge import logs, webhook
from bridge.runtime import EventResult, Runtime

RUNTIME = Runtime.from_env(os.environ)
# LOG_LEVEL is applied with the other settings at the first event: a bad value is then one
# configuration error line, not a traceback that keeps the instance from starting.
logs.configure(redactor=RUNTIME.redactor)


def _ack_or_redeliver(result: EventResult) -> None:
    """The runtime has logged the event in one structured line; raising here makes the
    framework answer 500 so Pub/Sub delivers it again (bounded by the dead-letter policy)."""
    if not result.ack:
        raise ServiceUnavailable(f"deliver again: {result.reason}")


@functions_framework.cloud_event
def on_device_event(cloud_event: Any) -> None:
    """Pub/Sub `messagePublished` carrying the audit LogEntry, or a direct audit-log event."""
    _ack_or_redeliver(RUNTIME.handle_cloudevent(cloud_event.get_attributes(),
                                                cloud_event.get_data()))


def on_device_event_legacy(event: dict[str, Any], context: Any) -> None:
    """Gen1 background function (`--signature-type=event`): a Pub/Sub message."""
    _ack_or_redeliver(RUNTIME.handle_background(event, context))


@functions_framework.http
def on_push(request: Request) -> Response:
    """A Pub/Sub push subscription's envelope; IAM (OIDC) authenticates the caller."""
    return webhook.push_response(RUNTIME, request)


@functions_framework.http
def provision(request: Request) -> Response:
    """Provisioning webhook: `{"registry", "device_id"}` with a bearer WEBHOOK_SECRET."""
    return webhook.provision_response(RUNTIME, request)


@functions_framework.http
def reconcile(request: Request) -> Response:
    """Backfill of the configured registries, for Cloud Scheduler (OIDC; IAM authenticates)."""
    return webhook.reconcile_response(RUNTIME, request)
