"""useradm over HTTP: login, users, Personal Access Tokens."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from bridge.sandbox.mender.state import state
from bridge.sandbox.mender.useradm import PASSWORD_MIN, PAT_MAX_EXPIRATION
from bridge.sandbox.mender.web import (
    ApiError,
    empty_response,
    json_object,
    require_json,
)

useradm = Blueprint("useradm", __name__, url_prefix="/api/management/v1/useradm")


@useradm.post("/auth/login")
def login() -> Response:
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise ApiError(401, "invalid or missing auth header")
    options = json_object("failed to decode login options")
    no_expiry = options.get("no_expiry", False)
    if not isinstance(no_expiry, bool):
        raise ApiError(400, "failed to decode login options: no_expiry must be a boolean")
    token = state().useradm.login(auth.username, auth.password or "", no_expiry)
    return Response(token, status=200, content_type="application/jwt")


@useradm.post("/users")
def create_user() -> Response:
    require_json()
    data = json_object("failed to decode request body")
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or "@" not in email:
        raise ApiError(400, "email: must be a valid email address.")
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise ApiError(422, "password too short")
    user_id = state().useradm.create_user(email, password)
    response = empty_response(201)
    response.headers["Location"] = "users/" + user_id
    response.autocorrect_location_header = False
    return response


@useradm.post("/settings/tokens")
def create_token() -> Response:
    require_json()
    data = json_object("failed to decode request body")
    name, expires_in = data.get("name"), data.get("expires_in", 0)
    if not isinstance(name, str) or not name:
        raise ApiError(400, "name: cannot be blank.")
    if len(name) >= 4096:
        raise ApiError(400, "name: the length must be no more than 4095.")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise ApiError(400, "expires_in: must be an integer.")
    if expires_in < 0:
        raise ApiError(400, "expires_in: must be no less than 0.")
    if expires_in > PAT_MAX_EXPIRATION:
        raise ApiError(400, f"expires_in: must be no greater than {PAT_MAX_EXPIRATION}.")
    token = state().useradm.create_pat(g.claims["sub"], name, expires_in)
    return Response(token, status=200, content_type="application/jwt")


@useradm.get("/settings/tokens")
def list_tokens() -> Response:
    return jsonify(state().useradm.list_pats(g.claims["sub"]))


@useradm.delete("/settings/tokens/<token_id>")
def delete_token(token_id: str) -> Response:
    state().useradm.delete_pat(g.claims["sub"], token_id)
    return empty_response(204)
