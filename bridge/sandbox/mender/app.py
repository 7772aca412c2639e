"""Application factory of the Mender stand-in: state, conventions, the gateway's checks
(management JWT, device JWT, rate limits), fault injection and the admin routes
`/_sandbox/max_devices` and `/_sandbox/device_log`.
"""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask, Response, g, jsonify, request

from bridge.sandbox.faults import BYPASS, Faults, install
from bridge.sandbox.mender.authsets import resume
from bridge.sandbox.mender.crypto import load_or_create_signing_key
from bridge.sandbox.mender.routes_devauth import devices_api, management
from bridge.sandbox.mender.routes_device import deployments, device_inventory
from bridge.sandbox.mender.routes_inventory import inventory_v1, inventory_v2
from bridge.sandbox.mender.routes_useradm import useradm
from bridge.sandbox.mender.state import EXTENSION, SandboxState, state
from bridge.sandbox.mender.store import Store
from bridge.sandbox.mender.useradm import Useradm
from bridge.sandbox.mender.web import ApiError, install_conventions

DEFAULT_ADMIN_EMAIL = "admin@sandbox.local"
DEFAULT_ADMIN_PASSWORD = "sandbox-admin-password"  # noqa: S105 - a local sandbox's default
_OPEN_PATHS = ("/api/management/v1/useradm/auth/login",)
_DEVICE_PREFIX = "/api/devices/"


def create_app(
    data_dir: Path,
    *,
    admin_email: str = DEFAULT_ADMIN_EMAIL,
    admin_password: str = DEFAULT_ADMIN_PASSWORD,
    faults: Faults | None = None,
    max_devices: int = -1,
) -> Flask:
    """The stand-in's Flask app; state lives in `data_dir` (created if missing)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "mender.sqlite")
    users = Useradm(store, load_or_create_signing_key(data_dir / "jwt-signing-key.pem"))
    admin_id = users.ensure_user(admin_email, admin_password)

    app = Flask("bridge.sandbox.mender")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    sandbox = SandboxState(store, users, faults or Faults(), max_devices, admin_id)
    app.extensions[EXTENSION] = sandbox
    install_conventions(app)
    install(app, sandbox.faults)

    @app.before_request
    def _management_auth() -> None:
        # The gateway forward-auths every management route to useradm's verify, which also
        # applies useradm's rate limit.
        if request.path.startswith("/api/management/") and request.path not in _OPEN_PATHS:
            g.claims = state().useradm.verify(request.headers.get("Authorization"))
            if not request.environ.get(BYPASS):  # the launcher's own set-up is not counted
                state().limiter.check("management", str(g.claims["sub"]))

    @app.before_request
    def _device_call_arrived() -> None:
        if request.path.startswith(_DEVICE_PREFIX):
            g.arrived = time.time()

    @app.after_request
    def _record_device_call(response: Response) -> Response:
        if request.path.startswith(_DEVICE_PREFIX):
            state().record_device_call(g.get("arrived", time.time()), request.method,
                                       request.path, response.status_code, g.get("device_id"))
        return response

    @app.route("/_sandbox/max_devices", methods=["GET", "POST"])
    def _max_devices() -> Response:
        sandbox = state()
        if request.method == "POST":
            value = (request.get_json(force=True, silent=True) or {}).get("max_devices")
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ApiError(400, "max_devices must be an integer >= -1")
            sandbox.max_devices = value
        return jsonify(max_devices=sandbox.max_devices)

    @app.get("/_sandbox/device_log")
    def _device_log() -> Response:
        """The device API calls seen (arrival time, method, path, status, device id; newest
        last, at most 10,000), optionally of one device."""
        wanted = request.args.get("device_id")
        return jsonify([e for e in state().device_log()
                        if wanted is None or e["device_id"] == wanted])

    for blueprint in (management, devices_api, useradm, inventory_v1, inventory_v2,
                      device_inventory, deployments):
        app.register_blueprint(blueprint)
    resume(sandbox)
    return app
