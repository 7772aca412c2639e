"""`--reconcile-every DURATION` of `serve` and `listen`: the whole scope reconciled on a
schedule inside the long-running process, the primary path for a registry that emits no events
(ClearBlade). One run at a time (a run longer than the period delays the next, never overlaps
it), each wait jittered so replicas spread out, failures logged and the schedule kept; the
runtime keeps each run's outcome and cost for /healthz.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

import click

from bridge import logs
from bridge.errors import BridgeError

JITTER = 0.2  # each wait is the period ± this share of it
MIN_PERIOD_S = 1.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Reconciles(Protocol):
    def reconcile(self) -> Any: ...


def seconds(text: str) -> float:
    """`90`, `90s`, `1.5m`, `2h`, `500ms` → seconds; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Duration(click.ParamType[float]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            period = seconds(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if period < MIN_PERIOD_S:
            self.fail(f"at least {MIN_PERIOD_S:g}s, not {value}", param, ctx)
        return period


RECONCILE_EVERY = click.option(
    "--reconcile-every", "reconcile_every", type=Duration(), default=None,
    envvar="RECONCILE_EVERY", show_envvar=True, metavar="DURATION",
    help="Also reconcile every registry of the scope this often (e.g. 5m; jittered, one run "
         "at a time; RECONCILE_PRUNE applies): the path for registries without events "
         "(ClearBlade).")


class Periodic:
    """Calls `runtime.reconcile()` every `period` seconds (± JITTER) in a thread of its own,
    the first time at once; `stop()` lets a running reconcile finish."""

    def __init__(self, runtime: Reconciles, period: float, *,
                 jitter: Callable[[], float] = random.random) -> None:
        self.runtime, self.period, self._jitter = runtime, period, jitter
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self.log = logs.get_logger("reconcile")

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def next_wait(self) -> float:
        return self.period * (1 + JITTER * (2 * self._jitter() - 1))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.next_wait())

    def run_once(self) -> None:
        """One reconcile; whatever it raises is logged and the schedule goes on."""
        self.runs += 1
        try:
            self.runtime.reconcile()
        except Exception as exc:  # configuration, credentials, a bug: the next run may pass
            logs.emit(self.log, logging.ERROR, f"reconcile failed, next in about "
                      f"{self.period:g}s: {exc}", exc_info=not isinstance(exc, BridgeError),
                      outcome="failed")
