"""Mender's rate limit on authenticated requests: `quota` requests per `interval` for each
caller, keyed on the JWT subject (a Personal Access Token has its user's subject, so it shares
the user's bucket), management and device APIs in separate buckets (useradm and deviceauth each
limit the requests they verify for the gateway).

Over the limit: 429, `Retry-After` in whole seconds (rounded up) until a request would pass,
and `{"error": "too many requests", "request_id": ...}` (pkg/rate limit_http.go).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from bridge.sandbox.faults import Faults, RateLimitAlgorithm
from bridge.sandbox.mender.web import ApiError


@dataclass(frozen=True)
class _Settings:
    quota: int
    interval_s: float
    algorithm: RateLimitAlgorithm


class RateLimiter:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._lock = threading.Lock()
        self._settings: _Settings | None = None
        # (api, subject) → (window number, count) or (tokens, time of the last refill)
        self._state: dict[tuple[str, str], tuple[float, float]] = {}

    def check(self, api: str, subject: str) -> None:
        """Count one request of `subject` on `api`; ApiError 429 when over the limit."""
        quota = self._faults.rate_limit_quota
        if quota <= 0:
            return
        settings = _Settings(quota, self._faults.rate_limit_interval_s,
                             self._faults.rate_limit_algorithm)
        with self._lock:
            if settings != self._settings:
                # New limits start with full buckets, as a restarted server would.
                self._settings, self._state = settings, {}
            if settings.algorithm is RateLimitAlgorithm.TOKEN_BUCKET:
                delay = self._take_token(settings, (api, subject))
            else:
                delay = self._count_in_window(settings, (api, subject))
        if delay > 0:
            raise ApiError(429, "too many requests",
                           headers={"Retry-After": str(math.ceil(delay))})

    def _count_in_window(self, settings: _Settings, key: tuple[str, str]) -> float:
        # pkg/redis ratelimit.go: windows are multiples of the interval since the Unix epoch;
        # every request counts, a refused one too; past the quota the caller waits for the
        # next window.
        interval_ms = max(1, round(settings.interval_s * 1000))
        now_ms = time.time() * 1000
        window = now_ms // interval_ms
        seen, count = self._state.get(key, (window, 0))
        count = count + 1 if seen == window else 1
        self._state[key] = (window, count)
        if count <= settings.quota:
            return 0.0
        return ((window + 1) * interval_ms - now_ms) / 1000

    def _take_token(self, settings: _Settings, key: tuple[str, str]) -> float:
        # golang.org/x/time/rate with burst = quota: a refused request takes no token.
        rate = settings.quota / settings.interval_s
        now = time.monotonic()
        tokens, last = self._state.get(key, (float(settings.quota), now))
        tokens = min(float(settings.quota), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1.0 - tokens) / rate
