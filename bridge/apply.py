"""The one place that executes planned actions against Mender.

Every action is idempotent: a 409 on the first preauthorize means the device exists, so it is
read and re-planned; an auth set or device already gone counts as done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bridge import logs
from bridge.actions import ADMITTING
from bridge.errors import ApiError, AuthError, NotFound, TransientApiError
from bridge.model import (
    MENDER_SERVICE,
    AlreadyExists,
    AuthStatus,
    MenderDevice,
    RegistryDevice,
)
from bridge.ports import Mender
from bridge.reconcile import Action, Kind, Policy, Reason, plan
from bridge.report import Outcome, Report, Status

log = logs.get_logger("sync")
DECOMMISSION_RETRY_S = 5.0


class Applier:
    """Executes one device's actions. `raise_transient`: let TransientApiError escape (the
    event path: the runtime answers 500 and Pub/Sub redelivers). `collides`: asked before an
    existing Mender device (a 409) is changed for a registry device; a reason it gives (the
    identity belongs to another registry's device too) stops it as a conflict."""

    def __init__(self, mender: Mender, policy: Policy, clock: Callable[[], datetime], *,
                 raise_transient: bool = False,
                 collides: Callable[[RegistryDevice], str | None] | None = None) -> None:
        self.mender = mender
        self.policy = policy
        self.clock = clock
        self.raise_transient = raise_transient
        self.collides = collides
        # Ids of devices this applier created (from a 201's Location): a device deleted from
        # the registry meanwhile is then found in deviceauth, not in the lagging inventory.
        self.created: list[str] = []
        self.admitted: set[str] = set()  # devices a preauthorization of this applier admitted
        self._cleared: set[str] = set()

    def _conflict(self, registry: RegistryDevice) -> str | None:
        """Whether another registry's device holds the same identity; asked once per device,
        before anything existing in Mender is changed for it."""
        label = str(registry)
        if self.collides is None or label in self._cleared:
            return None
        reason = self.collides(registry)
        if reason is None:
            self._cleared.add(label)
        return reason

    def apply(self, registry: RegistryDevice | None, actions: list[Action], report: Report,
              *, prune: bool = False, replans: int = 2) -> bool:
        """Execute in order; returns False if an action failed."""
        ok = True
        for action in actions:
            if action.kind is Kind.NOTHING:
                report.record(action)
                continue
            if registry is not None and action.mender_id is not None and (
                    conflict := self._conflict(registry)):
                report.record(action, Status.CONFLICT, conflict)
                return ok
            try:
                status, detail, existing = self._execute(action)
            except AuthError:
                raise  # the bridge's credentials, not this device: the caller stops
            except ApiError as exc:
                if self.raise_transient and isinstance(exc, TransientApiError):
                    raise
                self._log(report.record(action, Status.FAILED, str(exc)))
                ok = False
                continue
            if existing is not None and registry is not None and replans == 0:
                # The device changed under every re-plan: try again later, never ack it so.
                error = TransientApiError(f"{action.device}: the Mender device keeps changing "
                                          "while it is reconciled", service=MENDER_SERVICE)
                if self.raise_transient:
                    raise error
                self._log(report.record(action, Status.FAILED, str(error)))
                return False
            if existing is not None and registry is not None:
                try:
                    if conflict := self._conflict(registry):
                        report.record(action, Status.CONFLICT, conflict)
                        return ok
                    current = self._read(existing)
                    if current is not None and current.decommissioning:
                        # Mender removes a decommissioned device asynchronously; until its
                        # workflow ends, the identity answers 409 (docs/mender-api.md).
                        raise TransientApiError(
                            f"{action.device}: the Mender device with this identity is still "
                            "being decommissioned", service=MENDER_SERVICE,
                            retry_after=DECOMMISSION_RETRY_S)
                except ApiError as exc:
                    if self.raise_transient and isinstance(exc, TransientApiError):
                        raise
                    report.record(action, Status.FAILED, f"exists; cannot read it: {exc}")
                    return False
                fresh = [a for a in plan(registry, current, self.policy, self.clock(),
                                         prune=prune) if a.reason is not Reason.KEY_PROBLEM]
                return self.apply(registry, fresh, report, prune=prune,
                                  replans=replans - 1) and ok
            if status is Status.DONE and action.kind in ADMITTING:
                self.admitted.add(action.device)
            self._log(report.record(action, status, detail))
        return ok

    def _read(self, device_id: str) -> MenderDevice | None:
        try:
            return self.mender.get_device(device_id)
        except NotFound:
            return None  # gone since the 409: the re-plan creates it again

    def _execute(self, action: Action) -> tuple[Status, str | None, str | None]:
        """(status, detail or None for the action's own, id of an existing device on 409)."""
        mender = self.mender
        try:
            if action.kind in ADMITTING:
                assert action.identity is not None and action.pubkey is not None
                force = action.kind is Kind.PREAUTHORIZE_FORCE
                result = mender.preauthorize(action.identity, action.pubkey, force=force)
                if isinstance(result, AlreadyExists):
                    return Status.UNCHANGED, "identity exists in Mender", result.device.id
                if not force and result.location_id:
                    self.created.append(result.location_id)
                return Status.DONE, None, None
            assert action.mender_id is not None
            if action.kind is Kind.DECOMMISSION:
                mender.decommission(action.mender_id)
                return Status.DONE, None, None
            assert action.auth_id is not None
            if action.kind is Kind.DELETE_AUTH_SET:
                mender.delete_auth_set(action.mender_id, action.auth_id)
            else:
                target = AuthStatus.ACCEPTED if action.kind is Kind.ACCEPT else AuthStatus.REJECTED
                mender.set_auth_status(action.mender_id, action.auth_id, target)
            return Status.DONE, None, None
        except NotFound:
            return Status.UNCHANGED, "already gone in Mender", None

    @staticmethod
    def _log(item: Outcome) -> None:
        # The entry points log the whole report; here only what helps debugging a run.
        level = logging.WARNING if item.status == Status.FAILED else logging.DEBUG
        if log.isEnabledFor(level):
            logs.emit(log, level, f"{item.action} {item.device}: {item.status} ({item.detail})",
                      device=item.device, action=item.action, outcome=item.status)
