"""Cloud Function entry points of mender-bridge, thin over `bridge.runtime.Runtime`.

on_device_event (gen2 CloudEvent), on_device_event_legacy (gen1 background), on_push (HTTP,
Pub/Sub push envelope), provision (HTTP, provisioning webhook), reconcile (HTTP, backfill).
Settings come from environment variables (MENDER_TOKEN from Secret Manager). The Bridge is
built at the first event and reused on warm starts. A transient failure or a configuration
error raises, so the runtime answers 500 and Pub/Sub redelivers (bounded by the dead-letter
policy); a permanent failure or an unreadable event is logged and acknowledged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import functions_framework
from flask import Request, Response
from werkzeug.exceptions import InternalServerError, ServiceUnavailable

from bridge import logs, webhook
from bridge.errors import ConfigError, TransientApiError
from bridge.runtime import Runtime

# LOG_LEVEL is applied with the other settings at the first event: a bad value is then one
# configuration error line, not a traceback that keeps the instance from starting.
logs.configure()
RUNTIME = Runtime.from_env(os.environ)


@contextmanager
def _redeliver_on_failure() -> Iterator[None]:
    """Both errors are already logged in one structured line: answer 503/500 (Pub/Sub nacks
    and redelivers) without the framework's multi-line traceback. A bug still raises as is."""
    try:
        yield
    except TransientApiError as exc:
        raise ServiceUnavailable(f"transient failure, deliver again: {exc}") from None
    except ConfigError:
        raise InternalServerError("configuration error; see the logs") from None


@functions_framework.cloud_event
def on_device_event(cloud_event: Any) -> None:
    """Pub/Sub `messagePublished` carrying the audit LogEntry, or a direct audit-log event."""
    with _redeliver_on_failure():
        RUNTIME.handle_cloudevent(cloud_event.get_attributes(), cloud_event.get_data())


def on_device_event_legacy(event: dict[str, Any], context: Any) -> None:
    """Gen1 background function (`--signature-type=event`): a Pub/Sub message."""
    with _redeliver_on_failure():
        RUNTIME.handle_background(event, context)


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
