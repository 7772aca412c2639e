"""The backfill of one target: list each side once, plan every device in memory, apply with
bounded concurrency that halves on 429 and grows back (AIMD).

Mender is indexed by identity digest in a compact form (100,000 devices in ~100 MB); the
registry is streamed. Interrupted (fail-fast, Ctrl-C), it records what it did not run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bridge import logs, names, notify
from bridge.apply import Applier
from bridge.errors import ApiError, AuthError, IdentityError, InputError
from bridge.identity import canonical_json, identity_digest
from bridge.model import AuthSet, AuthStatus, MenderDevice, RegistryDevice, RegistryRef
from bridge.reconcile import Action, plan
from bridge.report import Outcome, Report, Status, Step

if TYPE_CHECKING:
    from bridge.sync import Bridge

log = logs.get_logger("sync")

# Told of each device done, with the best estimate of the total so far.
Progress = Callable[[int, int | None], None]
# (id, identity JSON, status, decommissioning, ((auth id, pubkey, status), ...))
Entry = tuple[str, str, AuthStatus, bool, tuple[tuple[str, str, AuthStatus], ...]]
NOT_RUN = "not run: "


def expand(entry: Entry) -> MenderDevice:
    device_id, identity, status, decommissioning, sets = entry
    return MenderDevice(device_id, json.loads(identity), status, decommissioning,
                        tuple(AuthSet(*s) for s in sets))


def index_mender(bridge: Bridge) -> dict[bytes, Entry]:
    """Mender devices whose identity follows the template, by identity digest."""
    index: dict[bytes, Entry] = {}
    follows = bridge.policy.template.follows
    for device in bridge.mender.iter_devices():
        if not follows(device.identity_data):
            continue
        text = canonical_json(device.identity_data)
        sets = tuple((s.id, s.pubkey, s.status) for s in device.auth_sets or ())
        index[identity_digest(device.identity_data)] = (
            device.id, text, device.status, device.decommissioning, sets)
    return index


class Throttle:
    """Bounds in-flight work; additive increase, multiplicative decrease on 429."""

    def __init__(self, maximum: int, *, increase_every: int = 20) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.increase_every = increase_every
        self.in_flight = 0
        self.lowest = self.maximum
        self._successes = 0
        self._quiet_until = 0.0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1

    def release(self, ok: bool = True) -> None:
        with self._cond:
            self.in_flight -= 1
            if ok:
                self._successes += 1
                if self._successes >= self.increase_every and self.limit < self.maximum:
                    self.limit += 1
                    self._successes = 0
            self._cond.notify_all()

    def throttled(self, retry_after: float) -> None:
        """A 429 was seen. Several requests in flight see the same 429 burst: halve once per
        Retry-After window, not once per request."""
        now = time.monotonic()
        with self._cond:
            if now < self._quiet_until:
                return
            self._quiet_until = now + max(retry_after, 0.2)
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self._successes = 0


class Run:
    """One backfill of one target. Use as a context manager; `stop()` ends it early."""

    def __init__(self, bridge: Bridge, report: Report, *, dry_run: bool, prune: bool,
                 fail_fast: bool, progress: Progress | None) -> None:
        self.bridge, self.report = bridge, report
        self.dry_run, self.prune, self.fail_fast = dry_run, prune, fail_fast
        self.now = bridge.clock()
        self.stopped = threading.Event()
        self.why_stopped = ""
        self.auth_error: AuthError | None = None
        self.throttle = Throttle(bridge.concurrency)
        self.applier = Applier(bridge.mender, bridge.policy, bridge.clock,
                               collides=bridge.other_owner)
        self.seen: set[bytes] = set()
        self.expected: int | None = None
        self._progress = progress
        self._progress_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(bridge.concurrency, thread_name_prefix="bridge-sync")
        # Planned devices wait in the pool's queue, so a worker that finishes takes the next
        # at once instead of waiting for the (busy, GIL-sharing) planning thread; bounded.
        self._backlog = threading.BoundedSemaphore(4 * bridge.concurrency)
        self._listener = bridge.mender.throttle_listener(self.throttle.throttled)

    def __enter__(self) -> Run:
        self._listener.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._pool.shutdown(wait=True)
        finally:
            self._listener.__exit__(None, None, None)
            self.report.stats.update(registry_devices=len(self.seen),
                                     lowest_concurrency=self.throttle.lowest)

    def stop(self, why: str) -> None:
        if not self.stopped.is_set():
            self.why_stopped = why
            self.stopped.set()

    def registries(self, refs: Iterable[RegistryRef], index: dict[bytes, Entry]) -> bool:
        """Plan every device of `refs`; False if a registry could not be listed."""
        listed_all = True
        for ref in refs:
            try:
                for registry in self.bridge.registry.iter_devices(ref):
                    if self.stopped.is_set():
                        break
                    self.device(registry, index)
                if self.stopped.is_set():
                    self.report.add(Outcome(str(ref), Step.LIST, Status.SKIPPED,
                                            f"{NOT_RUN}{self.why_stopped}: the rest of this "
                                            "registry was not examined"))
                    continue
            except ApiError as exc:
                listed_all = False
                self.report.add(Outcome(str(ref), Step.LIST, Status.FAILED, str(exc)))
        return listed_all

    def device(self, registry: RegistryDevice, index: dict[bytes, Entry]) -> None:
        policy = self.bridge.policy
        try:
            names.device_id(registry.id)  # a listing is input too: never an identity from it
        except InputError as exc:
            self.report.add(Outcome(str(registry)[:160], Step.NOTHING, Status.SKIPPED, str(exc)))
            self.tick()
            return
        try:
            digest = identity_digest(policy.template.render(registry))
        except IdentityError:
            self.dispatch(registry, plan(registry, None, policy, self.now))
            return
        if digest in self.seen:
            self.report.add(Outcome(str(registry), Step.NOTHING, Status.CONFLICT,
                                    "another registry device has the same Mender identity"))
            self.tick()
            return
        self.seen.add(digest)
        entry = index.pop(digest, None)
        current = None if entry is None else expand(entry)
        self.dispatch(registry, plan(registry, current, policy, self.now, prune=self.prune))

    def absent(self, index: dict[bytes, Entry], prunable: Callable[[MenderDevice], bool]) -> None:
        """Mender devices that no listed registry device claims."""
        self.expected = len(self.seen) + len(index)
        for entry in index.values():
            if self.stopped.is_set():
                return
            device = expand(entry)
            prune = self.prune and prunable(device)
            self.dispatch(None, plan(None, device, self.bridge.policy, self.now, prune=prune))

    def dispatch(self, registry: RegistryDevice | None, actions: list[Action]) -> None:
        if self.dry_run or not any(a.writes for a in actions):
            for action in actions:
                self.report.record(action)
            self.tick()
            return
        self._backlog.acquire()
        if self.stopped.is_set():
            self._backlog.release()
            self._not_run(actions)
            return
        self._pool.submit(self._work, registry, actions)

    def _not_run(self, actions: list[Action]) -> None:
        for action in actions:
            if action.writes:
                self.report.record(action, Status.SKIPPED, NOT_RUN + self.why_stopped)
            else:
                self.report.record(action)

    def _work(self, registry: RegistryDevice | None, actions: list[Action]) -> None:
        try:
            if self.stopped.is_set():
                self._not_run(actions)
                return
            self.throttle.acquire()
            ok = False
            try:
                ok = self.applier.apply(registry, actions, self.report, prune=self.prune)
            finally:
                self.throttle.release(ok)
            if ok and registry is not None and self.bridge.notify_url is not None and any(
                    a.kind in notify.ADMITTING for a in actions):
                self.report.add(notify.tell(self.bridge.registry, registry,
                                            self.bridge.notify_url))
            if not ok and self.fail_fast:
                self.stop("stopped by --fail-fast")
        except AuthError as exc:
            self.auth_error = self.auth_error or exc
            self.stop("the credentials were refused")
            self._not_run(actions)
        except Exception as exc:  # a bug: logged with its traceback; the others go on
            logs.emit(log, logging.ERROR, f"internal error on {actions[0].device}: {exc!r}",
                      exc_info=True, device=actions[0].device, outcome="failed")
            self.report.add(Outcome(actions[0].device, actions[0].kind, Status.FAILED,
                                    f"internal error: {type(exc).__name__} (see the log)"))
        finally:
            self._backlog.release()
            self.tick()

    def tick(self) -> None:
        if self._progress is not None:
            with self._progress_lock:
                self._progress(1, self.expected)
