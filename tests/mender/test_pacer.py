"""The pacer on an injected clock (no sleeping): it holds every request for a 429's Retry-After,
learns the rate from the 429s' timing, spaces requests at it (no storm after a burst of 429s),
creeps up while no 429 comes, and forgets a limit not met for long. Against a simulated
token bucket (Mender's limiter: quota per interval, burst of quota) it settles on the limit."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import pytest
from mender_support import FakeClock

from bridge.mender.pacer import FORGET_S, PROBE_EVERY_S, RISE_S, Pacer


def _pacer(clock: FakeClock) -> Pacer:
    return Pacer(clock=clock.time, sleep=clock.sleep)


def test_no_limit_met_no_wait() -> None:
    clock = FakeClock()
    pacer = _pacer(clock)
    for _ in range(1000):
        pacer.passed(pacer.wait())
    assert clock.slept == [] and pacer.report().rate is None
    assert pacer.report().passed == 1000


def test_the_first_429_paces_requests_at_what_passed_in_the_retry_after_before_it() -> None:
    clock = FakeClock()
    pacer = _pacer(clock)
    start = clock.now
    for i in range(20):  # a burst of 20 passes, then the 16 requests in flight refused
        pacer.passed(start + i * 0.002)
    clock.advance(0.1)
    for _ in range(16):
        pacer.limited(clock.now - 0.05, 1.0)
    assert pacer.report().rate == pytest.approx(20.0)  # 20 in the second before: a guess
    slots = [pacer.reserve() for _ in range(16)]
    assert slots == pytest.approx([i / 20 for i in range(16)])  # no storm: one each 1/20 s


def test_a_429_with_too_little_passed_before_it_holds_every_request() -> None:
    clock = FakeClock()
    pacer = _pacer(clock)
    pacer.passed(clock.now)
    clock.advance(0.1)
    pacer.limited(clock.now - 0.05, 2.0)
    assert pacer.report().rate is None
    assert [pacer.reserve() for _ in range(3)] == pytest.approx([2.0] * 3)


def test_once_the_rate_is_known_a_burst_of_429s_is_followed_by_spaced_requests() -> None:
    clock = FakeClock()
    pacer = _pacer(clock)
    pacer.limited(clock.now, 1.0)
    clock.advance(1.0)
    for i in range(20):  # the hold over, 20 passed in the next second
        pacer.passed(clock.now + i * 0.05)
    clock.advance(1.0)
    for _ in range(16):  # and the next 16 refused together
        pacer.limited(clock.now, 1.0)
    assert pacer.report().rate == pytest.approx(10.0)  # 20 passed over 2 s
    slots = sorted(pacer.reserve() for _ in range(16))
    assert slots == pytest.approx([i / 10.0 for i in range(16)])  # no storm: one each 1/10 s
    pacer.wait(after=1.0)  # a refused request waits its Retry-After, then for its slot,
    assert clock.slept == pytest.approx([1.0, 0.6])  # the 17th: 1.6 s from the first


def test_the_rate_is_what_passed_between_two_refused_requests() -> None:
    clock = FakeClock()
    pacer = _pacer(clock)
    pacer.limited(clock.now, 0.0)
    for i in range(1, 41):  # 40 passed in the 2 s between the two refused requests
        pacer.passed(clock.now + i * 0.049)
    clock.advance(2.0)
    pacer.limited(clock.now, 0.0)
    assert pacer.report().rate == pytest.approx(20.0)
    delays = [pacer.reserve() for _ in range(5)]
    assert delays == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20])


def test_without_a_429_the_pace_creeps_up_then_the_limit_is_forgotten() -> None:
    clock = FakeClock()
    pacer = _pacer(clock)
    pacer.limited(clock.now, 0.0)
    for i in range(1, 11):
        pacer.passed(clock.now + i * 0.1)
    clock.advance(1.0)
    pacer.limited(clock.now, 0.0)
    assert pacer.report().rate == pytest.approx(10.0)
    clock.advance(RISE_S)  # up to what the span allows: one more passed, 11 in 1 s
    assert pacer.report().rate == pytest.approx(11.0)
    clock.advance(3 * PROBE_EVERY_S)
    # Learned from 10 passed, the rate is known to 1 in 10: it is tried 10 % higher each time.
    assert pacer.report().rate == pytest.approx(11.0 * 1.1 ** 3, rel=1e-3)
    clock.advance(FORGET_S)
    assert pacer.report().rate is None and pacer.reserve() == 0.0


def test_a_retry_after_is_capped() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep, max_hold=5.0)
    pacer.limited(clock.now, 3600.0)
    assert pacer.reserve() == pytest.approx(5.0)


@dataclass
class Run:
    seconds: float
    refused: int
    sent: int
    rate: float | None


def simulate(requests: int, rate: float, burst: int, *, workers: int = 16,
             latency: float = 0.05) -> Run:
    """`workers` each send one request at a time through the pacer to a token bucket of
    `rate`/s and `burst` (Retry-After: whole seconds until a token), `latency` per round
    trip, the server deciding half-way; a refused request is sent again."""
    clock = FakeClock(now=0.0)
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    tokens, last = float(burst), 0.0
    # (time, order, kind, time the request was sent, Retry-After)
    events: list[tuple[float, int, str, float, float]] = []
    order = 0
    todo, refused, sent = requests, 0, 0

    def push(at: float, kind: str, sent_at: float = 0.0, retry_after: float = 0.0) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, kind, sent_at, retry_after))

    for _ in range(workers):
        push(0.0, "next")
    while events:
        at, _, kind, sent_at, retry_after = heapq.heappop(events)
        clock.now = at
        if kind == "next" and todo:
            todo -= 1
            push(at, "send")
        elif kind == "send":
            push(at + pacer.reserve(), "sent")
        elif kind == "sent":
            sent += 1
            decided = at + latency / 2
            tokens, last = min(burst, tokens + (decided - last) * rate), decided
            if tokens >= 1:
                tokens -= 1
                push(at + latency, "passed", at)
            else:
                push(at + latency, "refused", at, math.ceil((1 - tokens) / rate))
        elif kind == "passed":
            pacer.passed(sent_at)
            push(at, "next")
        elif kind == "refused":
            refused += 1
            pacer.limited(sent_at, retry_after)
            push(at + retry_after, "send")  # the refused request waits its Retry-After
    return Run(clock.now, refused, sent, pacer.report().rate)


@pytest.mark.parametrize(("rate", "burst", "requests"), [
    (20.0, 20, 2000),  # the benchmark's limit
    (5.0, 300, 2000),  # Mender's default for management calls: 300 a minute
    (100.0, 100, 3000),
])
def test_against_a_token_bucket_it_settles_on_the_limit(rate: float, burst: int,
                                                        requests: int) -> None:
    run = simulate(requests, rate, burst)
    limit_bound = (requests - burst) / rate
    assert run.rate == pytest.approx(rate, rel=0.03)
    assert run.seconds <= 1.05 * limit_bound + 1.0  # the first Retry-After: one second
    assert run.refused <= 0.03 * run.sent
