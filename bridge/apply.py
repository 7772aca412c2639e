"""The one place that executes planned actions against Mender, and the backfill's throttle.

Every action is idempotent: a 409 on the first preauthorize means the device exists, so it is
read and re-planned; an auth set or device already gone counts as done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from bridge import logs
from bridge.errors import ApiError, NotFound, TransientApiError
from bridge.model import AlreadyExists, AuthStatus, MenderDevice, RegistryDevice
from bridge.ports import Mender
from bridge.reconcile import Action, Kind, Policy, Reason, plan
from bridge.report import Outcome, Report, Status

log = logs.get_logger("sync")


class Applier:
    """Executes one device's actions. `raise_transient`: let TransientApiError escape (the
    event path: the runtime answers 500 and Pub/Sub redelivers)."""

    def __init__(self, mender: Mender, policy: Policy, clock: Callable[[], datetime], *,
                 raise_transient: bool = False) -> None:
        self.mender = mender
        self.policy = policy
        self.clock = clock
        self.raise_transient = raise_transient

    def apply(self, registry: RegistryDevice | None, actions: list[Action], report: Report,
              *, prune: bool = False, replans: int = 2) -> bool:
        """Execute in order; returns False if an action failed."""
        ok = True
        for action in actions:
            if action.kind is Kind.NOTHING:
                report.record(action)
                continue
            try:
                status, detail, existing = self._execute(action)
            except ApiError as exc:
                if self.raise_transient and isinstance(exc, TransientApiError):
                    raise
                self._log(report.record(action, Status.FAILED, str(exc)))
                ok = False
                continue
            if existing is not None and registry is not None and replans > 0:
                try:
                    current = self._read(existing)
                except ApiError as exc:
                    if self.raise_transient and isinstance(exc, TransientApiError):
                        raise
                    report.record(action, Status.FAILED, f"exists; cannot read it: {exc}")
                    return False
                fresh = [a for a in plan(registry, current, self.policy, self.clock(),
                                         prune=prune) if a.reason is not Reason.KEY_PROBLEM]
                return self.apply(registry, fresh, report, prune=prune,
                                  replans=replans - 1) and ok
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
            if action.kind in (Kind.PREAUTHORIZE, Kind.PREAUTHORIZE_FORCE):
                assert action.identity is not None and action.pubkey is not None
                force = action.kind is Kind.PREAUTHORIZE_FORCE
                result = mender.preauthorize(action.identity, action.pubkey, force=force)
                if isinstance(result, AlreadyExists):
                    return Status.UNCHANGED, "identity exists in Mender", result.device.id
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
