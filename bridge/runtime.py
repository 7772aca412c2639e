"""The long-lived side of the entry points: settings and the Service, built once per process
on first use, and the handling of one event (decode, sync, log) into one decision — acknowledge
or deliver again — that every transport maps (push, CloudEvent, background, pull).

Shared by `functions/main.py`, `serve` and `listen`; nothing heavy is imported until needed.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from bridge import logs
from bridge.config import Settings
from bridge.errors import (
    AuthError,
    BridgeError,
    ConfigError,
    EventError,
    InputError,
    TransientApiError,
)
from bridge.model import DeviceChange, PruneMode
from bridge.report import Report, Status

if TYPE_CHECKING:
    from bridge.service import Service

# A configuration error is retried after this long: a fixed secret or a passing ADC outage
# must not need a redeploy, and a wrong setting must not be re-read on every event.
CONFIG_RETRY_S = 30.0
# A skip is worth a look (no usable key, blocked, not managed): a person may have to act.
_LEVEL = {Status.FAILED: logging.ERROR, Status.CONFLICT: logging.WARNING,
          Status.SKIPPED: logging.WARNING}


class Verdict(enum.StrEnum):
    DONE = "done"
    FAILED = "failed"  # failed for good: acknowledged, logged
    IGNORED = "ignored"  # unreadable, or outside the scope: acknowledged, logged
    RETRY = "retry"  # transient failure, configuration error or bug: deliver again


@dataclass(frozen=True)
class EventResult:
    """What became of one delivered event; every transport maps it (ack or deliver again)."""

    verdict: Verdict
    reason: str = ""
    change: DeviceChange | None = None
    report: Report | None = None
    retry_after: float | None = None

    @property
    def ack(self) -> bool:
        return self.verdict is not Verdict.RETRY


class Runtime:
    """Settings and Service of one process, built lazily and once (thread-safe). Its redactor
    blanks the secrets of its settings in every log line of the handlers configured with it."""

    def __init__(self, load: Callable[[], Settings],
                 build: Callable[[Settings], Service] | None = None, *,
                 logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load, self._build, self._clock = load, build, clock
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._service: Service | None = None
        self._error: tuple[ConfigError, float] | None = None
        self.redactor = logs.Redactor()
        self.log = logger or logs.get_logger("runtime")
        self.last_reconcile: dict[str, Any] = {}
        self.last_successful_reconcile: dict[str, Any] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kwargs: Any) -> Runtime:
        return cls(lambda: Settings.from_env(env), **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, env: Mapping[str, str], **kwargs: Any) -> Runtime:
        return cls(lambda: Settings.from_toml(path, env), **kwargs)

    def settings(self) -> Settings:
        with self._lock:
            return self._settings_locked()

    def service(self) -> Service:
        with self._lock:
            settings = self._settings_locked()
            if self._service is None:
                try:
                    self._service = (self._build or _default_build)(settings)
                except ConfigError as exc:
                    self._fail(exc)
                    raise
            return self._service

    def _settings_locked(self) -> Settings:
        if self._error is not None:
            error, since = self._error
            if self._clock() - since < CONFIG_RETRY_S:
                raise error
            self._error = None
        if self._settings is None:
            try:
                settings = self._load()
            except ConfigError as exc:
                self._fail(exc)
                raise
            self.redactor.add(*settings.secret_values())
            logging.getLogger(logs.LOGGER_NAME).setLevel(settings.log_level)
            self._settings = settings
        return self._settings

    def _fail(self, exc: ConfigError) -> None:
        self._error = (exc, self._clock())
        logs.emit(self.log, logging.CRITICAL, f"configuration error: {exc}",
                  problems=exc.problems, outcome="config_error")

    def close(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.close()
                self._service = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- events -----------------------------------------------------------------------------
    def handle_cloudevent(self, attributes: Mapping[str, object], data: object) -> EventResult:
        from bridge import events

        message_id = attributes.get("id")
        return self.handle(lambda: events.decode_cloudevent(attributes, data),
                           message_id=str(message_id)[:256] if message_id else None)

    def handle_background(self, event: Mapping[str, Any], context: object) -> EventResult:
        from bridge import events

        return self.handle(lambda: events.decode_background(event, context))

    def handle_push(self, body: bytes | Mapping[str, Any]) -> EventResult:
        from bridge import events

        return self.handle(lambda: events.decode_push(body))

    def handle_message(self, data: bytes, attributes: Mapping[str, str] | None = None,
                       message_id: str | None = None) -> EventResult:
        """A pulled Pub/Sub message whose data is the LogEntry JSON a Logging sink published."""
        from bridge import events

        return self.handle(lambda: events.decode_entry_bytes(data, message_id),
                           message_id=message_id)

    def handle(self, decode: Callable[[], DeviceChange], *,
               message_id: str | None = None) -> EventResult:
        """Decode and apply one event; never raises (but for KeyboardInterrupt/SystemExit)."""
        try:
            change = decode()
        except EventError as exc:
            return self._ignored(f"event ignored: {exc}", message_id=message_id)
        fields = change_fields(change)
        try:
            service = self.service()
            logs.emit(self.log, logging.INFO, f"event {change.kind} {change.label}", **fields)
            report = service.handle_change(change)
        except InputError as exc:
            return self._ignored(f"event ignored: {exc}", change, **fields)
        except TransientApiError as exc:
            logs.emit(self.log, logging.WARNING, f"transient failure, the event will be "
                      f"delivered again: {exc}", outcome="retry", **fields)
            return EventResult(Verdict.RETRY, str(exc), change, retry_after=exc.retry_after)
        except ConfigError as exc:
            return EventResult(Verdict.RETRY, f"configuration error: {exc}", change)
        except AuthError as exc:
            logs.emit(self.log, logging.CRITICAL, f"credentials refused, the event will be "
                      f"delivered again once they are fixed: {exc}", outcome="retry", **fields)
            return EventResult(Verdict.RETRY, str(exc), change)
        except BridgeError as exc:
            logs.emit(self.log, logging.ERROR, f"permanent failure, event acknowledged: {exc}",
                      outcome="failed", **fields)
            return EventResult(Verdict.FAILED, str(exc), change)
        except Exception as exc:  # a bug: its traceback logged; the dead-letter policy bounds it
            logs.emit(self.log, logging.ERROR, f"internal error, the event will be delivered "
                      f"again: {exc!r}", exc_info=True, outcome="retry", **fields)
            return EventResult(Verdict.RETRY, f"internal error: {type(exc).__name__}", change)
        self.log_report(report, **fields)
        verdict = Verdict.FAILED if report.failed else Verdict.DONE
        return EventResult(verdict, "an action failed" if report.failed else "", change, report)

    def _ignored(self, message: str, change: DeviceChange | None = None,
                 **fields: Any) -> EventResult:
        logs.emit(self.log, logging.WARNING, message, outcome="ignored", **fields)
        return EventResult(Verdict.IGNORED, message.removeprefix("event ignored: "), change)

    def log_report(self, report: Report, *, skip_unchanged: bool = False, **fields: Any) -> None:
        """One line per action of `report`, with its outcome."""
        for item in report.outcomes:
            if skip_unchanged and item.status is Status.UNCHANGED:
                continue
            line = {**fields, "device": item.device, "action": str(item.action),
                    "outcome": str(item.status), "detail": item.detail or None,
                    "target": item.target or None}
            message = f"{item.action} {item.device}: {item.status}"
            if item.detail:
                message += f" ({item.detail})"
            logs.emit(self.log, _LEVEL.get(item.status, logging.INFO), message, **line)

    # -- webhook and scheduled reconcile ---------------------------------------------------
    def provision(self, registry: str, device_id: str) -> Report:
        """Sync one device on request. InputError (bad or out-of-scope name),
        TransientApiError and ConfigError propagate for the caller to map."""
        service = self.service()
        fields: dict[str, Any] = {"device": f"{str(registry)[-80:]}/{device_id[:80]}",
                                  "kind": "provision"}
        logs.emit(self.log, logging.INFO, f"provision {fields['device']}", **fields)
        report = service.sync_device(registry, device_id)
        self.log_report(report, **fields)
        return report

    def reconcile(self, prune: PruneMode | None = None) -> Report:
        """Backfill the whole scope; RECONCILE_PRUNE says whether it prunes."""
        service = self.service()
        mode = prune or PruneMode(self.settings().reconcile_prune)
        started, requests = time.time(), _mender_requests(service)
        report = service.backfill(prune=mode)
        self.log_report(report, skip_unchanged=True)
        outcome = "failed" if report.failed else "done"
        # What the run cost: an in-sync fleet costs list calls only, and writes nothing.
        cost = {"seconds": round(time.time() - started, 3),
                "mender_requests": _mender_requests(service) - requests,
                "writes": sum(o.status is Status.DONE for o in report.outcomes)}
        logs.emit(self.log, logging.ERROR if report.failed else logging.INFO,
                  "reconcile finished", summary=report.summary(), outcome=outcome, cost=cost)
        self.last_reconcile = {"finished_at": time.time(), **cost, "outcome": outcome,
                               "devices": report.devices()}
        if not report.failed:
            self.last_successful_reconcile = self.last_reconcile
        return report

    def health(self) -> dict[str, Any]:
        """`ok` unless the configuration is broken; the last reconcile's outcome if any."""
        try:
            self.settings()
        except ConfigError:
            return {"status": "unhealthy", "reason": "configuration error; see the logs"}
        return {"status": "ok", "last_reconcile": self.last_reconcile or None,
                "last_successful_reconcile": self.last_successful_reconcile or None}


def change_fields(change: DeviceChange) -> dict[str, Any]:
    return {"device": change.label, "registry": change.ref.path, "kind": str(change.kind),
            "message_id": change.message_id}


def _mender_requests(service: Service) -> int:
    """Requests the Mender clients sent so far (their pacers count every one)."""
    return sum(p.passed + p.limited for p in (b.mender.pace() for b, _ in service.targets))


def _default_build(settings: Settings) -> Service:
    from bridge.factory import build_service

    return build_service(settings)
