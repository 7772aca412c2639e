"""The backfill of one target: Mender and the registries listed at once (Mender with several
pages in flight, the registries read ahead in a thread), every device planned against a compact
index of Mender, the writes applied with bounded concurrency at the pace of the Mender client,
which it learns from the server's 429s (bridge.mender.pacer). Interrupted (fail-fast, Ctrl-C),
it records what it did not run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bridge import logs, names, notify
from bridge.apply import Applier
from bridge.backfill.feed import Feed, Listed
from bridge.backfill.index import MenderIndex, digest_of
from bridge.errors import ApiError, AuthError, IdentityError, InputError
from bridge.keys import usable_keys
from bridge.model import MenderDevice, RegistryDevice, RegistryRef
from bridge.reconcile import Action, Policy, plan
from bridge.report import Outcome, Report, Status, Step

if TYPE_CHECKING:
    from bridge.sync import Bridge

__all__ = ["NOT_RUN", "Feed", "MenderIndex", "Progress", "Run", "index_mender", "twins_possible"]

log = logs.get_logger("sync")

# Told of each device done, with the best estimate of the total so far.
Progress = Callable[[int, int | None], None]
NOT_RUN = "not run: "


def index_mender(bridge: Bridge) -> MenderIndex:
    """Mender devices whose identity follows the template, by identity digest."""
    index = MenderIndex(bridge.policy.template.follows)
    for device in bridge.mender.iter_devices():
        index.add(device)
    return index


def twins_possible(policy: Policy, refs: Sequence[RegistryRef]) -> bool:
    """Whether two listed registry devices may have one Mender identity: not when the identity
    names the device id and tells the listed registries apart."""
    template = policy.template
    if not template.uses("device.id"):
        return True
    told = {(r.registry if template.uses("registry") else "",
             r.project if template.uses("project") else "",
             r.location if template.uses("location") else "") for r in refs}
    return len(told) < len(set(refs))


class Run:
    """One backfill of one target. Use as a context manager; `stop()` ends it early."""

    def __init__(self, bridge: Bridge, report: Report, *, dry_run: bool, prune: bool,
                 fail_fast: bool, progress: Progress | None, twins: bool = True) -> None:
        self.bridge, self.report = bridge, report
        self.dry_run, self.prune, self.fail_fast = dry_run, prune, fail_fast
        self.now = bridge.clock()
        self.stopped = threading.Event()
        self.why_stopped = ""
        self.auth_error: AuthError | None = None
        self.applier = Applier(bridge.mender, bridge.policy, bridge.clock,
                               collides=bridge.other_owner)
        # Identities of the devices listed, to tell twins apart; only where there can be any.
        self.seen: set[bytes] | None = set() if twins else None
        self.listed = 0
        self.expected: int | None = None
        self.feed: Feed | None = None  # the registries' listing, for the progress total
        self._pace = bridge.mender.pace()
        self._progress = progress
        self._progress_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(bridge.concurrency, thread_name_prefix="bridge-sync")
        # Planned devices wait in the pool's queue, so a worker that finishes takes the next
        # at once instead of waiting for the (busy, GIL-sharing) planning thread; bounded.
        self._backlog = threading.BoundedSemaphore(4 * bridge.concurrency)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._pool.shutdown(wait=True)
        except KeyboardInterrupt:
            # Ctrl-C while the last devices are applied: what is queued is reported as not
            # run, what is under way ends, and the report still says what was done.
            self.stop("interrupted")
            self._pool.shutdown(wait=True)
        pace = self.bridge.mender.pace()
        self.report.stats.update(registry_devices=self.listed,
                                 mender_429=pace.limited - self._pace.limited)
        if pace.rate is not None:  # the requests per second it settled on
            self.report.stats["mender_rate_limit"] = pace.rate

    def stop(self, why: str) -> None:
        if not self.stopped.is_set():
            self.why_stopped = why
            self.stopped.set()

    def registries(self, feed: Iterable[Listed], refs: Sequence[RegistryRef],
                   index: MenderIndex) -> bool:
        """Plan every device `feed` lists; False if a registry could not be listed."""
        listed_all = True
        ended: set[RegistryRef] = set()
        for item in feed:
            for device in item.devices:
                if self.stopped.is_set():
                    break
                self.device(device, index)
            if self.stopped.is_set():
                break
            if isinstance(item.error, ApiError):
                listed_all = False
                self.report.add(Outcome(str(item.ref), Step.LIST, Status.FAILED,
                                        str(item.error)))
            elif item.error is not None:
                raise item.error
            if item.end or item.error is not None:
                ended.add(item.ref)
        for ref in refs:
            if self.stopped.is_set() and ref not in ended:
                self.report.add(Outcome(str(ref), Step.LIST, Status.SKIPPED,
                                        f"{NOT_RUN}{self.why_stopped}: the rest of this "
                                        "registry was not examined"))
        return listed_all

    def device(self, registry: RegistryDevice, index: MenderIndex) -> None:
        policy = self.bridge.policy
        self.listed += 1
        try:
            names.device_id(registry.id)  # a listing is input too: never an identity from it
        except InputError as exc:
            self.report.add(Outcome(str(registry)[:160], Step.NOTHING, Status.SKIPPED, str(exc)))
            self.tick()
            return
        try:
            digest = digest_of(policy.template.render(registry))
        except IdentityError:
            self.dispatch(registry, plan(registry, None, policy, self.now))
            return
        if self.seen is not None:
            if digest in self.seen:
                self.report.add(Outcome(str(registry), Step.NOTHING, Status.CONFLICT,
                                        "another registry device has the same Mender identity"))
                self.tick()
                return
            self.seen.add(digest)
        # Mender keys are matched against the PEMs as registered (most are already in Mender's
        # form), then, if one is left, as the plan normalizes them.
        current = index.claim(
            digest, lambda: (c.key for c in registry.credentials),
            lambda: (k.pem for k in usable_keys(registry.credentials, self.now,
                                                policy.key_policy)[0]))
        self.dispatch(registry, plan(registry, current, policy, self.now, prune=self.prune))

    def absent(self, index: MenderIndex, prunable: Callable[[MenderDevice], bool]) -> None:
        """Mender devices that no listed registry device claims."""
        self.expected = self.listed + len(index)
        for device in index.remaining():
            if self.stopped.is_set():
                return
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
            ok = self.applier.apply(registry, actions, self.report, prune=self.prune)
            if (ok and registry is not None and self.bridge.notify_url is not None
                    and str(registry) in self.applier.admitted):
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
                total = self.expected
                if self.feed is not None and self.feed.finished:
                    total = max(total or 0, self.feed.listed)
                self._progress(1, total)
