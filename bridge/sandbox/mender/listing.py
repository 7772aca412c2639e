"""deviceauth's device listing, counting and lookup (management v2 reads)."""

from __future__ import annotations

from typing import Any

from bridge.sandbox.mender.store import Store, device_json
from bridge.sandbox.mender.web import ApiError, offset

STATUSES = ("pending", "accepted", "rejected", "preauthorized", "noauth")


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

