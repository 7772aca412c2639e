"""inventory's management API: device records (v1 list and get, with the tags' `ETag`), tags
(`PUT`/`PATCH …/devices/{id}/tags` with `If-Match`) and the v2 filter search.

Records follow deviceauth through workflow jobs, so they lag behind it by the stand-in's
`inventory_delay_ms`, as on a real server.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from bridge.sandbox.mender import canonical, inventory
from bridge.sandbox.mender.state import state
from bridge.sandbox.mender.store import Tx
from bridge.sandbox.mender.web import (
    PER_PAGE_DEFAULT,
    PER_PAGE_MAX,
    ApiError,
    empty_response,
    json_object,
    link_header,
    offset,
    paging,
    raw_body,
    require_json,
)

inventory_v1 = Blueprint("inventory_v1", __name__, url_prefix="/api/management/v1/inventory")
inventory_v2 = Blueprint("inventory_v2", __name__, url_prefix="/api/management/v2/inventory")

OPERATORS = ("$eq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$ltne", "$ne", "$exists",
             "$regex")
SCOPES = ("system", "identity", "inventory", "monitor", "tags")
_KNOWN_PARAMS = ("page", "per_page", "sort", "has_group", "group")


@inventory_v1.get("/devices/<device_id>")
def get_device(device_id: str) -> Response:
    with state().store.read() as tx:
        record, etag = inventory.get(tx, device_id)
    response = jsonify(record)
    if etag:
        response.headers["ETag"] = etag  # inventory sends the bare UUID, unquoted
    return response


@inventory_v1.route("/devices/<device_id>/tags", methods=["PUT", "PATCH"])
def tags(device_id: str) -> Response:
    require_json()
    attrs = inventory.parse_attributes(raw_body())
    with state().store.tx() as tx:
        inventory.write(tx, device_id, "tags", attrs, replace=request.method == "PUT",
                        etag=request.headers.get("If-Match", ""))
    return empty_response(200)


@inventory_v1.get("/devices")
def list_devices() -> Response:
    """`scope/name=value` filters (scope inventory when none is given), equality only."""
    page, per_page = paging()
    conditions = []
    for name, value in request.args.items():
        if name in _KNOWN_PARAMS:
            continue
        scope, _, attribute = name.rpartition("/")
        value = value.removeprefix("eq:")
        conditions.append(_match(scope or "inventory", attribute, "$eq", [value]))
    if request.args.get("group") or request.args.get("has_group") == "true":
        conditions.append(("0", []))  # the stand-in has no groups
    return _page(conditions, page, per_page, links=True)


@inventory_v2.post("/filters/search")
def search() -> Response:
    require_json()
    data = json_object("failed to decode request body")
    # inventory's parseSearchParams: a page or per_page below 1 means the default.
    page, per_page = (_positive(data.get(k), default)
                      for k, default in (("page", 1), ("per_page", PER_PAGE_DEFAULT)))
    if per_page > PER_PAGE_MAX:
        raise ApiError(400, f'parameter "per_page" above limit (max: {PER_PAGE_MAX})')
    filters = data.get("filters") or []
    if not isinstance(filters, list):
        raise ApiError(400, "filters: must be an array")
    conditions = [_condition(item) for item in filters]
    ids = data.get("device_ids")
    if ids:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "device_ids: must be an array of strings")
        conditions.append((f"d.id IN ({','.join('?' * len(ids))})", list(ids)))
    return _page(conditions, page, per_page, links=False)


def _positive(value: Any, default: int) -> int:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, "failed to decode request body: page and per_page are integers")
    return value if isinstance(value, int) and value >= 1 else default


def _condition(item: Any) -> tuple[str, list[Any]]:
    if not isinstance(item, dict):
        raise ApiError(400, "filters: each filter must be an object")
    scope, name, op, value = (item.get(k) for k in ("scope", "attribute", "type", "value"))
    if scope not in SCOPES or not isinstance(name, str) or not name or op not in OPERATORS \
            or "value" not in item:
        raise ApiError(400, "filters: scope, attribute, type and value are required")
    if op == "$exists":
        if not isinstance(value, bool):
            raise ApiError(400, "filters: $exists expects a boolean value")
        return _match(scope, name, op, [], exists=value)
    if op not in ("$eq", "$in", "$ne", "$nin"):
        raise ApiError(400, "the sandbox supports only $eq, $in, $ne, $nin and $exists filters")
    values = value if op in ("$in", "$nin") else [value]
    if not isinstance(values, list) or not all(inventory.valid_value(v) for v in values):
        raise ApiError(400, f"filters: invalid value for {op}")
    return _match(scope, name, op, values)


def _match(scope: str, name: str, op: str, values: list[Any],
           exists: bool = True) -> tuple[str, list[Any]]:
    """An SQL condition on the record `d` (only placeholders are interpolated)."""
    negate = "NOT " if op in ("$ne", "$nin") or not exists else ""
    sql = (f"d.id {negate}IN (SELECT device_id FROM inv_attributes "  # noqa: S608
           "WHERE scope = ? AND name = ?")
    if op == "$exists":
        return sql + ")", [scope, name]
    marks = ",".join("?" * len(values))
    return f"{sql} AND value IN ({marks}))", [scope, name,
                                              *(canonical.dumps(v) for v in values)]


def _page(conditions: list[tuple[str, list[Any]]], page: int, per_page: int,
          links: bool) -> Response:
    clause = " AND ".join(["1", *(sql for sql, _ in conditions)])
    args = [a for _, values in conditions for a in values]
    with state().store.read() as tx:
        total = _count(tx, clause, args)
        rows = tx.all(f"SELECT * FROM inv_devices d WHERE {clause} ORDER BY d.id "  # noqa: S608
                      "LIMIT ? OFFSET ?", *args, per_page, offset(page, per_page))
        records = [inventory.device_json(tx, row) for row in rows]
    response = jsonify(records)
    response.headers["X-Total-Count"] = str(total)
    if links:
        response.headers["Link"] = link_header(page, per_page, page * per_page < total)
    return response


def _count(tx: Tx, clause: str, args: list[Any]) -> int:
    row = tx.one(f"SELECT COUNT(*) FROM inv_devices d WHERE {clause}", *args)  # noqa: S608
    return int(row[0]) if row else 0
