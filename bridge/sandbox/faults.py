"""Faults on demand for the stand-ins: latency, 5xx, 429 with Retry-After, dropped connections.

Settable at start (`Faults(...)`) and at run time (`POST /_sandbox/faults` with JSON). With
`latency_ms`, an answer leaves that long after its request arrived (processing included).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

from flask import Flask, Response, abort, g, jsonify, request

ADMIN_PATH = "/_sandbox/faults"
# WSGI environ key (unreachable from HTTP) that exempts an in-process call from faults, e.g. a
# launcher setting up its own admin token through a test client.
BYPASS = "sandbox.no_faults"


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0  # fraction of requests answered with one of error_statuses
    error_statuses: tuple[int, ...] = (500, 503)
    rate_429: float = 0.0  # fraction answered 429 with Retry-After
    retry_after: int = 1
    drop_rate: float = 0.0  # fraction whose connection is closed without an answer
    seed: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.update({})

    def update(self, values: dict[str, Any]) -> None:
        with self._lock:
            for f in fields(self):
                if f.name.startswith("_") or f.name not in values:
                    continue
                value = values[f.name]
                if f.name == "error_statuses":
                    value = tuple(int(v) for v in value)
                elif f.name == "seed":
                    value = None if value is None else int(value)
                elif f.name in ("retry_after",):
                    value = int(value)
                else:
                    value = float(value)
                    if f.name != "latency_ms" and not 0.0 <= value <= 1.0:
                        raise ValueError(f"{f.name} must be between 0 and 1")
                setattr(self, f.name, value)
            if self.seed is not None:
                self._rng.seed(self.seed)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self)
                    if not f.name.startswith("_")}

    def draw(self) -> tuple[float, str | None]:
        """(latency seconds, fault) for one request: fault is None, 'error', '429' or 'drop'."""
        with self._lock:
            roll = self._rng.random()
            fault = None
            for name, rate in (("drop", self.drop_rate), ("429", self.rate_429),
                               ("error", self.error_rate)):
                if roll < rate:
                    fault = name
                    break
                roll -= rate
            return self.latency_ms / 1000.0, fault

    def error_status(self) -> int:
        with self._lock:
            return self._rng.choice(self.error_statuses) if self.error_statuses else 500


def _request_id() -> str:
    # Set by the Mender stand-in's conventions hook, which runs before this one.
    return str(getattr(g, "request_id", ""))


def install(app: Flask, faults: Faults) -> None:
    """Add the fault hook (skipping the admin route) and the admin route to `app`."""

    @app.before_request
    def _inject() -> Response | None:
        if request.path.startswith("/_sandbox/") or request.environ.get(BYPASS):
            return None
        delay, fault = faults.draw()
        if fault is None:
            # Answered `latency_ms` after the request arrived, the stand-in's own processing
            # included, like a remote server's round trip (see _hold).
            g.fault_answer_at = time.monotonic() + delay
            return None
        if delay:
            time.sleep(delay)
        if fault == "drop":
            sock = request.environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
            abort(500)
        if fault == "429":
            body = jsonify(error="too many requests", request_id=_request_id())
            body.status_code = 429
            body.headers["Retry-After"] = str(faults.retry_after)
            return body
        if fault == "error":
            status = faults.error_status()
            body = jsonify(error="internal error" if status == 500 else "service unavailable",
                           request_id=_request_id())
            body.status_code = status
            return body
        return None

    @app.after_request
    def _hold(response: Response) -> Response:
        answer_at = g.pop("fault_answer_at", None)
        if answer_at is not None:
            remaining = answer_at - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        return response

    @app.route(ADMIN_PATH, methods=["GET", "POST"])
    def _faults_admin() -> Response:
        if request.method == "POST":
            try:
                faults.update(request.get_json(force=True) or {})
            except (TypeError, ValueError) as exc:
                response = jsonify(error=str(exc))
                response.status_code = 400
                return response
        return jsonify(faults.snapshot())
