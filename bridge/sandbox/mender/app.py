"""Application factory of the Mender stand-in: state, conventions, authentication gate,
fault injection and the admin route `/_sandbox/max_devices`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, g, jsonify, request

from bridge.sandbox.faults import Faults, install
from bridge.sandbox.mender.crypto import load_or_create_signing_key
from bridge.sandbox.mender.routes_devauth import devices_api, management
from bridge.sandbox.mender.routes_useradm import inventory, useradm
from bridge.sandbox.mender.state import EXTENSION, SandboxState, state
from bridge.sandbox.mender.store import Store
from bridge.sandbox.mender.useradm import Useradm
from bridge.sandbox.mender.web import ApiError, install_conventions

DEFAULT_ADMIN_EMAIL = "admin@sandbox.local"
DEFAULT_ADMIN_PASSWORD = "sandbox-admin-password"  # noqa: S105 - a local sandbox's default
_OPEN_PATHS = ("/api/management/v1/useradm/auth/login",)


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
    app.extensions[EXTENSION] = SandboxState(store, users, faults or Faults(), max_devices,
                                             admin_id)
    install_conventions(app)
    install(app, app.extensions[EXTENSION].faults)

    @app.before_request
    def _management_auth() -> None:
        # The gateway forward-auths every management route to useradm's verify.
        if request.path.startswith("/api/management/") and request.path not in _OPEN_PATHS:
            g.claims = state().useradm.verify(request.headers.get("Authorization"))

    @app.route("/_sandbox/max_devices", methods=["GET", "POST"])
    def _max_devices() -> Response:
        sandbox = state()
        if request.method == "POST":
            value = (request.get_json(force=True, silent=True) or {}).get("max_devices")
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ApiError(400, "max_devices must be an integer >= -1")
            sandbox.max_devices = value
        return jsonify(max_devices=sandbox.max_devices)

    for blueprint in (management, devices_api, useradm, inventory):
        app.register_blueprint(blueprint)
    return app
