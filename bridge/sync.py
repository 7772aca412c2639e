"""The service for one Mender target: keeps it in step with the registries of its scope, one
device at a time (events, requests) or all of them (backfill).

The rules that decide which devices may be touched live here: names validated and scoped, a
Mender identity that another registry's device also holds is never changed or decommissioned
for one of them, a device deleted while it was being admitted is decommissioned again, and
pruning stays inside the registries that were listed. The event path does the common case in
two remote calls (registry read, preauthorize → 201) and reads Mender only after a 409.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from bridge import backfill, keycheck, names, notify
from bridge.apply import Applier
from bridge.backfill import fleet
from bridge.backfill.tags import Tagger
from bridge.errors import (
    IdentityError,
    InputError,
    NotFound,
    PermanentApiError,
)
from bridge.identity import identity_digest
from bridge.keycheck import KeyCheck
from bridge.model import (
    ChangeKind,
    DeviceChange,
    OnBlocked,
    PruneMode,
    RegistryDevice,
    RegistryRef,
)
from bridge.ports import Mender, Registry
from bridge.reconcile import Action, Kind, Policy, Reason, plan
from bridge.report import Outcome, Report, Status, Step
from bridge.scope import Scope

__all__ = ["Bridge", "Outcome", "PruneMode", "Report", "Status"]

# An event-path write that took longer than this (a 429 wait, retries) re-reads the registry:
# the device may have been deleted meanwhile, its delete event already handled.
RECONFIRM_AFTER_S = 1.0
_RELEVANT = frozenset({"credentials", "blocked"})


class Bridge:
    """One Mender target, the registries of `scope`, one policy; reused across events and runs."""

    def __init__(self, registry: Registry, mender: Mender, policy: Policy, *,
                 scope: Scope | None = None, concurrency: int = 16,
                 clock: Callable[[], datetime] | None = None, notify_url: str | None = None,
                 name: str = "", reconfirm_after: float = RECONFIRM_AFTER_S,
                 tags: Tagger | None = None) -> None:
        self.registry = registry
        self.mender = mender
        self.policy = policy
        self.scope = scope
        self.concurrency = max(1, concurrency)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.notify_url = notify_url
        self.name = name
        self.reconfirm_after = reconfirm_after
        self.tags = tags  # Mender inventory tags from registry metadata (TAGS), if any

    # -- event path -------------------------------------------------------------------------
    def handle_change(self, change: DeviceChange) -> Report:
        """Apply one registry event; InputError if it names something outside the scope."""
        self._check(change.ref)
        if change.device_id is not None:
            names.device_id(change.device_id)
        if change.num_id is not None:
            names.num_id(change.num_id)
        if change.kind is ChangeKind.DELETE:
            return self.handle_deleted(change.ref, change.device_id, change.num_id)
        device = change.device_id or change.num_id
        if device is None:
            return _single(change.label, Status.SKIPPED, "event names no device")
        mask = change.update_mask
        if change.kind is ChangeKind.UPDATE and mask and not self._relevant(mask):
            return _single(change.label, Status.SKIPPED,
                           "update touches nothing the bridge reads: " + ",".join(mask))
        return self.sync_device(change.ref, device)

    def _relevant(self, mask: Sequence[str]) -> bool:
        reads = self.policy.template.uses("metadata") or (
            self.tags is not None and self.tags.template.uses("metadata"))
        wanted = _RELEVANT | ({"metadata"} if reads else set())
        return any(path.split(".")[0].split("[")[0] in wanted for path in mask)

    def _check(self, ref: RegistryRef) -> None:
        if self.scope is not None:
            self.scope.check(ref)
        else:
            names.registry_ref(ref.project, ref.location, ref.registry)

    def sync_device(self, ref: RegistryRef, device_id: str) -> Report:
        """Reconcile one device. InputError for a name outside the scope; TransientApiError
        escapes (the caller retries); permanent errors are reported."""
        self._check(ref)
        names.device_id(device_id)
        report = Report()
        label = f"{ref.registry}/{device_id}"
        started = time.monotonic()
        try:
            registry = self.registry.get_device(ref, device_id)
        except NotFound:
            return _single(label, Status.SKIPPED, "not in the registry")
        except PermanentApiError as exc:
            return _single(label, Status.FAILED, str(exc), Step.READ)
        created = self._sync_event(registry, report)
        if report.changed and time.monotonic() - started >= self.reconfirm_after:
            self._reconfirm(ref, device_id, created, report)
            if any(o.action == Kind.DECOMMISSION and o.status is Status.DONE
                   for o in report.outcomes):
                return report  # gone from the registry: nothing to tell it
        if not report.failed:
            self.notify(registry, report)
        if self.tags is not None and not report.failed:
            self.tags.after_sync(registry, report)  # TransientApiError: not in inventory yet
        return report

    def _sync_event(self, registry: RegistryDevice, report: Report) -> list[str]:
        """Apply one device's plan; the ids of the Mender devices it created."""
        applier = Applier(self.mender, self.policy, self.clock, raise_transient=True,
                          collides=self.other_owner)
        optimistic = plan(registry, None, self.policy, self.clock())
        # Common case: create it; the server answers 409 if it exists and we re-plan then.
        if any(a.kind is Kind.PREAUTHORIZE for a in optimistic):
            applier.apply(registry, optimistic, report)
            return applier.created
        ignore_blocked = registry.blocked and self.policy.on_blocked is not OnBlocked.REJECT
        if ignore_blocked or any(a.reason is Reason.NO_IDENTITY for a in optimistic):
            for action in optimistic:
                report.record(action)
            return []
        try:
            current = self.mender.find_by_identity(self.policy.template.render(registry))
        except PermanentApiError as exc:
            report.add(Outcome(str(registry), Step.READ, Status.FAILED, str(exc)))
            return []
        applier.apply(registry, plan(registry, current, self.policy, self.clock()), report)
        return applier.created

    def _reconfirm(self, ref: RegistryRef, device_id: str, created: list[str],
                   report: Report) -> None:
        """The registry read again after a slow write: a device deleted meanwhile loses what
        this sync gave it. What it created is found by id in deviceauth (consistent); only
        without one does the delete path search the (eventually consistent) inventory."""
        try:
            self.registry.get_device(ref, device_id)
            return
        except NotFound:
            pass
        if not created:
            report.merge(self.handle_deleted(ref, device_id, None))
            return
        label = f"{ref.registry}/{device_id}"
        applier = Applier(self.mender, self.policy, self.clock, raise_transient=True)
        for mender_id in created:
            try:
                current = self.mender.get_device(mender_id)
            except NotFound:
                continue
            actions = plan(None, current, self.policy, self.clock(), prune=True)
            applier.apply(None, [_relabel(a, label) for a in actions], report)

    def handle_deleted(self, ref: RegistryRef, device_id: str | None,
                       num_id: str | None) -> Report:
        """Decommission the Mender device of a device deleted from the registry, unless the
        registry still (or again) has it, or another registry's device holds its identity."""
        self._check(ref)
        name = device_id or num_id
        label = f"{ref.registry}/{name}"
        if name is None:
            return _single(label, Status.SKIPPED, "event names no device")
        try:
            # Events arrive in any order: a device re-created since must stay.
            registry = self.registry.get_device(ref, name)
        except NotFound:
            pass
        except PermanentApiError as exc:
            return _single(label, Status.FAILED, str(exc), Step.READ)
        else:
            report = Report()
            self._sync_event(registry, report)
            return report
        template = self.policy.template
        missing = [f for f, v in (("device.id", device_id), ("device.num_id", num_id))
                   if v is None]
        if template.uses("metadata") or any(template.uses(f) for f in missing):
            return _single(label, Status.SKIPPED, "the identity template needs fields a "
                           "deleted device no longer has; run `mender-bridge sync --prune`")
        stub = RegistryDevice(ref, device_id or "", num_id or "")
        if conflict := self.other_owner(stub):
            return _single(label, Status.CONFLICT, conflict)
        try:
            current = self.mender.find_by_identity(template.render(stub))
        except (PermanentApiError, IdentityError) as exc:
            return _single(label, Status.FAILED, str(exc), Step.READ)
        if current is None:
            return _single(label, Status.UNCHANGED, "not in Mender")
        actions = [_relabel(a, label) for a in
                   plan(None, current, self.policy, self.clock(), prune=True)]
        report = Report()
        Applier(self.mender, self.policy, self.clock, raise_transient=True).apply(
            None, actions, report)
        return report

    def other_owner(self, device: RegistryDevice) -> str | None:
        """Another registry device of the scope with the same Mender identity, if any: then
        neither may change that Mender device on its own."""
        template = self.policy.template
        if template.uses("registry") or template.uses("device.num_id") or not device.id:
            return None  # identities differ per registry, or num ids are global
        try:
            identity = template.render(device)
            for ref in self.registries():
                if ref == device.ref:
                    continue
                try:
                    other = self.registry.get_device(ref, device.id)
                except NotFound:
                    continue
                if identity_digest(template.render(other)) == identity_digest(identity):
                    return (f"the Mender identity of {device} also belongs to {other}: "
                            "neither is changed until one of them is renamed")
        except IdentityError:
            return None
        return None

    def registries(self) -> list[RegistryRef]:
        """The scope's registries; every registry of the location when none is configured."""
        if self.scope is None:
            return []
        return self.scope.refs or self.registry.list_registries(self.scope.project,
                                                                self.scope.location)

    def check_key(self, ref: RegistryRef, device_id: str, public_pem: str) -> KeyCheck:
        """`keys check`: the key against the device's credentials and its Mender auth sets,
        by the core's one credential rule."""
        self._check(ref)
        names.device_id(device_id)
        return keycheck.check_key(self.registry, self.mender, ref, device_id, public_pem,
                                  self.policy.template, policy=self.policy.key_policy,
                                  now=self.clock())

    def notify(self, registry: RegistryDevice, report: Report) -> None:
        """Tell a device it was admitted (NOTIFY_DEVICE), after any path that admitted it."""
        if self.notify_url is not None and notify.preauthorized(report):
            report.add(notify.tell(self.registry, registry, self.notify_url))

    # -- backfill ---------------------------------------------------------------------------
    def backfill(self, refs: Iterable[RegistryRef], *, dry_run: bool = False,
                 prune: PruneMode = PruneMode.OFF, fail_fast: bool = False,
                 progress: backfill.Progress | None = None) -> Report:
        """Reconcile every device of `refs`; with `prune`, decommission Mender devices that
        follow the template but that no listed registry device claims. Failures are recorded,
        never raised; Ctrl-C ends the run early with a report of what was and was not done."""
        refs = [self._checked(ref) for ref in refs]
        self.check_prune(refs, prune)
        return fleet.backfill(self, refs, dry_run=dry_run, prune=prune, fail_fast=fail_fast,
                              progress=progress)

    def check_prune(self, refs: Sequence[RegistryRef], prune: PruneMode) -> None:
        """InputError when pruning `refs` (empty: the whole scope) could decommission devices
        of other registries: the identity does not name the registry and `refs` are not the
        whole scope."""
        if prune is not PruneMode.ON or self.scope is None or self.policy.template.uses(
                "registry"):
            return
        if not refs:
            return  # the whole scope
        if set(refs) != set(self.registries()):
            raise InputError("pruning some registries would decommission the devices of the "
                             "others: prune over all of them, or name {registry} in the "
                             "identity template")

    def _checked(self, ref: RegistryRef) -> RegistryRef:
        self._check(ref)
        return ref


def _single(device: str, status: Status, detail: str, step: Step = Step.NOTHING) -> Report:
    return Report([Outcome(device, step, status, detail)])


def _relabel(action: Action, label: str) -> Action:
    return Action(action.kind, label, action.identity, action.pubkey, action.mender_id,
                  action.auth_id, action.reason, action.detail)
