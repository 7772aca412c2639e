"""The device APIs Debian's `mender` 3.4 client calls once authenticated: its inventory
(`PUT`/`PATCH /api/devices/v1/inventory/device/attributes`) and its update check (deployments
`POST /api/devices/v2/.../deployments/next`, or `GET` on v1), which always finds no update.

Every call passes the gateway's check first: deviceauth verifies the device JWT (401 for a
rejected, removed or decommissioning device) and applies the device rate limit.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from bridge.sandbox.mender import inventory
from bridge.sandbox.mender.devauth import verify_device_token
from bridge.sandbox.mender.state import state
from bridge.sandbox.mender.web import (
    ApiError,
    empty_response,
    json_body,
    raw_body,
    require_json,
)

device_inventory = Blueprint("device_inventory", __name__,
                             url_prefix="/api/devices/v1/inventory")
deployments = Blueprint("device_deployments", __name__, url_prefix="/api/devices")
NEXT = "/deployments/device/deployments/next"


def _gate() -> None:
    sandbox = state()
    g.device_id = verify_device_token(sandbox, request.headers.get("Authorization"))
    sandbox.limiter.check("devices", g.device_id)


device_inventory.before_request(_gate)
deployments.before_request(_gate)


@device_inventory.route("/device/attributes", methods=["PUT", "PATCH"])
def attributes() -> Response:
    require_json()
    attrs = inventory.parse_attributes(raw_body())
    with state().store.tx() as tx:
        inventory.write(tx, g.device_id, "inventory", attrs, replace=request.method == "PUT")
    return empty_response(200)


@deployments.get("/v1" + NEXT)
def next_deployment_v1() -> Response:
    _check_provides({k: request.args.get(k, "") for k in ("artifact_name", "device_type")})
    return empty_response(204)


@deployments.post("/v2" + NEXT)
def next_deployment_v2() -> Response:
    require_json()
    data = json_body("invalid schema")
    provides = data.get("device_provides") if isinstance(data, dict) else None
    if not isinstance(provides, dict):
        raise ApiError(400, "invalid schema: device_provides must be an object")
    _check_provides(provides)
    return empty_response(204)


def _check_provides(provides: dict[str, Any]) -> None:
    blank = [k for k in ("artifact_name", "device_type") if not provides.get(k)]
    if blank:
        raise ApiError(400, "; ".join(f"{k}: cannot be blank" for k in blank) + ".")
