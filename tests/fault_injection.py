"""Failure injection and call counting for the fakes of tests/fakes.py.

`fail_next(method, error=..., after=...)` fails chosen calls (before or after they take
effect); a seeded `fail_rate` fails a share of all calls with transient errors.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bridge.errors import ApiError, PermanentApiError, TransientApiError


def transient(service: str, method: str, status: int = 503) -> TransientApiError:
    return TransientApiError("injected failure", service=service, method=method, status=status)


def permanent(service: str, method: str, status: int = 400) -> PermanentApiError:
    return PermanentApiError("injected failure", service=service, method=method, status=status)


@dataclass
class Failure:
    method: str | None
    error: ApiError
    after: bool  # the call takes effect, then the error is raised (a 5xx after the write)
    times: int


class Faulty:
    """Call counting and failure injection shared by both fakes."""

    service = "fake"

    def __init__(self, *, fail_rate: float = 0.0, seed: int = 0) -> None:
        self.calls: Counter[str] = Counter()
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self._failures: list[Failure] = []
        self._lock = threading.RLock()

    def fail_next(self, method: str | None = None, *, error: ApiError | None = None,
                  times: int = 1, after: bool = False) -> None:
        """Make the next `times` calls of `method` (any method if None) raise `error`."""
        err = error or transient(self.service, method or "any")
        self._failures.append(Failure(method, err, after, times))

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _enter(self, method: str) -> Failure | None:
        """Count the call; raise a before-failure or return an after-failure."""
        self.calls[method] += 1
        for failure in self._failures:
            if failure.method in (None, method) and failure.times > 0:
                failure.times -= 1
                if not failure.after:
                    raise failure.error
                return failure
        if self.fail_rate and self._rng.random() < self.fail_rate:
            after = self._rng.random() < 0.5
            failure = Failure(method, transient(self.service, method, 503), after, 1)
            if not after:
                raise failure.error
            return failure
        return None

    def _call(self, method: str, body: Callable[[], object]) -> object:
        with self._lock:
            failure = self._enter(method)
            result = body()
            if failure is not None:
                raise failure.error
            return result
