"""deviceauth over HTTP: the management v2 API and the device `auth_requests` endpoint."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from bridge.sandbox.mender import authsets, canonical, devauth, listing
from bridge.sandbox.mender.crypto import KeyDecodeError, normalize_pubkey
from bridge.sandbox.mender.state import state
from bridge.sandbox.mender.store import now_ts
from bridge.sandbox.mender.web import (
    ApiError,
    empty_response,
    json_body,
    json_object,
    link_header,
    paging,
    raw_body,
    require_json,
)

management = Blueprint("devauth_management", __name__,
                       url_prefix="/api/management/v2/devauth")
devices_api = Blueprint("devauth_devices", __name__, url_prefix="/api/devices/v1/authentication")

_PREFIX = "failed to decode preauth request: "


def _unmarshal(kind: str, field: str, go_type: str) -> ApiError:
    return ApiError(400, f"{_PREFIX}json: cannot unmarshal {kind} into Go struct field "
                         f"preAuthReq.{field} of type {go_type}")


def _preauth_request() -> tuple[dict[str, Any], str, bool]:
    body = raw_body()
    if not body.strip():
        raise ApiError(400, _PREFIX + "empty request body")
    try:
        data = canonical.loads(body)
    except canonical.JsonError as exc:
        raise ApiError(400, _PREFIX + str(exc)) from None
    if not isinstance(data, dict):
        raise ApiError(400, f"{_PREFIX}json: cannot unmarshal {canonical.go_type(data)} "
                            "into Go value of type http.preAuthReq")
    identity, pubkey, force = data.get("identity_data"), data.get("pubkey"), data.get("force")
    if identity is not None and not isinstance(identity, dict):
        raise _unmarshal(canonical.go_type(identity), "identity_data",
                         "map[string]interface {}")
    if pubkey is not None and not isinstance(pubkey, str):
        raise _unmarshal(canonical.go_type(pubkey), "pubkey", "string")
    if force is not None and not isinstance(force, bool):
        raise _unmarshal(canonical.go_type(force), "force", "bool")
    blank = [name for name, value in (("identity_data", identity), ("pubkey", pubkey))
             if not value]
    if blank:
        raise ApiError(400, _PREFIX + "; ".join(f"{b}: cannot be blank" for b in blank) + ".")
    assert isinstance(identity, dict) and isinstance(pubkey, str)
    try:
        return identity, normalize_pubkey(pubkey), bool(force)
    except KeyDecodeError as exc:
        raise ApiError(400, _PREFIX + str(exc)) from None


@management.post("/devices")
def preauthorize() -> Response:
    require_json()
    identity, pubkey, force = _preauth_request()
    device_id, conflict = devauth.preauthorize(state(), identity, pubkey, force)
    if conflict is not None:
        response = jsonify(conflict)
        response.status_code = 409
        return response
    response = empty_response(201)
    # A relative reference, exactly "devices/<id>" as deviceauth writes it.
    response.headers["Location"] = "devices/" + device_id
    response.autocorrect_location_header = False
    return response


def _page(statuses: list[str], ids: list[str]) -> Response:
    page, per_page = paging()
    devices, has_next = listing.list_devices(state().store, statuses, ids, page, per_page)
    response = jsonify(devices)
    response.headers["Link"] = link_header(page, per_page, has_next)
    return response


@management.get("/devices")
def list_devices() -> Response:
    return _page(request.args.getlist("status"), request.args.getlist("id"))


def _strings(value: Any, name: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ApiError(400, f"failed to decode device filter: {name} must be a string or "
                            "an array of strings")
    return items


@management.post("/devices/search")
def search_devices() -> Response:
    require_json(allow_form=True)
    if request.mimetype == "application/x-www-form-urlencoded":
        return _page(request.form.getlist("status"), request.form.getlist("id"))
    data = json_object("failed to decode device filter")
    return _page(_strings(data.get("status"), "status"), _strings(data.get("id"), "id"))


@management.get("/devices/count")
def count_devices() -> Response:
    return jsonify(count=listing.count(state().store, request.args.get("status")))


@management.get("/devices/<device_id>")
def get_device(device_id: str) -> Response:
    return jsonify(listing.get_device(state().store, device_id))


@management.delete("/devices/<device_id>")
def decommission(device_id: str) -> Response:
    authsets.decommission(state(), device_id)
    return empty_response(204)


@management.delete("/devices/<device_id>/auth/<aid>")
def delete_auth_set(device_id: str, aid: str) -> Response:
    authsets.delete_auth_set(state(), device_id, aid)
    return empty_response(204)


@management.put("/devices/<device_id>/auth/<aid>/status")
def put_status(device_id: str, aid: str) -> Response:
    require_json()
    data = json_body("failed to decode status data")
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(status, str):
        raise ApiError(400, "incorrect device status")
    authsets.set_status(state(), device_id, aid, status)
    return empty_response(204)


@management.get("/devices/<device_id>/auth/<aid>/status")
def get_status(device_id: str, aid: str) -> Response:
    return jsonify(status=authsets.get_status(state(), aid))


@management.delete("/tokens/<jti>")
def revoke_token(jti: str) -> Response:
    with state().store.tx() as tx:
        if not tx.run("DELETE FROM device_tokens WHERE jti = ?", jti):
            raise ApiError(404, "", empty=True)
    return empty_response(204)


@management.get("/limits/max_devices")
def max_devices() -> Response:
    return jsonify(limit=state().max_devices)


@devices_api.post("/auth_requests")
def auth_requests() -> Response:
    require_json()
    sandbox = state()
    granted = devauth.authenticate(sandbox, raw_body(), request.headers.get("X-MEN-Signature"))
    g.device_id = granted.device_id
    token, expires = sandbox.useradm.device_token(granted.device_id, granted.auth_set_id)
    with sandbox.store.tx() as tx:
        tx.run("INSERT OR REPLACE INTO device_tokens VALUES (?, ?, ?)",
               granted.auth_set_id, granted.device_id, expires)
        tx.update_device(granted.device_id, "check_in_time", now_ts())
    current_app.logger.debug("device %s authenticated", granted.device_id)
    return Response(token, status=200, content_type="application/jwt")
