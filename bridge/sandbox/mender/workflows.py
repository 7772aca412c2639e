"""Mender's workflows service in miniature: the jobs deviceauth starts (inventory updates, a
device's decommissioning) run once their delay is over, in order of due time (submission order
for equal delays), each in its own transaction.

A job whose delay is 0 runs in the caller's thread when no job is due before it. A worker
thread starts when a job must wait and ends once the queue has been idle for a while, so an
unused stand-in runs no thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from bridge.sandbox.mender.store import Store, Tx

Job = Callable[[Tx], None]
_IDLE_S = 2.0  # a worker with nothing to do for this long ends
_BATCH = 500  # jobs run in one transaction at most
_log = logging.getLogger(__name__)


class Workflows:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Job]] = []  # a heap
        self._order = itertools.count()
        self._busy = False  # the worker is running a job taken off the queue
        self._worker: threading.Thread | None = None

    def submit(self, delay_s: float, *jobs: Job) -> None:
        """Run `jobs` `delay_s` seconds from now, after the jobs due before them."""
        if not jobs:
            return
        with self._cond:
            now = time.monotonic()
            queued = delay_s > 0 or self._busy or bool(self._queue and self._queue[0][0] <= now)
            if queued:
                for job in jobs:
                    heapq.heappush(self._queue, (now + max(delay_s, 0.0), next(self._order),
                                                 job))
                if self._worker is None:
                    self._worker = threading.Thread(target=self._loop, daemon=True,
                                                    name="sandbox-workflows")
                    self._worker.start()
                self._cond.notify()
        if not queued:
            self._run(*jobs)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + int(self._busy)

    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._due()
                if not batch:
                    self._worker = None
                    return
                self._busy = True
            try:
                self._run(*batch)
            finally:
                with self._cond:
                    self._busy = False

    def _due(self) -> list[Job]:
        """The jobs due now, waiting for the first one; [] after an idle spell (lock held)."""
        while True:
            if not self._queue:
                if not self._cond.wait(timeout=_IDLE_S) and not self._queue:
                    return []
                continue
            wait = self._queue[0][0] - time.monotonic()
            if wait > 0:
                self._cond.wait(timeout=wait)
                continue
            now = time.monotonic()
            batch: list[Job] = []
            while self._queue and self._queue[0][0] <= now and len(batch) < _BATCH:
                batch.append(heapq.heappop(self._queue)[2])
            return batch

    def _run(self, *jobs: Job) -> None:
        """The jobs in one transaction (one commit for a burst), each in a savepoint so that
        one failing leaves the others' writes in place."""
        if self._store.closed:
            return
        try:
            with self._store.tx() as tx:
                for job in jobs:
                    tx.run("SAVEPOINT job")
                    try:
                        job(tx)
                    except Exception:
                        tx.run("ROLLBACK TO job")
                        _log.exception("sandbox workflow job failed")
                    tx.run("RELEASE job")
        except Exception:
            if not self._store.closed:
                _log.exception("sandbox workflow jobs failed")
