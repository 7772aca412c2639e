"""The service: keeps Mender in step with the registry, one device (events) or all (backfill).

The event path does the common case in two remote calls (registry read, preauthorize → 201)
and reads Mender only after a 409. The backfill lists each side once and plans in memory.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bridge.apply import Applier, Throttle
from bridge.errors import ApiError, IdentityError, NotFound, PermanentApiError
from bridge.identity import canonical_json
from bridge.model import AuthSet, AuthStatus, MenderDevice, RegistryDevice, RegistryRef
from bridge.ports import Mender, Registry
from bridge.reconcile import Action, Kind, Policy, Reason, plan
from bridge.report import Outcome, Report, Status

if TYPE_CHECKING:
    from bridge.events import DeviceChange

__all__ = ["Bridge", "Outcome", "Report", "Status"]

# A Mender device in the backfill index, compact: (id, identity JSON, status,
# decommissioning, ((auth id, pubkey, status), ...)); 100,000 of them fit in ~100 MB.
Entry = tuple[str, str, AuthStatus, bool, tuple[tuple[str, str, AuthStatus], ...]]
_MISSING = object()


def _digest(identity: object) -> bytes:
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).digest()


def _expand(entry: Entry) -> MenderDevice:
    device_id, identity, status, decommissioning, sets = entry
    return MenderDevice(device_id, json.loads(identity), status, decommissioning,
                        tuple(AuthSet(*s) for s in sets))


class Bridge:
    """One registry, one Mender, one policy; reused across events and runs."""

    def __init__(self, registry: Registry, mender: Mender, policy: Policy, *,
                 concurrency: int = 16, clock: Callable[[], datetime] | None = None) -> None:
        self.registry = registry
        self.mender = mender
        self.policy = policy
        self.concurrency = max(1, concurrency)
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- event path -------------------------------------------------------------------------
    def handle_change(self, change: DeviceChange) -> Report:
        device = change.device_id or change.num_id
        if change.kind == "delete":
            return self.handle_deleted(change.ref, change.device_id, change.num_id)
        if device is None:
            return self._single(f"{change.ref.registry}/?", Status.SKIPPED, "event names no device")
        mask = change.update_mask
        if change.kind == "update" and mask and not self._relevant(mask):
            return self._single(f"{change.ref.registry}/{device}", Status.SKIPPED,
                                "update touches nothing the bridge reads: "
                                + ",".join(mask))
        return self.sync_device(change.ref, device)

    def _relevant(self, mask: Sequence[str]) -> bool:
        wanted = {"credentials", "blocked"}
        if self.policy.template.reads_metadata:
            wanted.add("metadata")
        return any(path.split(".")[0].split("[")[0] in wanted for path in mask)

    def sync_device(self, ref: RegistryRef, device_id: str) -> Report:
        """Reconcile one device. TransientApiError escapes; permanent errors are reported."""
        report = Report()
        label = f"{ref.registry}/{device_id}"
        try:
            registry = self.registry.get_device(ref, device_id)
        except NotFound:
            report.add(Outcome(label, "nothing", Status.SKIPPED, "not in the registry"))
            return report
        except PermanentApiError as exc:
            report.add(Outcome(label, "read", Status.FAILED, str(exc)))
            return report
        self._sync_event(registry, report)
        return report

    def _sync_event(self, registry: RegistryDevice, report: Report) -> None:
        applier = Applier(self.mender, self.policy, self.clock, raise_transient=True)
        optimistic = plan(registry, None, self.policy, self.clock())
        # Common case: create it; the server answers 409 if it exists and we re-plan then.
        if any(a.kind is Kind.PREAUTHORIZE for a in optimistic):
            applier.apply(registry, optimistic, report)
            return
        ignore_blocked = registry.blocked and self.policy.on_blocked != "reject"
        if ignore_blocked or any(a.reason is Reason.NO_IDENTITY for a in optimistic):
            for action in optimistic:
                report.record(action)
            return
        try:
            current = self.mender.find_by_identity(self.policy.template.render(registry))
        except PermanentApiError as exc:
            report.add(Outcome(str(registry), "read", Status.FAILED, str(exc)))
            return
        applier.apply(registry, plan(registry, current, self.policy, self.clock()), report)

    def handle_deleted(self, ref: RegistryRef, device_id: str | None,
                       num_id: str | None) -> Report:
        """Decommission the Mender device of a device deleted from the registry."""
        report = Report()
        name = device_id or num_id
        label = f"{ref.registry}/{name}"
        if name is None:
            return self._single(label, Status.SKIPPED, "event names no device")
        try:
            # Events arrive in any order: a device re-created since must stay.
            registry = self.registry.get_device(ref, name)
        except NotFound:
            pass
        except PermanentApiError as exc:
            return self._single(label, Status.FAILED, str(exc))
        else:
            self._sync_event(registry, report)
            return report
        template = self.policy.template
        needs = [f for f, v in (("device.id", device_id), ("device.num_id", num_id)) if v is None]
        if template.reads_metadata or any(
                f"{{{f}}}" in pattern for f in needs for _, pattern in template.attributes):
            return self._single(label, Status.SKIPPED, "the identity template needs fields a "
                                "deleted device no longer has; run `mender-bridge sync --prune`")
        stub = RegistryDevice(ref, device_id or "", num_id or "")
        try:
            current = self.mender.find_by_identity(template.render(stub))
        except (PermanentApiError, IdentityError) as exc:
            return self._single(label, Status.FAILED, str(exc))
        if current is None:
            return self._single(label, Status.UNCHANGED, "not in Mender")
        actions = plan(None, current, self.policy, self.clock(), prune=True)
        Applier(self.mender, self.policy, self.clock, raise_transient=True).apply(
            None, [_relabel(a, label) for a in actions], report)
        return report

    @staticmethod
    def _single(device: str, status: Status, detail: str) -> Report:
        return Report([Outcome(device, "nothing", status, detail)])

    # -- backfill ---------------------------------------------------------------------------
    def index_mender(self) -> dict[bytes, Entry]:
        """Mender devices whose identity follows the template, by identity hash."""
        index: dict[bytes, Entry] = {}
        follows = self.policy.template.follows
        for device in self.mender.iter_devices():
            if not follows(device.identity_data):
                continue
            text = canonical_json(device.identity_data)
            sets = tuple((s.id, s.pubkey, s.status) for s in device.auth_sets or ())
            index[hashlib.sha256(text.encode("utf-8")).digest()] = (
                device.id, text, device.status, device.decommissioning, sets)
        return index

    def backfill(self, refs: Iterable[RegistryRef], *, dry_run: bool = False,
                 prune: bool = False, fail_fast: bool = False,
                 progress: Callable[[int], None] | None = None) -> Report:
        """Reconcile every device of `refs`; with `prune`, decommission Mender devices that
        follow the template but are in none of them. Failures are recorded, never raised."""
        report = Report()
        try:
            index = self.index_mender()
        except ApiError as exc:
            report.add(Outcome("mender", "list", Status.FAILED, str(exc)))
            return report
        report.stats["mender_devices"] = len(index)
        run = _Run(self, report, dry_run=dry_run, prune=prune, fail_fast=fail_fast,
                   progress=progress)
        with run:
            listed_all = True
            for ref in refs:
                try:
                    for registry in self.registry.iter_devices(ref):
                        if run.stop.is_set():
                            break
                        run.device(registry, index)
                except ApiError as exc:
                    listed_all = False
                    report.add(Outcome(str(ref), "list", Status.FAILED, str(exc)))
            if not listed_all and prune:
                report.add(Outcome("mender", "prune", Status.SKIPPED,
                                   "not pruning: a registry could not be listed"))
            for entry in index.values() if listed_all and not run.stop.is_set() else ():
                run.dispatch(None, plan(None, _expand(entry), self.policy, run.now, prune=prune))
        return report


def _relabel(action: Action, label: str) -> Action:
    return Action(action.kind, label, action.identity, action.pubkey, action.mender_id,
                  action.auth_id, action.reason, action.detail)


class _Run:
    """One backfill: plans each device against the index and applies with bounded concurrency."""

    def __init__(self, bridge: Bridge, report: Report, *, dry_run: bool, prune: bool,
                 fail_fast: bool, progress: Callable[[int], None] | None) -> None:
        self.bridge, self.report = bridge, report
        self.dry_run, self.prune, self.fail_fast = dry_run, prune, fail_fast
        self.now = bridge.clock()
        self.stop = threading.Event()
        self.throttle = Throttle(bridge.concurrency)
        self.applier = Applier(bridge.mender, bridge.policy, bridge.clock)
        self.seen: set[bytes] = set()
        self._progress = progress
        self._progress_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(bridge.concurrency, thread_name_prefix="bridge-sync")
        # Planned devices wait in the pool's queue, so a worker that finishes takes the next
        # at once instead of waiting for the (busy, GIL-sharing) planning thread; bounded.
        self._backlog = threading.BoundedSemaphore(4 * bridge.concurrency)
        self._previous = getattr(bridge.mender, "on_throttle", _MISSING)

    def __enter__(self) -> _Run:
        if self._previous is not _MISSING:
            self.bridge.mender.on_throttle = self.throttle.throttled  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)
        self.report.stats.update(registry_devices=len(self.seen),
                                 lowest_concurrency=self.throttle.lowest)
        if self._previous is not _MISSING:
            self.bridge.mender.on_throttle = self._previous  # type: ignore[attr-defined]

    def device(self, registry: RegistryDevice, index: dict[bytes, Entry]) -> None:
        policy = self.bridge.policy
        try:
            digest = _digest(policy.template.render(registry))
        except IdentityError:
            self.dispatch(registry, plan(registry, None, policy, self.now))
            return
        if digest in self.seen:
            self.report.add(Outcome(str(registry), "nothing", Status.CONFLICT,
                                    "another registry device has the same Mender identity"))
            self.tick()
            return
        self.seen.add(digest)
        entry = index.pop(digest, None)
        current = None if entry is None else _expand(entry)
        self.dispatch(registry, plan(registry, current, policy, self.now, prune=self.prune))

    def dispatch(self, registry: RegistryDevice | None, actions: list[Action]) -> None:
        if self.dry_run or not any(a.writes for a in actions):
            for action in actions:
                self.report.record(action)
            self.tick()
            return
        self._backlog.acquire()
        if self.stop.is_set():
            self._backlog.release()
            return
        self._pool.submit(self._work, registry, actions)

    def _work(self, registry: RegistryDevice | None, actions: list[Action]) -> None:
        ok = False
        try:
            if self.stop.is_set():
                for action in actions:
                    if action.writes:
                        self.report.record(action, Status.SKIPPED, "not run: stopped by "
                                           "--fail-fast")
                    else:
                        self.report.record(action)
                return
            self.throttle.acquire()
            try:
                ok = self.applier.apply(registry, actions, self.report, prune=self.prune)
            finally:
                if not ok and self.fail_fast:
                    self.stop.set()
                self.throttle.release(ok)
        except Exception as exc:  # one device's bug must not stop the others
            self.report.add(Outcome(actions[0].device, actions[0].kind.value, Status.FAILED,
                                    f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self._backlog.release()
            self.tick()

    def tick(self) -> None:
        if self._progress is not None:
            with self._progress_lock:
                self._progress(1)
