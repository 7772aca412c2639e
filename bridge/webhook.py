"""HTTP side of the bridge: the provisioning webhook, Pub/Sub push and the scheduled reconcile,
as Flask views shared by `functions/main.py` (one view per function) and `mender-bridge serve`
(one app, several routes).

Provisioning: `POST {"registry": R, "device_id": D}` with `Authorization: Bearer WEBHOOK_SECRET`
→ 200 and the sync report (a skipped action, e.g. an unusable key, says why in its detail);
422 if an action failed for good; 400 bad input; 401 no or wrong secret; 503 + Retry-After
on a transient failure.
"""

from __future__ import annotations

import hmac
import logging
import math
from typing import Any

from flask import Flask, Request, Response, jsonify, request

from bridge import logs
from bridge.errors import ConfigError, TransientApiError
from bridge.runtime import Runtime

DEFAULT_RETRY_AFTER = 30
_MAX_ID = 256


def provision_response(runtime: Runtime, req: Request) -> Response:
    if req.method != "POST":
        return _error(405, "use POST", Allow="POST")
    try:
        settings = runtime.settings()
    except ConfigError:
        return _error(500, "the bridge is not configured; see its logs")
    if settings.webhook_secret is None:
        logs.emit(runtime.log, logging.ERROR, "provisioning refused: WEBHOOK_SECRET is not set",
                  outcome="config_error")
        return _error(500, "the webhook is disabled: WEBHOOK_SECRET is not set")
    if not authorized(req, settings.webhook_secret.reveal()):
        return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    body = req.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, 'expected a JSON object {"registry": ..., "device_id": ...}')
    registry, device_id = body.get("registry"), body.get("device_id")
    if not isinstance(device_id, str) or not 0 < len(device_id) <= _MAX_ID or "/" in device_id:
        return _error(400, "device_id must be a device id or numeric id")
    if not isinstance(registry, str):
        return _error(400, "registry must be a registry id or its full path")
    try:
        ref = runtime.registry_ref(registry)
    except ValueError as exc:
        return _error(400, str(exc))
    try:
        report = runtime.provision(ref, device_id)
    except TransientApiError as exc:
        return _retry_later(exc)
    except ConfigError:
        return _error(500, "the bridge is not configured; see its logs")
    body = {"device": f"{ref.registry}/{device_id}", "failed": report.failed, **report.to_dict()}
    return _json(422 if report.failed else 200, body)


def push_response(runtime: Runtime, req: Request, *, secret_required: bool = False) -> Response:
    """Pub/Sub push: 200 acknowledges (done, failed for good, or unreadable); 5xx redelivers."""
    if req.method != "POST":
        return _error(405, "use POST", Allow="POST")
    if secret_required:
        try:
            secret = runtime.settings().webhook_secret
        except ConfigError:
            return _error(500, "the bridge is not configured; see its logs")
        if secret is None or not authorized(req, secret.reveal(), query=True):
            return _error(401, "missing or wrong token", **{"WWW-Authenticate": "Bearer"})
    try:
        result = runtime.handle_push(req.get_data())
    except TransientApiError as exc:
        return _retry_later(exc)
    except ConfigError:
        return _error(500, "the bridge is not configured; see its logs")
    return _json(200, {"outcome": result.outcome, "reason": result.reason or None})


def reconcile_response(runtime: Runtime, req: Request) -> Response:
    """Backfill now. 200 if every device is in sync; 500 if some failed (a scheduler retries)."""
    if req.method != "POST":
        return _error(405, "use POST", Allow="POST")
    try:
        report = runtime.reconcile()
    except TransientApiError as exc:
        return _retry_later(exc)
    except ConfigError:
        return _error(500, "the bridge is not configured; see its logs")
    body = {"failed": report.failed, "summary": report.summary()}
    return _json(500 if report.failed else 200, body)


def authorized(req: Request, secret: str, *, query: bool = False) -> bool:
    """Bearer token (or, for push endpoints, a `token` query parameter), in constant time."""
    header = req.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        given = req.args.get("token", "") if query else ""
    return hmac.compare_digest(given.strip().encode(), secret.encode())


def create_app(runtime: Runtime) -> Flask:
    """The `serve` app: POST /provision, POST /pubsub (secret required), GET /healthz."""
    app = Flask("mender_bridge")

    @app.post("/provision")
    def _provision() -> Response:
        return provision_response(runtime, request)

    @app.post("/pubsub")
    def _pubsub() -> Response:
        return push_response(runtime, request, secret_required=True)

    @app.get("/healthz")
    def _health() -> Response:
        return _json(200, {"status": "ok"})

    return app


def _retry_later(exc: TransientApiError) -> Response:
    seconds = exc.retry_after if exc.retry_after and exc.retry_after > 0 else DEFAULT_RETRY_AFTER
    retry_after = str(math.ceil(seconds))
    return _error(503, f"temporarily unavailable: {exc}", **{"Retry-After": retry_after})


def _error(status: int, message: str, **headers: str) -> Response:
    response = _json(status, {"error": message})
    response.headers.update(headers)
    return response


def _json(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response
