"""The long-lived side of the entry points: settings and the Bridge, built once per process
on first use, and the handling of one event (decode, sync, log, ack or retry). Shared by
`functions/main.py` and `mender-bridge serve`; nothing heavy is imported until an event needs it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge import logs
from bridge.config import Settings
from bridge.errors import BridgeError, ConfigError, EventError, TransientApiError
from bridge.model import RegistryRef

if TYPE_CHECKING:
    from bridge.events import DeviceChange
    from bridge.sync import Bridge, Report

# A skip is worth a look (no usable key, blocked, not managed): a person may have to act.
_STATUS_LEVEL = {"failed": logging.ERROR, "conflict": logging.WARNING, "skipped": logging.WARNING}


@dataclass(frozen=True)
class EventResult:
    """What became of one delivered event that is to be acknowledged (a retry raises instead)."""

    outcome: str  # "done", "failed" (acknowledged anyway) or "ignored" (unreadable)
    change: DeviceChange | None
    report: Report | None
    reason: str = ""


class Runtime:
    """Settings and Bridge of one process, built lazily and once (thread-safe).

    A configuration error is logged once, in one line, and raised again on every use: the
    function answers 500, so Pub/Sub keeps the events until the configuration is fixed.
    """

    def __init__(
        self,
        load: Callable[[], Settings],
        build: Callable[[Settings], Bridge] | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self._load = load
        self._build = build
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._bridge: Bridge | None = None
        self._error: ConfigError | None = None
        self.log = logger or logs.get_logger("runtime")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kwargs: Any) -> Runtime:
        return cls(lambda: Settings.from_env(env), **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, env: Mapping[str, str], **kwargs: Any) -> Runtime:
        return cls(lambda: Settings.from_toml(path, env), **kwargs)

    def settings(self) -> Settings:
        with self._lock:
            return self._settings_locked()

    def bridge(self) -> Bridge:
        with self._lock:
            settings = self._settings_locked()
            if self._bridge is None:
                build = self._build or _default_build
                try:
                    self._bridge = build(settings)
                except ConfigError as exc:
                    self._fail(exc)
                    raise
            return self._bridge

    def _settings_locked(self) -> Settings:
        if self._error is not None:
            raise self._error
        if self._settings is None:
            try:
                settings = self._load()
            except ConfigError as exc:
                self._fail(exc)
                raise
            logs.redact(*settings.secret_values())
            logging.getLogger(logs.LOGGER_NAME).setLevel(settings.log_level)
            self._settings = settings
        return self._settings

    def _fail(self, exc: ConfigError) -> None:
        self._error = exc
        logs.emit(self.log, logging.CRITICAL, f"configuration error: {exc}",
                  problems=exc.problems, outcome="config_error")

    # -- events -----------------------------------------------------------------------------

    def handle_cloudevent(self, attributes: Mapping[str, object], data: object) -> EventResult:
        from bridge import events

        message_id = attributes.get("id")
        return self.handle(lambda: events.decode_cloudevent(attributes, data),
                           message_id=str(message_id) if message_id else None)

    def handle_background(self, event: Mapping[str, Any], context: object) -> EventResult:
        from bridge import events

        message_id = getattr(context, "event_id", None)
        return self.handle(lambda: events.decode_background(event, context),
                           message_id=str(message_id) if message_id else None)

    def handle_push(self, body: bytes | Mapping[str, Any]) -> EventResult:
        from bridge import events

        return self.handle(lambda: events.decode_push(body), message_id=_push_id(body))

    def handle(
        self, decode: Callable[[], DeviceChange], *, message_id: str | None = None
    ) -> EventResult:
        """Decode and apply one event. Returns when it is to be acknowledged; raises
        (TransientApiError, ConfigError, a bug) when Pub/Sub should deliver it again."""
        try:
            change = decode()
        except EventError as exc:
            logs.emit(self.log, logging.WARNING, f"event ignored: {exc}",
                      outcome="ignored", message_id=message_id)
            return EventResult("ignored", None, None, str(exc))
        fields = change_fields(change)
        bridge = self.bridge()
        logs.emit(self.log, logging.INFO, f"event {change.kind} {fields['device']}", **fields)
        try:
            report = bridge.handle_change(change)
        except TransientApiError as exc:
            logs.emit(self.log, logging.WARNING,
                      f"transient failure, the event will be delivered again: {exc}",
                      outcome="retry", **fields)
            raise
        except ConfigError:
            raise
        except BridgeError as exc:
            logs.emit(self.log, logging.ERROR, f"permanent failure, event acknowledged: {exc}",
                      outcome="failed", **fields)
            return EventResult("failed", change, None, str(exc))
        self.log_report(report, **fields)
        device_id = change.device_id or change.num_id
        if not report.failed and change.kind != "delete" and device_id:
            self._notify(bridge, change.ref, device_id, report)
        return EventResult("failed" if report.failed else "done", change, report)

    def log_report(self, report: Report, *, skip_unchanged: bool = False, **fields: Any) -> None:
        """One line per action of `report`, with its outcome."""
        for outcome in report.outcomes:
            if skip_unchanged and outcome.status == "unchanged":
                continue
            line = {**fields, "device": outcome.device, "action": outcome.action,
                    "outcome": outcome.status, "detail": outcome.detail or None}
            message = f"{outcome.action} {outcome.device}: {outcome.status}"
            if outcome.detail:
                message += f" ({outcome.detail})"
            logs.emit(self.log, _STATUS_LEVEL.get(outcome.status, logging.INFO), message, **line)

    def _notify(self, bridge: Bridge, ref: RegistryRef, device_id: str, report: Report) -> None:
        settings = self.settings()
        if settings.notify_device:
            from bridge import notify

            notify.after_sync(bridge.registry, ref, device_id, settings.mender_url, report,
                              self.log)

    # -- webhook and scheduled reconcile ---------------------------------------------------------

    def provision(self, ref: RegistryRef, device_id: str) -> Report:
        """Sync one device on request; TransientApiError propagates."""
        bridge = self.bridge()
        fields: dict[str, Any] = {"device": f"{ref.registry}/{device_id}",
                                  "registry": ref.path, "kind": "provision"}
        logs.emit(self.log, logging.INFO, f"provision {fields['device']}", **fields)
        try:
            report = bridge.sync_device(ref, device_id)
        except TransientApiError as exc:
            logs.emit(self.log, logging.WARNING, f"transient failure, retry later: {exc}",
                      outcome="retry", **fields)
            raise
        self.log_report(report, **fields)
        if not report.failed:
            self._notify(bridge, ref, device_id, report)
        return report

    def registry_ref(self, name: str) -> RegistryRef:
        """A configured registry by short name or full path; ValueError if not acceptable."""
        settings = self.settings()
        if "/" not in name and name and not settings.iot_project:
            raise ValueError("IOT_PROJECT is not set: give the registry's full path "
                             "projects/P/locations/L/registries/R")
        ref = settings.registry_ref(name)
        allowed = {r.path for r in settings.registry_refs}
        if allowed and ref.path not in allowed:
            raise ValueError(f"registry {ref.path} is not one the bridge is configured for")
        return ref

    def reconcile(self) -> Report:
        """Backfill every configured registry (all registries of the location if none)."""
        bridge = self.bridge()
        settings = self.settings()
        refs = settings.registry_refs or bridge.registry.list_registries(
            settings.iot_project or "", settings.iot_location)
        logs.emit(self.log, logging.INFO, f"reconcile {len(refs)} registries",
                  registries=[r.path for r in refs])
        report = bridge.backfill(refs)
        self.log_report(report, skip_unchanged=True)
        logs.emit(self.log, logging.ERROR if report.failed else logging.INFO,
                  "reconcile finished", summary=report.summary(),
                  outcome="failed" if report.failed else "done")
        return report


def change_fields(change: DeviceChange) -> dict[str, Any]:
    device = change.device_id or change.num_id or "?"
    return {
        "device": f"{change.ref.registry}/{device}",
        "registry": change.ref.path,
        "kind": str(change.kind),
        "message_id": change.message_id,
    }


def _push_id(body: bytes | Mapping[str, Any]) -> str | None:
    """The messageId of a push body, best effort, to name an event that cannot be read."""
    try:
        parsed = json.loads(body) if isinstance(body, bytes | str) else body
        value = parsed["message"].get("messageId") or parsed["message"].get("message_id")
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) and len(value) <= 256 else None


def _default_build(settings: Settings) -> Bridge:
    import warnings

    # google.api_core warns at import about its Python support schedule: an unstructured
    # stderr line per instance, not actionable by whoever reads the function's logs.
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")
    from bridge.factory import build_bridge

    return build_bridge(settings)
