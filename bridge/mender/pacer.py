"""Client-side pacing learned from Mender's 429s: one Pacer per client (one JWT subject, one
bucket on the server), shared by every thread and run that uses the client.

Mender's limiter is a token bucket per subject (docs/mender-api.md#rate-limits); its 429 says
`Retry-After` in whole seconds, "1" for a 50 ms wait at 20 requests/s. So the rate is learned
from the 429s' timing: when a request is refused the server's bucket is empty, so of the
requests sent between two refused ones the server let through what it earned meanwhile —
passed / time between the two is the rate, to one request. The first 429 can only guess it
(what passed in the `Retry-After` before it); without even that, every request waits out the
`Retry-After`. Then requests leave spaced at the rate, a refused one after its `Retry-After`,
and while no 429 comes the pace creeps up (the less sure the rate, the faster), in case it
rose.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from bridge.ports import Pace

# Two 429s closer than this, or with fewer requests passed between them, say too little about
# the rate (requests in flight all refused in the same instant).
MIN_SPAN_S = 0.5
MIN_PASSED = 3
# What was sent longer ago than this is forgotten: the limit, or the share of it that other
# clients of the same user take, may have changed.
HORIZON_S = 120.0
# Without a 429 the pace rises: within RISE_S from the estimate to the most the span it was
# measured over allows (one more request passed), then every PROBE_EVERY_S by the estimate's
# own uncertainty (1 / the requests it counted), PROBE_STEP at least; after FORGET_S the
# limit is forgotten.
RISE_S = 2.0
PROBE_EVERY_S = 10.0
PROBE_STEP = 0.01
FORGET_S = 600.0
DEFAULT_HOLD_S = 1.0  # a 429 without a usable Retry-After
MIN_RATE = 1 / 60


class Pacer:
    """Spaces requests at the rate learned from the server's 429s; thread-safe. Each request
    calls `wait()` before it is sent, then `passed(sent)` or `limited(sent, retry_after)` with
    the time `wait()` returned."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_hold: float = 60.0) -> None:
        self._clock, self._sleep, self._max_hold = clock, sleep, max_hold
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._upper = 0.0
        self._step = PROBE_STEP
        self._next_slot = -math.inf
        self._hold_until = -math.inf
        self._passed = self._limited = 0
        self._last_limited = -math.inf
        self._refused: deque[float] = deque(maxlen=256)  # send times of refused requests
        self._sent_passed: list[float] = []  # send times of passed requests, sorted

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait before sending (0: at once)."""
        now = self._clock()
        with self._lock:
            rate = self._pace(now)
            slot = now
            if rate is not None:
                slot = max(now, self._next_slot)
                self._next_slot = slot + 1.0 / rate
            return max(slot, self._hold_until) - now

    def wait(self, after: float = 0.0) -> float:
        """Sleep `after` seconds (capped; a refused request's Retry-After), then until this
        request's slot; the time it is sent (for `passed`/`limited`)."""
        if after > 0:
            self._sleep(min(after, self._max_hold))
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return self._clock()

    def passed(self, sent: float) -> None:
        """An answer other than 429: the server counted the request sent at `sent`."""
        with self._lock:
            self._passed += 1
            bisect.insort(self._sent_passed, sent)
            if self._sent_passed[0] < sent - HORIZON_S:
                del self._sent_passed[:bisect.bisect_left(self._sent_passed, sent - HORIZON_S)]

    def limited(self, sent: float, retry_after: float | None) -> None:
        """A 429 for the request sent at `sent`: the rate is learned again. While none is known
        every request waits `retry_after` (capped); after, only the refused one does (`wait`'s
        `after`): the others keep the pace, so the server's bucket never fills unused."""
        now = self._clock()
        hold = DEFAULT_HOLD_S if retry_after is None else retry_after
        with self._lock:
            self._limited += 1
            self._last_limited = now
            while self._refused and self._refused[0] < sent - HORIZON_S:
                self._refused.popleft()
            learned = self._learn(sent, max(min(hold, self._max_hold), MIN_SPAN_S))
            if learned is not None:
                self._rate, self._upper, count = learned
                # Passed ± 1 of `count`: the fewer, the sooner the pace is tried higher.
                self._step = max(PROBE_STEP, 1.0 / count)
            elif self._rate is None:
                self._hold_until = max(self._hold_until, now + min(hold, self._max_hold))
            self._refused.append(sent)

    def _learn(self, sent: float, window: float) -> tuple[float, float, int] | None:
        """(rate, the most it can be, requests counted) between an earlier refused request and
        this one, from the pair whose span and count bound it best (passed ± 1 over the span);
        with too few passed for that, an upper bound (the fewest passed over a span, plus one)
        if it is lower; at the first 429, a guess; None when nothing new is known."""
        passed = self._sent_passed
        end = bisect.bisect_right(passed, sent)  # sent with it but passed: before it
        best: tuple[float, int, float] | None = None
        upper = math.inf
        for then in self._refused:
            span = sent - then
            if span < MIN_SPAN_S:
                continue
            count = end - bisect.bisect_right(passed, then)  # sent with `then`: before it
            upper = min(upper, (count + 1) / span)
            if count >= MIN_PASSED and (best is None or (count - 1) / span > best[0]):
                best = ((count - 1) / span, count, span)
        if best is not None:
            _, count, span = best
            return max(count / span, MIN_RATE), max((count + 1) / span, MIN_RATE), count
        if upper < (math.inf if self._rate is None else self._rate):
            return max(upper, MIN_RATE), max(upper, MIN_RATE), 1
        if self._rate is not None:
            return None
        # The first 429: a guess, what passed in the Retry-After before it (Mender's burst is
        # its quota per interval, at least the rate times Retry-After), free to double.
        recent = end - bisect.bisect_left(passed, sent - window)
        if recent < MIN_PASSED:
            return None
        return recent / window, 2 * recent / window, recent

    def _pace(self, now: float) -> float | None:
        quiet = now - self._last_limited
        if self._rate is None or quiet > FORGET_S:
            self._rate = None
            return None
        rate = self._rate + (self._upper - self._rate) * min(1.0, quiet / RISE_S)
        return rate * (1.0 + self._step) ** int(quiet // PROBE_EVERY_S)

    def report(self) -> Pace:
        with self._lock:
            rate = self._pace(self._clock())
            return Pace(None if rate is None else round(rate, 3), self._limited, self._passed)
