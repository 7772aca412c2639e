"""Faults and server behaviours on demand for the stand-ins: latency, 5xx, 429 with Retry-After,
dropped connections, and the Mender stand-in's rate limit, decommissioning window, inventory
propagation delay and 4.1.3 preauthorization failure.

Settable at start (`Faults(...)`) and at run time (`POST /_sandbox/faults` with JSON). With
`latency_ms`, an answer leaves that long after its request arrived (processing included).
"""

from __future__ import annotations

import enum
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


class RateLimitAlgorithm(enum.StrEnum):
    # What deviceauth and useradm wire (pkg/redis ratelimit.go): a counter per window aligned
    # on multiples of the interval since the Unix epoch.
    FIXED_WINDOW = "fixed_window"
    # pkg/rate's in-memory limiter (golang.org/x/time/rate): quota per interval, burst quota.
    TOKEN_BUCKET = "token_bucket"  # noqa: S105 - a name, not a secret


class PreauthSetDelete(enum.StrEnum):
    DEVICE = "device"  # Mender 4.1.3: deleting a preauthorized auth set deletes its device
    LAST_SET = "last_set"  # Mender main (after 4.1.3): only when it was the device's last set


_FRACTIONS = ("error_rate", "rate_429", "drop_rate")
_NON_NEGATIVE = ("latency_ms", "retry_after", "decommission_delay_ms", "inventory_delay_ms",
                 "rate_limit_quota")


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0  # fraction of requests answered with one of error_statuses
    error_statuses: tuple[int, ...] = (500, 503)
    rate_429: float = 0.0  # fraction answered 429 with Retry-After
    retry_after: int = 1
    drop_rate: float = 0.0  # fraction whose connection is closed without an answer
    seed: int | None = None
    # Mender stand-in only. 0 = a decommissioned device is removed in the request itself.
    decommission_delay_ms: float = 0.0
    # Mender 4.1.3: a new device's preauthorization answers 500 after writing the device but
    # not its auth set.
    lose_authset_on_preauth: bool = False
    rate_limit_quota: int = 0  # requests per interval and subject; 0 = no rate limit
    rate_limit_interval_s: float = 60.0
    rate_limit_algorithm: RateLimitAlgorithm = RateLimitAlgorithm.FIXED_WINDOW
    inventory_delay_ms: float = 50.0  # deviceauth → inventory propagation (workflows)
    preauth_set_delete: PreauthSetDelete = PreauthSetDelete.DEVICE
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.update(self.snapshot())

    def update(self, values: dict[str, Any]) -> None:
        """Set the named fields, all or none: ValueError (or TypeError) if one is invalid."""
        if not isinstance(values, dict):
            raise TypeError("faults must be a JSON object")
        parsed = {f.name: _parse(f.name, f.default, values[f.name])
                  for f in fields(self) if not f.name.startswith("_") and f.name in values}
        with self._lock:
            for name, value in parsed.items():
                setattr(self, name, value)
            if "seed" in parsed and self.seed is not None:
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


def _parse(name: str, current: Any, value: Any) -> Any:
    """`value` converted to the type of the field's default `current`, within its range."""
    if isinstance(current, enum.Enum):
        return type(current)(value)
    if isinstance(current, bool):
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise ValueError(f"{name} must be true or false")
    if name == "error_statuses":
        return tuple(int(v) for v in value)
    if name == "seed":
        return None if value is None else int(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number")
    number: float = int(value) if isinstance(current, int) else float(value)
    if name in _FRACTIONS and not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")
    if name in _NON_NEGATIVE and number < 0:
        raise ValueError(f"{name} must not be negative")
    if name == "rate_limit_interval_s" and not number >= 0.001:
        raise ValueError(f"{name} must be at least 0.001")
    return number


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
        status = faults.error_status()
        body = jsonify(error="internal error" if status == 500 else "service unavailable",
                       request_id=_request_id())
        body.status_code = status
        return body

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
