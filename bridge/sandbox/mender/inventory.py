"""inventory's records: one per device, with the identity-scope attributes and `status` that
deviceauth's workflows push, the tags (with their ETag) and the attributes a device reports.

Jobs (`identity_job`, `status_job`) are what deviceauth hands to the workflows
service; the rest reads and writes attributes the way inventory's store does.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.sandbox.mender import canonical
from bridge.sandbox.mender.store import Tx, now_ts
from bridge.sandbox.mender.web import ApiError
from bridge.sandbox.mender.workflows import Job

LIMIT_TAGS = 20  # inventory's limit_tags default
LIMIT_ATTRIBUTES = 100  # inventory's limit_attributes default (inventory scope)
NOT_FOUND = "Device not found"


@dataclass(frozen=True)
class Attribute:
    name: str
    value: Any
    description: str | None = None


def valid_value(value: Any) -> bool:
    """inventory's validateDeviceAttrVal: a string, a number, or an array of one of them."""
    def scalar(v: Any) -> bool:
        return isinstance(v, str | int | float) and not isinstance(v, bool)
    if scalar(value):
        return True
    return isinstance(value, list) and (
        not value or all(isinstance(v, str) for v in value)
        or all(scalar(v) and not isinstance(v, str) for v in value))


def parse_attributes(body: bytes) -> list[Attribute]:
    """A JSON array of {name, value, description?}: decoded and validated as inventory's
    model.DeviceAttribute, or 400."""
    prefix = "failed to decode request body"
    try:
        data = canonical.loads(body) if body.strip() else None
    except canonical.JsonError as exc:
        raise ApiError(400, f"{prefix}: {exc}") from None
    if data is None:
        raise ApiError(400, f"{prefix}: EOF")
    if not isinstance(data, list) or not all(isinstance(a, dict) for a in data):
        raise ApiError(400, f"{prefix}: json: cannot unmarshal {canonical.go_type(data)} "
                            "into Go value of type []model.DeviceAttribute")
    return [_attribute(item) for item in data]


def _attribute(item: dict[str, Any]) -> Attribute:
    name, description = item.get("name"), item.get("description")
    for key, value in (("name", name), ("description", description),
                       ("scope", item.get("scope"))):
        if value is not None and not isinstance(value, str):
            raise ApiError(400, "failed to decode request body: json: cannot unmarshal "
                                f"{canonical.go_type(value)} into Go struct field "
                                f"DeviceAttribute.{key} of type string")
    problems = []
    if not name:
        problems.append("name: cannot be blank")
    elif len(name) > 1024:
        problems.append("name: the length must be between 1 and 1024")
    if not valid_value(item.get("value")):
        problems.append("value: supported types are string, float64, and arrays thereof")
    if problems:
        raise ApiError(400, "; ".join(problems) + ".")
    assert isinstance(name, str)
    return Attribute(name, item["value"], description)


def _updated(tx: Tx, device_id: str) -> None:
    """The record, created if missing, with its updated_ts set to now."""
    ts = now_ts()
    tx.run("INSERT INTO inv_devices VALUES (?, ?, ?, NULL) ON CONFLICT (id) "
           "DO UPDATE SET updated_ts = excluded.updated_ts", device_id, ts, ts)


def _put(tx: Tx, device_id: str, scope: str, attr: Attribute, ts: str | None = None) -> None:
    # An upsert keeps the row (and so the attribute's place in the record's list).
    tx.run("INSERT INTO inv_attributes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
           "(device_id, scope, name) DO UPDATE SET value = excluded.value, "
           "description = excluded.description, ts = excluded.ts",
           device_id, scope, attr.name, canonical.dumps(attr.value), attr.description, ts)


def identity_job(device_id: str, identity: dict[str, Any]) -> Job:
    """update_device_inventory: the identity attributes (`status` excluded, deviceauth's
    setDeviceIdentity); inventory refuses the whole update if one value is not valid.

    A job for a device deviceauth no longer has is dropped (here and in `status_job`), so a
    late job does not bring back the record of a decommissioned device."""
    attrs = [Attribute(k, v) for k, v in identity.items() if k != "status"]

    def run(tx: Tx) -> None:
        if not all(valid_value(a.value) for a in attrs) or tx.device(device_id) is None:
            return
        _updated(tx, device_id)
        for attr in attrs:
            _put(tx, device_id, "identity", attr)
    return run


