"""Registry stand-in: Cloud IoT Core v1 REST, the device HTTP bridge, ClearBlade-style routes
and audit-log events (published to a Pub/Sub topic as a Logging sink does, and/or posted as push
envelopes to endpoints), persisted in `data_dir/registry.sqlite`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bridge.sandbox.faults import Faults, install
from bridge.sandbox.registry import clearblade_routes, google_routes
from bridge.sandbox.registry.audit import Deliverer
from bridge.sandbox.registry.resources import ApiFailure
from bridge.sandbox.registry.service import Service
from bridge.sandbox.registry.sink import TopicSink
from bridge.sandbox.registry.store import Store

__all__ = ["create_app"]


def create_app(
    data_dir: Path,
    *,
    audit_endpoints: Sequence[str] = (),
    faults: Faults | None = None,
    project: str = "sandbox-project",
    location: str = "us-central1",
    registries: Sequence[str] = (),
    audit_backoff: tuple[float, float] = (0.5, 30.0),
    audit_max_attempts: int = 8,
    audit_topic: str | None = None,
    pubsub_emulator_host: str | None = None,
) -> Flask:
    """The registry stand-in as a Flask app; `registries` are created in project/location if
    missing. With `audit_topic` (`projects/P/topics/T`), every audit entry is also published
    there, on the emulator at `pubsub_emulator_host` if given. `app.extensions
    ["registry_sandbox"]` holds the service (`.close()` stops delivery and the database)."""
    store = Store(Path(data_dir) / "registry.sqlite")
    sink = TopicSink(audit_topic, pubsub_emulator_host) if audit_topic else None
    deliverer = Deliverer(store, audit_endpoints, min_backoff=audit_backoff[0],
                          max_backoff=audit_backoff[1], max_attempts=audit_max_attempts,
                          sink=sink)
    service = Service(store, deliverer)
    for rid in registries:
        if store.registry(project, location, rid) is None:
            service.create_registry(project, location, {"id": rid})
    admin_key = store.meta("clearblade_system_key", secrets.token_hex(12))
    admin_token = store.meta("clearblade_token", secrets.token_urlsafe(24))

    app = Flask("bridge.sandbox.registry")
    app.extensions["registry_sandbox"] = service
    install(app, faults or Faults())
    app.register_blueprint(google_routes.blueprint(service))
    app.register_blueprint(clearblade_routes.blueprint(service, admin_key, admin_token, project))

    @app.after_request
    def _google_error_shape(response: Response) -> Response:
        # The shared fault hook answers {"error": "text"}; Google clients expect the error
        # object (google-api-core fails with AttributeError on a string).
        if response.status_code >= 400 and response.is_json:
            body = response.get_json(silent=True)
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                failure = ApiFailure(response.status_code, body["error"])
                response.set_data(json.dumps(failure.body()))
        return response

    @app.errorhandler(ApiFailure)
    def _api_failure(exc: ApiFailure) -> tuple[Response, int]:
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        failure = ApiFailure(exc.code or 500, exc.description or exc.name)
        return jsonify(failure.body()), failure.status

    @app.route("/_sandbox/audit-endpoints", methods=["GET", "POST"])
    def _audit_endpoints() -> Response | tuple[Response, int]:
        if request.method == "POST":
            body = request.get_json(silent=True, force=True)
            endpoints = body.get("endpoints") if isinstance(body, dict) else None
            if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
                return jsonify(error='expected {"endpoints": ["http://..."]}'), 400
            deliverer.set_endpoints(endpoints)
        return jsonify(endpoints=deliverer.endpoints)

    @app.route("/_sandbox/audit-status")
    def _audit_status() -> Response:
        return jsonify(deliverer.status())

    @app.route("/_sandbox/clearblade-service-account")
    def _service_account() -> Response:
        account: dict[str, Any] = {"systemKey": admin_key, "token": admin_token,
                                   "url": request.host_url.rstrip("/"), "project": project}
        return jsonify(account)

    return app
