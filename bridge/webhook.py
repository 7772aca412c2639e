"""HTTP side of the bridge: the provisioning webhook, Pub/Sub push and the scheduled reconcile,
as Flask views shared by `functions/main.py` (one view per function) and `mender-bridge serve`
(one app, several routes). Entry-point translation only: the runtime validates names and scope.

Provisioning: `POST {"registry": R, "device_id": D}` with `Authorization: Bearer WEBHOOK_SECRET`
→ 200 and the sync report; 422 if an action failed for good; 400 bad input (with the reason);
401 no or wrong secret; 413 body over 1 MiB; 503 + Retry-After on a transient failure.
"""

from __future__ import annotations

import hmac
import logging
import math
from typing import Any

from flask import Flask, Request, Response, jsonify, request

from bridge import logs
from bridge.errors import ConfigError, InputError, TransientApiError
from bridge.httpbody import BodyError, parse_json, read_capped
from bridge.runtime import Runtime

DEFAULT_RETRY_AFTER = 30
_FIELDS = ("registry", "device_id")
_NOT_CONFIGURED = "the bridge is not configured; see its logs"


def provision_response(runtime: Runtime, req: Request) -> Response:
    if req.method != "POST":
        return _error(405, "use POST", Allow="POST")
    refused = _refuse_unauthorized(runtime, req)
    if refused is not None:
        return refused
    try:
        registry, device_id = _provision_request(req)
    except BodyError as exc:
        return _error(exc.status, exc.reason)
    try:
        report = runtime.provision(registry, device_id)
    except InputError as exc:
        return _error(400, str(exc))
    except TransientApiError as exc:
        logs.emit(runtime.log, logging.WARNING, f"provision answered 503, to be retried: {exc}",
                  outcome="retry")
        return _retry_later(exc.retry_after, f"temporarily unavailable: {exc}")
    except ConfigError:
        return _error(500, _NOT_CONFIGURED)
    body = {"registry": registry, "device_id": device_id, "failed": report.failed,
            **report.to_dict()}
    return _json(422 if report.failed else 200, body)


def push_response(runtime: Runtime, req: Request, *, secret_required: bool = False) -> Response:
    """Pub/Sub push: 200 acknowledges (done, failed for good, ignored); 503 redelivers. An
    unreadable body is the runtime's to judge (ignored and acknowledged, not redelivered)."""
    if req.method != "POST":
        return _error(405, "use POST", Allow="POST")
    if secret_required:
        refused = _refuse_unauthorized(runtime, req)
        if refused is not None:
            return refused
    try:
        data = read_capped(req.stream, req.content_length)
    except BodyError as exc:
        return _error(exc.status, exc.reason)
    result = runtime.handle_push(data)
    if not result.ack:
        return _retry_later(result.retry_after, f"not applied yet: {result.reason}")
    return _json(200, {"outcome": str(result.verdict), "reason": result.reason or None})


def reconcile_response(runtime: Runtime, req: Request) -> Response:
    """Backfill now. 200 if every device is in sync; 500 if some failed (a scheduler retries)."""
    if req.method != "POST":
        return _error(405, "use POST", Allow="POST")
    try:
        report = runtime.reconcile()
    except TransientApiError as exc:
        return _retry_later(exc.retry_after, f"temporarily unavailable: {exc}")
    except ConfigError:
        return _error(500, _NOT_CONFIGURED)
    body = {"failed": report.failed, "summary": report.summary()}
    return _json(500 if report.failed else 200, body)


def health_response(runtime: Runtime) -> Response:
    """200 with `runtime.health()` while it reports "ok", 503 otherwise."""
    status = runtime.health()
    return _json(200 if status.get("status") == "ok" else 503, status)


def authorized(req: Request, secret: str) -> bool:
    """`Authorization: Bearer <secret>`, compared in constant time. Never a query parameter:
    URLs end up in logs, proxies and browser histories."""
    scheme, _, given = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), secret.encode())


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
        return health_response(runtime)

    return app


def _refuse_unauthorized(runtime: Runtime, req: Request) -> Response | None:
    try:
        secret = runtime.settings().webhook_secret
    except ConfigError:
        return _error(500, _NOT_CONFIGURED)
    if secret is None:
        logs.emit(runtime.log, logging.ERROR, "request refused: WEBHOOK_SECRET is not set",
                  outcome="config_error")
        return _error(500, "the endpoint is disabled: WEBHOOK_SECRET is not set")
    if not authorized(req, secret.reveal()):
        return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    return None


def _provision_request(req: Request) -> tuple[str, str]:
    """The registry and device id of a provisioning body (their shape only)."""
    body = parse_json(read_capped(req.stream, req.content_length))
    if not isinstance(body, dict):
        raise BodyError(400, 'expected a JSON object {"registry": ..., "device_id": ...}')
    if set(body) - set(_FIELDS):
        raise BodyError(400, "unexpected field: the body has only registry and device_id")
    for field in _FIELDS:
        if field not in body:
            raise BodyError(400, f"{field} is missing")
        if not isinstance(body[field], str):
            raise BodyError(400, f"{field} must be a string, not {_json_type(body[field])}")
    return body["registry"], body["device_id"]


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array",
             dict: "an object", type(None): "null"}
    return names.get(type(value), "another type")


def _retry_later(retry_after: float | None, message: str) -> Response:
    seconds = retry_after if retry_after and retry_after > 0 else DEFAULT_RETRY_AFTER
    return _error(503, message, **{"Retry-After": str(math.ceil(seconds))})


def _error(status: int, message: str, **headers: str) -> Response:
    response = _json(status, {"error": message})
    response.headers.update(headers)
    return response


def _json(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response
