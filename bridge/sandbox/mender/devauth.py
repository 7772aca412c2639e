"""deviceauth's rules: preauthorization, device authentication requests, auth-set status
transitions, deletion and decommissioning (docs/mender-api-facts.md §1–§6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from bridge.sandbox.mender import canonical
from bridge.sandbox.mender.crypto import KeyDecodeError, normalize_pubkey, verify_signature
from bridge.sandbox.mender.store import Store, Tx, device_json, now_ts
from bridge.sandbox.mender.web import ApiError, offset

STATUSES = ("pending", "accepted", "rejected", "preauthorized", "noauth")
UNAUTHORIZED = "dev auth: unauthorized"


@dataclass(frozen=True)
class Granted:
    device_id: str
    auth_set_id: str


def _limit_reached(tx: Tx, max_devices: int) -> bool:
    # main: -1 = unlimited, 0 = no device may be accepted (facts §5, §11).
    return max_devices >= 0 and tx.accepted_count() >= max_devices


def preauthorize(store: Store, identity: dict[str, Any], pubkey: str,
                 force: bool) -> tuple[str, dict[str, Any] | None]:
    """(id for Location, None) → 201; ("", device) → 409 for a known identity without force."""
    text = canonical.dumps(identity)
    id_hash = canonical.identity_hash(identity)
    new_id = str(uuid.uuid4())
    with store.tx() as tx:
        existing = tx.device_by_hash(id_hash)
        if existing is None:
            tx.insert_device(new_id, id_hash, text, "preauthorized")
            tx.run("INSERT INTO auth_sets VALUES (?, ?, ?, ?, 'preauthorized', ?)",
                   str(uuid.uuid4()), new_id, id_hash, pubkey, now_ts())
            return new_id, None
        if not force:
            return "", device_json(tx, existing, with_sets=False)
        # UpsertAuthSetStatus: flips an existing set with this key, whatever its status, and
        # (FIXME in deviceauth) leaves the device status as it was.
        changed = tx.run("UPDATE auth_sets SET status = 'preauthorized' "
                         "WHERE id_hash = ? AND pubkey = ?", id_hash, pubkey)
        if not changed:
            tx.run("INSERT INTO auth_sets VALUES (?, ?, ?, ?, 'preauthorized', ?)",
                   str(uuid.uuid4()), existing["id"], id_hash, pubkey, now_ts())
        # Quirk kept: Location names a fresh id, not the existing device.
        return new_id, None


def parse_auth_request(body: bytes) -> tuple[dict[str, Any], str, bytes]:
    """(identity, normalized pubkey, identity hash) of an auth request, or 400."""
    try:
        data = canonical.loads(body)
    except canonical.JsonError as exc:
        raise ApiError(400, f"failed to decode auth request: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "failed to decode auth request: json: cannot unmarshal "
                            f"{canonical.go_type(data)} into Go value of type model.AuthReq")
    for field in ("id_data", "pubkey", "tenant_token"):
        if field in data and data[field] is not None and not isinstance(data[field], str):
            raise ApiError(400, f"failed to decode auth request: json: cannot unmarshal "
                                f"{canonical.go_type(data[field])} into Go struct field "
                                f"AuthReq.{field} of type string")
    if not data.get("id_data"):
        raise ApiError(400, "invalid auth request: id_data must be provided")
    if not data.get("pubkey"):
        raise ApiError(400, "invalid auth request: pubkey must be provided")
    try:
        identity = canonical.loads(data["id_data"])
    except canonical.JsonError as exc:
        raise ApiError(400, f"invalid auth request: {exc}") from None
    if not isinstance(identity, dict) or not identity:
        raise ApiError(400, "invalid auth request: id_data must be a non-empty JSON object")
    try:
        pubkey = normalize_pubkey(data["pubkey"])
    except KeyDecodeError as exc:
        raise ApiError(400, f"invalid auth request: {exc}") from None
    return identity, pubkey, canonical.identity_hash(identity)


def authenticate(store: Store, body: bytes, signature: str | None,
                 max_devices: int) -> Granted:
    """The auth_requests rules of deviceauth (main): Granted, or ApiError 400/401."""
    identity, pubkey, id_hash = parse_auth_request(body)
    if not signature:
        raise ApiError(400, "missing request signature header")
    if not verify_signature(pubkey, signature, body):
        raise ApiError(401, "signature verification failed")
    with store.tx() as tx:
        granted = _authenticate(tx, identity, pubkey, id_hash, max_devices)
    # Raised after the commit: a first request's pending auth set must be kept.
    if granted is None:
        raise ApiError(401, UNAUTHORIZED)
    return granted


def _authenticate(tx: Tx, identity: dict[str, Any], pubkey: str, id_hash: bytes,
                  max_devices: int) -> Granted | None:
    # No `decommissioning` check: decommission() removes the device at once, so the flag is
    # never set here (the real server answers 401 while its workflow runs).
    device = tx.device_by_hash(id_hash)
    auth = tx.one("SELECT * FROM auth_sets WHERE id_hash = ? AND pubkey = ?", id_hash, pubkey)
    if device is None:
        device_id = str(uuid.uuid4())
        tx.insert_device(device_id, id_hash, canonical.dumps(identity), "pending")
        tx.run("INSERT INTO auth_sets VALUES (?, ?, ?, ?, 'pending', ?)",
               str(uuid.uuid4()), device_id, id_hash, pubkey, now_ts())
        return None
    if auth is None:
        # Same identity, another key: a new pending set; the device keeps its status weight.
        tx.run("INSERT INTO auth_sets VALUES (?, ?, ?, ?, 'pending', ?)",
               str(uuid.uuid4()), device["id"], id_hash, pubkey, now_ts())
        tx.recompute_status(device["id"])
        return None
    if auth["status"] == "preauthorized":
        if device["status"] != "accepted" and _limit_reached(tx, max_devices):
            raise ApiError(401, "unauthorized")
        tx.run("UPDATE auth_sets SET status = 'accepted' WHERE id = ?", auth["id"])
        tx.set_device_status(device["id"], "accepted")
    elif auth["status"] != "accepted":
        return None
    tx.run("UPDATE devices SET check_in_time = ? WHERE id = ?", now_ts(), device["id"])
    return Granted(device["id"], auth["id"])


def set_status(store: Store, device_id: str, aid: str, status: str, max_devices: int) -> None:
    """PUT …/auth/{aid}/status with the transitions of model.ValidateStatusTransition."""
    if status not in ("accepted", "rejected", "pending"):
        raise ApiError(400, "incorrect device status")
    with store.tx() as tx:
        auth = tx.auth_set(aid)
        if auth is None:
            raise ApiError(404, "authorization set not found")
        if auth["device_id"] != device_id:
            raise ApiError(400, "dev auth: dev ID and auth ID mismatch")
        current = auth["status"]
        if current == status:
            return
        allowed = {"accepted": ("pending", "rejected"), "rejected": ("pending", "accepted"),
                   "pending": ("accepted", "rejected", "pending")}[status]
        if current not in allowed:
            raise ApiError(400, "dev auth: bad request")
        device = tx.device(device_id)
        if status == "accepted":
            if device is not None and device["status"] != "accepted" \
                    and _limit_reached(tx, max_devices):
                raise ApiError(422, "maximum number of accepted devices reached")
            # Only one accepted set per device: the others are rejected.
            for other in tx.all("SELECT id FROM auth_sets WHERE device_id = ? AND "
                                "status = 'accepted' AND id != ?", device_id, aid):
                tx.run("UPDATE auth_sets SET status = 'rejected' WHERE id = ?", other["id"])
                tx.run("DELETE FROM device_tokens WHERE jti = ?", other["id"])
        if current == "accepted":
            tx.run("DELETE FROM device_tokens WHERE jti = ?", aid)
        tx.run("UPDATE auth_sets SET status = ? WHERE id = ?", status, aid)
        tx.recompute_status(device_id)


def get_status(store: Store, device_id: str, aid: str) -> str:
    with store.read() as tx:
        auth = tx.auth_set(aid)
        if auth is None or auth["device_id"] != device_id:
            raise ApiError(404, "authorization set not found")
        return str(auth["status"])


def delete_auth_set(store: Store, device_id: str, aid: str) -> None:
    with store.tx() as tx:
        # deviceauth looks the set up by aid only.
        auth = tx.auth_set(aid)
        if auth is None:
            raise ApiError(404, "", empty=True)
        owner = auth["device_id"]
        remaining = tx.auth_sets(owner)
        if auth["status"] == "preauthorized" and len(remaining) == 1:
            tx.delete_device(owner)
            return
        tx.run("DELETE FROM auth_sets WHERE id = ?", aid)
        tx.run("DELETE FROM device_tokens WHERE jti = ?", aid)
        tx.recompute_status(owner)


def decommission(store: Store, device_id: str) -> None:
    """Removed at once: the real server flags `decommissioning` and removes it asynchronously."""
    with store.tx() as tx:
        if tx.device(device_id) is None:
            raise ApiError(404, "", empty=True)
        tx.delete_device(device_id)


def list_devices(store: Store, statuses: list[str], ids: list[str], page: int,
                 per_page: int) -> tuple[list[dict[str, Any]], bool]:
    """One page ordered by (status, id), and whether another page follows."""
    for status in statuses:
        if status not in STATUSES:
            raise ApiError(400, "filter status must be one of: accepted, pending, rejected, "
                                "preauthorized or noauth")
    where, args = [], []
    if statuses:
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        args.extend(statuses)
    if ids:
        where.append(f"id IN ({','.join('?' * len(ids))})")
        args.extend(ids)
    # Only placeholders are interpolated; every value is bound.
    sql = "SELECT * FROM devices" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608
    sql += " ORDER BY status, id LIMIT ? OFFSET ?"
    with store.read() as tx:
        rows = tx.all(sql, *args, per_page + 1, offset(page, per_page))
        devices = [device_json(tx, row) for row in rows[:per_page]]
    return devices, len(rows) > per_page


def count(store: Store, status: str | None) -> int:
    if status is not None and status not in STATUSES:
        raise ApiError(400, "filter status must be one of: accepted, pending, rejected, "
                            "preauthorized or noauth")
    with store.read() as tx:
        if status is None:
            row = tx.one("SELECT COUNT(*) FROM devices")
        else:
            row = tx.one("SELECT COUNT(*) FROM devices WHERE status = ?", status)
    return int(row[0]) if row else 0


def get_device(store: Store, device_id: str) -> dict[str, Any]:
    with store.read() as tx:
        row = tx.device(device_id)
        if row is None:
            raise ApiError(404, "device not found")
        return device_json(tx, row)

