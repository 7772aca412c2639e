"""SQLite persistence of the Mender stand-in: devices, auth sets, tokens, users and inventory.

One connection in WAL mode behind a lock: werkzeug starts a thread per connection, and
serialising in-process avoids SQLite's sleeping busy handler, which costs far more than the
lock. Every write is one transaction, so a restart loses nothing that was answered.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY, id_hash BLOB NOT NULL UNIQUE, identity TEXT NOT NULL,
  status TEXT NOT NULL, decommissioning INTEGER NOT NULL DEFAULT 0,
  created_ts TEXT NOT NULL, updated_ts TEXT NOT NULL, check_in_time TEXT);
CREATE INDEX IF NOT EXISTS devices_by_status ON devices (status, id);
CREATE TABLE IF NOT EXISTS auth_sets (
  id TEXT PRIMARY KEY, device_id TEXT NOT NULL, id_hash BLOB NOT NULL, pubkey TEXT NOT NULL,
  status TEXT NOT NULL, ts TEXT NOT NULL, UNIQUE (id_hash, pubkey));
CREATE INDEX IF NOT EXISTS auth_sets_by_device ON auth_sets (device_id);
CREATE TABLE IF NOT EXISTS device_tokens (
  jti TEXT PRIMARY KEY, device_id TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password TEXT NOT NULL,
  created_ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pats (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, created_ts TEXT NOT NULL,
  expiration_date TEXT, last_used TEXT, UNIQUE (user_id, name));
CREATE TABLE IF NOT EXISTS inv_devices (
  id TEXT PRIMARY KEY, created_ts TEXT NOT NULL, updated_ts TEXT NOT NULL, tags_etag TEXT);
CREATE TABLE IF NOT EXISTS inv_attributes (
  device_id TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
  description TEXT, ts TEXT, PRIMARY KEY (device_id, scope, name));
CREATE INDEX IF NOT EXISTS inv_attributes_by_value ON inv_attributes (scope, name, value);
"""



class BrokenStatus(Exception):
    """More than one accepted or preauthorized auth set: deviceauth's ErrDevStatusBroken."""


def now_ts() -> str:
    """RFC 3339 UTC with sub-second digits, as Go's time.Time marshals."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Tx:
    """Row access inside one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, args).fetchall())

    def run(self, sql: str, *args: Any) -> int:
        return self.conn.execute(sql, args).rowcount

    def device(self, device_id: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM devices WHERE id = ?", device_id)

    def device_by_hash(self, id_hash: bytes) -> sqlite3.Row | None:
        return self.one("SELECT * FROM devices WHERE id_hash = ?", id_hash)

    def auth_set(self, aid: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM auth_sets WHERE id = ?", aid)

    def auth_sets(self, device_id: str) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM auth_sets WHERE device_id = ? ORDER BY ts, id", device_id)

    def update_device(self, device_id: str, column: str, value: Any) -> None:
        # deviceauth's UpdateDevice sets updated_ts whatever it changes.
        assert column in ("status", "decommissioning", "check_in_time")
        self.run(f"UPDATE devices SET {column} = ?, updated_ts = ? WHERE id = ?",  # noqa: S608
                 value, now_ts(), device_id)

    def derived_status(self, device_id: str) -> str:
        """Device status from its auth sets as deviceauth's getDeviceStatus computes it:
        "noauth" without sets, BrokenStatus with two accepted or two preauthorized sets."""
        counts: dict[str, int] = {}
        for row in self.auth_sets(device_id):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        if not counts:
            return "noauth"
        if counts.get("accepted", 0) > 1 or counts.get("preauthorized", 0) > 1:
            raise BrokenStatus(device_id)
        for status in ("accepted", "preauthorized", "pending", "rejected"):
            if counts.get(status):
                return status
        raise BrokenStatus(device_id)

    def accepted_count(self) -> int:
        row = self.one("SELECT COUNT(*) FROM devices WHERE status = 'accepted'")
        return int(row[0]) if row else 0

    def insert_device(self, device_id: str, id_hash: bytes, identity: str, status: str) -> None:
        ts = now_ts()
        self.run("INSERT INTO devices (id, id_hash, identity, status, created_ts, updated_ts) "
                 "VALUES (?, ?, ?, ?, ?, ?)", device_id, id_hash, identity, status, ts, ts)

    def insert_auth_set(self, device_id: str, id_hash: bytes, pubkey: str, status: str) -> str:
        auth_id = str(uuid.uuid4())
        self.run("INSERT INTO auth_sets VALUES (?, ?, ?, ?, ?, ?)",
                 auth_id, device_id, id_hash, pubkey, status, now_ts())
        return auth_id

    def delete_device(self, device_id: str) -> None:
        """deviceauth's DeleteDevice: the device, its auth sets and its tokens."""
        for table, column in (("auth_sets", "device_id"), ("device_tokens", "device_id"),
                              ("devices", "id")):
            self.run(f"DELETE FROM {table} WHERE {column} = ?", device_id)  # noqa: S608


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._closed = False
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode stays consistent after a crash; only an OS crash may lose the
        # last commits, which a sandbox can afford for its request rate.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=OFF")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """A write transaction (or a consistent read): all or nothing."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock:
            yield Tx(self._conn)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()


def device_json(tx: Tx, row: sqlite3.Row, *, with_sets: bool = True) -> dict[str, Any]:
    """Device as deviceauth serializes it; `auth_sets` null when not loaded (the 409 body)."""
    identity = json.loads(row["identity"])
    out: dict[str, Any] = {
        "id": row["id"], "identity_data": identity, "status": row["status"],
        "decommissioning": bool(row["decommissioning"]), "created_ts": row["created_ts"],
        "updated_ts": row["updated_ts"], "auth_sets": None,
    }
    if with_sets:
        # device_id is json:"-" in deviceauth although the spec lists it.
        out["auth_sets"] = [{"id": s["id"], "identity_data": identity, "pubkey": s["pubkey"],
                             "ts": s["ts"], "status": s["status"]}
                            for s in tx.auth_sets(row["id"])]
    if row["check_in_time"]:
        out["check_in_time"] = row["check_in_time"]
    return out
