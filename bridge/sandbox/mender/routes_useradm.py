"""useradm (login, Personal Access Tokens) and the inventory identity search over HTTP."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from bridge.sandbox.mender import canonical
from bridge.sandbox.mender.state import state
from bridge.sandbox.mender.useradm import PAT_MAX_EXPIRATION
from bridge.sandbox.mender.web import (
    ApiError,
    empty_response,
    link_header,
    offset,
    paging,
    raw_body,
    require_json,
)

useradm = Blueprint("useradm", __name__, url_prefix="/api/management/v1/useradm")
inventory = Blueprint("inventory", __name__, url_prefix="/api/management/v2/inventory")

OPERATORS = ("$eq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$ltne", "$ne", "$exists",
             "$regex")
SCOPES = ("system", "identity", "inventory", "monitor", "tags")


def _json_object(prefix: str) -> dict[str, Any]:
    body = raw_body()
    if not body.strip():
        return {}
    try:
        data = canonical.loads(body)
    except canonical.JsonError as exc:
        raise ApiError(400, f"{prefix}: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"{prefix}: expected a JSON object")
    return data


@useradm.post("/auth/login")
def login() -> Response:
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise ApiError(401, "invalid or missing auth header")
    options = _json_object("failed to decode login options")
    no_expiry = options.get("no_expiry", False)
    if not isinstance(no_expiry, bool):
        raise ApiError(400, "failed to decode login options: no_expiry must be a boolean")
    token = state().useradm.login(auth.username, auth.password or "", no_expiry)
    return Response(token, status=200, content_type="application/jwt")


@useradm.post("/settings/tokens")
def create_token() -> Response:
    require_json()
    data = _json_object("failed to decode request body")
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


def _attribute_value(value: Any) -> Any:
    """Inventory values are strings, numbers or homogeneous arrays of them."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and value and (
            all(isinstance(v, str) for v in value)
            or all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        return value
    return canonical.dumps(value)


def _condition(item: Any) -> tuple[str, list[Any]]:
    if not isinstance(item, dict):
        raise ApiError(400, "filters: each filter must be an object")
    scope, name, op, value = (item.get(k) for k in ("scope", "attribute", "type", "value"))
    if scope not in SCOPES or not isinstance(name, str) or not name or op not in OPERATORS \
            or "value" not in item:
        raise ApiError(400, "filters: scope, attribute, type and value are required")
    if scope != "identity" or op not in ("$eq", "$in", "$ne", "$nin", "$exists"):
        raise ApiError(400, "the sandbox supports only identity-scope $eq, $in, $ne, $nin and "
                            "$exists filters")
    if op == "$exists":
        if not isinstance(value, bool):
            raise ApiError(400, "filters: $exists expects a boolean value")
        if name == "status":
            return ("1" if value else "0"), []
        negate = "" if value else "NOT "
        sql = f"d.id {negate}IN (SELECT device_id FROM attributes WHERE name = ?)"  # noqa: S608
        return sql, [name]
    values = value if op in ("$in", "$nin") else [value]
    if not isinstance(values, list) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise ApiError(400, f"filters: invalid value for {op}")
    negate = "NOT " if op in ("$ne", "$nin") else ""
    marks = ",".join("?" * len(values))
    if name == "status":
        return f"d.status {negate}IN ({marks})", [str(v) for v in values]
    sql = (f"d.id {negate}IN (SELECT device_id FROM attributes "  # noqa: S608
           f"WHERE name = ? AND value IN ({marks}))")
    return sql, [name, *(canonical.dumps(v) for v in values)]


@inventory.post("/filters/search")
def search() -> Response:
    require_json()
    data = _json_object("failed to parse request body")
    query = {k: str(data[k]) for k in ("page", "per_page") if k in data}
    page, per_page = paging(query)
    where, args = ["1"], []
    filters = data.get("filters") or []
    if not isinstance(filters, list):
        raise ApiError(400, "filters: must be an array")
    for item in filters:
        sql, values = _condition(item)
        where.append(sql)
        args.extend(values)
    ids = data.get("device_ids")
    if ids:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "device_ids: must be an array of strings")
        where.append(f"d.id IN ({','.join('?' * len(ids))})")
        args.extend(ids)
    clause = " AND ".join(where)
    with state().store.read() as tx:
        total_row = tx.one(f"SELECT COUNT(*) FROM devices d WHERE {clause}", *args)  # noqa: S608
        rows = tx.all(f"SELECT * FROM devices d WHERE {clause} ORDER BY d.id "  # noqa: S608
                      "LIMIT ? OFFSET ?", *args, per_page, offset(page, per_page))
    total = int(total_row[0]) if total_row else 0
    result = []
    for row in rows:
        identity = canonical.loads(row["identity"])
        attributes = [{"name": k, "scope": "identity", "value": _attribute_value(v)}
                      for k, v in sorted(identity.items()) if k != "status"]
        attributes.append({"name": "status", "scope": "identity", "value": row["status"]})
        result.append({"id": row["id"], "attributes": attributes,
                       "updated_ts": row["updated_ts"]})
    response = jsonify(result)
    response.headers["X-Total-Count"] = str(total)
    response.headers["Link"] = link_header(page, per_page, page * per_page < total)
    return response