def status_job(device_id: str, status: str) -> Job:
    """update_device_status: the identity-scope `status`, or the record's removal when the
    status is "decommissioned" (deviceauth's DeleteAuthSet of a preauthorized set)."""
    def run(tx: Tx) -> None:
        if status == "decommissioned":
            delete(tx, device_id)
            return
        if tx.device(device_id) is None:
            return  # removed since: the stand-in drops a job for a device that is gone
        _updated(tx, device_id)
        _put(tx, device_id, "identity", Attribute("status", status))
    return run


def delete(tx: Tx, device_id: str) -> None:
    tx.run("DELETE FROM inv_attributes WHERE device_id = ?", device_id)
    tx.run("DELETE FROM inv_devices WHERE id = ?", device_id)


def device_json(tx: Tx, row: sqlite3.Row) -> dict[str, Any]:
    """A record as inventory serializes it: attributes (system ones included), updated_ts."""
    attributes: list[dict[str, Any]] = []
    for attr in tx.all("SELECT * FROM inv_attributes WHERE device_id = ? ORDER BY rowid",
                       row["id"]):
        item: dict[str, Any] = {"name": attr["name"], "value": json.loads(attr["value"]),
                                "scope": attr["scope"]}
        if attr["description"] is not None:
            item["description"] = attr["description"]
        if attr["ts"]:
            item["timestamp"] = attr["ts"]
        attributes.append(item)
    attributes += [{"name": "created_ts", "value": row["created_ts"], "scope": "system"},
                   {"name": "updated_ts", "value": row["updated_ts"], "scope": "system"}]
    return {"id": row["id"], "attributes": attributes, "updated_ts": row["updated_ts"]}


def get(tx: Tx, device_id: str) -> tuple[dict[str, Any], str | None]:
    """(record, tags ETag or None), or 404."""
    row = tx.one("SELECT * FROM inv_devices WHERE id = ?", device_id)
    if row is None:
        raise ApiError(404, NOT_FOUND)
    return device_json(tx, row), row["tags_etag"]


def _current(tx: Tx, device_id: str, scope: str) -> dict[str, str]:
    return {r["name"]: r["value"] for r in tx.all(
        "SELECT name, value FROM inv_attributes WHERE device_id = ? AND scope = ?",
        device_id, scope)}


def write(tx: Tx, device_id: str, scope: str, attrs: Sequence[Attribute], *, replace: bool,
          etag: str = "") -> None:
    """PUT (replace) or PATCH (upsert) of one scope's attributes, as inventory's
    ReplaceAttributes and UpsertAttributesWithUpdated do: limits (400), the tags' ETag (412),
    no record created for tags, a new ETag on every tags write."""
    limit = LIMIT_TAGS if scope == "tags" else LIMIT_ATTRIBUTES
    row = tx.one("SELECT * FROM inv_devices WHERE id = ?", device_id)
    current = _current(tx, device_id, scope) if row is not None else {}
    names = {a.name for a in attrs}
    count = len(attrs) if replace else len(set(current) | names)
    if count > limit and (replace or row is not None):
        raise ApiError(400, "the number of attributes in the scope is above the limit")
    remove = [n for n in current if n not in names] if replace else []
    if not _needs_write(row, scope, current, attrs, remove):
        return
    if scope == "tags" and (row is None or (etag and row["tags_etag"] != etag)):
        if etag:
            raise ApiError(412, "ETag does not match")
        return
    if scope != "tags":  # tags change the ETag, not updated_ts
        _updated(tx, device_id)
    ts = now_ts() if scope == "tags" else None
    for attr in attrs:
        _put(tx, device_id, scope, attr, ts)
    for name in remove:
        tx.run("DELETE FROM inv_attributes WHERE device_id = ? AND scope = ? AND name = ?",
               device_id, scope, name)
    if scope == "tags":
        tx.run("UPDATE inv_devices SET tags_etag = ? WHERE id = ?", str(uuid.uuid4()),
               device_id)


def _needs_write(row: sqlite3.Row | None, scope: str, current: dict[str, str],
                 attrs: Sequence[Attribute], remove: Sequence[str]) -> bool:
    # inventory's needsUpsert: skips a write that changes nothing, but writes at least once
    # a calendar day; tags always count as a change.
    if row is None or row["updated_ts"][:10] != dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"):
        return True
    for attr in attrs:
        if scope != "inventory" or current.get(attr.name) != canonical.dumps(attr.value):
            return True
    return bool(remove)
