"""SQLite persistence of the registry stand-in: registries, devices, ClearBlade keys, audit queue.

One connection guarded by a lock (the werkzeug server is threaded); a device change and the
audit deliveries it causes are written in one transaction, so a restart loses neither.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registries (
    project TEXT NOT NULL, location TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (project, location, id));
CREATE TABLE IF NOT EXISTS devices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, num_id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL, location TEXT NOT NULL, registry TEXT NOT NULL, id TEXT NOT NULL,
    body TEXT NOT NULL, UNIQUE (project, location, registry, id));
CREATE TABLE IF NOT EXISTS clearblade_keys (
    system_key TEXT PRIMARY KEY, token TEXT NOT NULL,
    project TEXT NOT NULL, location TEXT NOT NULL, registry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS audit_due ON audit_queue (state, next_attempt);
"""

Device = dict[str, Any]
Delivery = tuple[str, bytes]


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def meta(self, name: str, default: str) -> str:
        """A persisted value, created with `default` the first time it is asked for."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
            if row:
                return str(row[0])
            db.execute("INSERT INTO meta VALUES (?, ?)", (name, default))
            return default

    def set_meta(self, name: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    # registries
    def add_registry(self, project: str, location: str, body: dict[str, Any]) -> bool:
        with self._tx() as db:
            try:
                db.execute("INSERT INTO registries VALUES (?, ?, ?, ?)",
                           (project, location, body["id"], json.dumps(body)))
            except sqlite3.IntegrityError:
                return False
            return True

    def registry(self, project: str, location: str, rid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM registries WHERE project=? AND location=? AND id=?",
                (project, location, rid)).fetchone()
        return json.loads(row[0]) if row else None

    def registries(self, project: str, location: str, after: str, limit: int
                   ) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM registries WHERE project=? AND location=? AND id>? "
                "ORDER BY id LIMIT ?", (project, location, after, limit)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete_registry(self, project: str, location: str, rid: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM registries WHERE project=? AND location=? AND id=?",
                       (project, location, rid))

    # devices
    def fresh_num_id(self) -> str:
        """A globally unique 16-digit numeric id, like the ones the real service hands out."""
        with self._lock:
            while True:
                candidate = str(secrets.randbelow(9 * 10**15) + 10**15)
                if not self._db.execute("SELECT 1 FROM devices WHERE num_id=?",
                                        (candidate,)).fetchone():
                    return candidate

    def insert_device(self, reg: Sequence[str], device: Device,
                      deliveries: Sequence[Delivery]) -> bool:
        with self._tx() as db:
            try:
                db.execute(
                    "INSERT INTO devices (num_id, project, location, registry, id, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (device["numId"], *reg, device["id"], json.dumps(device)))
            except sqlite3.IntegrityError:
                return False
            self._enqueue(db, deliveries)
            return True

    def device(self, reg: Sequence[str], key: str) -> Device | None:
        """By string id, or by numeric id (device ids must start with a letter)."""
        column = "num_id" if key.isdigit() else "id"
        with self._lock:
            row = self._db.execute(
                f"SELECT body FROM devices WHERE project=? AND location=? AND registry=? "  # noqa: S608
                f"AND {column}=?", (*reg, key)).fetchone()
        return json.loads(row[0]) if row else None

    def devices(self, reg: Sequence[str], after: int, limit: int) -> list[tuple[int, Device]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM devices WHERE project=? AND location=? AND registry=? "
                "AND seq>? ORDER BY seq LIMIT ?", (*reg, after, limit)).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def count_devices(self, reg: Sequence[str]) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM devices WHERE project=? AND location=? AND registry=?",
                tuple(reg)).fetchone()
        return int(row[0])

    def update_device(self, device: Device, deliveries: Sequence[Delivery] = ()) -> None:
        with self._tx() as db:
            db.execute("UPDATE devices SET body=? WHERE num_id=?",
                       (json.dumps(device), device["numId"]))
            self._enqueue(db, deliveries)

    def delete_device(self, num_id: str, deliveries: Sequence[Delivery]) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM devices WHERE num_id=?", (num_id,))
            self._enqueue(db, deliveries)

    # ClearBlade regional keys
    def clearblade_key(self, project: str, location: str, registry: str) -> tuple[str, str]:
        with self._tx() as db:
            row = db.execute(
                "SELECT system_key, token FROM clearblade_keys WHERE project=? AND location=? "
                "AND registry=?", (project, location, registry)).fetchone()
            if row:
                return str(row[0]), str(row[1])
            key, token = secrets.token_hex(12), secrets.token_urlsafe(24)
            db.execute("INSERT INTO clearblade_keys VALUES (?, ?, ?, ?, ?)",
                       (key, token, project, location, registry))
            return key, token

    def clearblade_registry(self, system_key: str) -> tuple[str, tuple[str, str, str]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT token, project, location, registry FROM clearblade_keys "
                "WHERE system_key=?", (system_key,)).fetchone()
        return (str(row[0]), (str(row[1]), str(row[2]), str(row[3]))) if row else None

    # audit queue
    @staticmethod
    def _enqueue(db: sqlite3.Connection, deliveries: Sequence[Delivery]) -> None:
        now = time.time()
        db.executemany("INSERT INTO audit_queue (endpoint, body, next_attempt) VALUES (?, ?, ?)",
                       [(endpoint, body, now) for endpoint, body in deliveries])

    def due(self, now: float, limit: int = 50) -> list[tuple[int, str, bytes, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, endpoint, body, attempts FROM audit_queue WHERE state='pending' "
                "AND next_attempt<=? ORDER BY next_attempt, id LIMIT ?", (now, limit)).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2]), int(r[3])) for r in rows]

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt) FROM audit_queue WHERE state='pending'").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def mark(self, item: int, state: str, attempts: int, next_attempt: float,
             error: str = "") -> None:
        with self._tx() as db:
            db.execute("UPDATE audit_queue SET state=?, attempts=?, next_attempt=?, "
                       "last_error=? WHERE id=?", (state, attempts, next_attempt, error, item))

    def audit_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM audit_queue GROUP BY state").fetchall()
            retrying = self._db.execute("SELECT COUNT(*) FROM audit_queue WHERE "
                                        "state='pending' AND attempts>0").fetchone()
        counts = {"pending": 0, "delivered": 0, "dead": 0}
        counts.update({str(r[0]): int(r[1]) for r in rows})
        counts["retrying"] = int(retrying[0])  # pending after a failed attempt
        return counts

    def close(self) -> None:
        with self._lock:
            self._db.close()
