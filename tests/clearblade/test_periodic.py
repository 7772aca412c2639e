"""The schedule of `--reconcile-every`: one run at a time even when a run outlasts the period,
the schedule kept after a failed run, jittered waits around the period, durations read."""

from __future__ import annotations

import threading
import time

import click
import pytest

from bridge.cli.periodic import Duration, Periodic, seconds
from bridge.errors import ApiError


class SlowRuntime:
    """A reconcile that takes longer than the period; its second run fails."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = self.most = self.runs = 0
        self.enough = threading.Event()

    def reconcile(self) -> None:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
            self.runs += 1
            if self.runs >= 4:
                self.enough.set()
            if self.runs == 2:
                raise ApiError("mender down", service="mender")


def test_runs_never_overlap_and_a_failed_run_does_not_end_the_schedule() -> None:
    runtime = SlowRuntime()
    periodic = Periodic(runtime, 0.01).start()
    try:
        assert runtime.enough.wait(30)
    finally:
        periodic.stop(30)
    assert runtime.most == 1
    assert runtime.runs >= 4 and periodic.runs == runtime.runs


def test_a_stop_lets_the_running_reconcile_finish() -> None:
    runtime = SlowRuntime()
    periodic = Periodic(runtime, 3600).start()
    periodic.stop(30)
    assert runtime.runs == 1 and runtime.active == 0


@pytest.mark.parametrize(("draw", "shorter", "longer"), [(0.0, True, False), (1.0, False, True),
                                                        (0.5, False, False)])
def test_waits_are_spread_around_the_period(draw: float, shorter: bool, longer: bool) -> None:
    wait = Periodic(SlowRuntime(), 60, jitter=lambda: draw).next_wait()
    assert (wait < 60, wait > 60) == (shorter, longer)
    assert 30 < wait < 90


@pytest.mark.parametrize(("text", "expected"), [("90", 90), ("2s", 2), ("1.5m", 90),
                                                ("2h", 7200), ("1500ms", 1.5)])
def test_durations(text: str, expected: float) -> None:
    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["", "5 minutes", "-3s", "1d", "0.5s"])
def test_a_bad_or_too_short_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Duration().convert(text, None, None)
