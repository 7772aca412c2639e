"""Structured logs in Cloud Logging's format: one JSON line per event and per action.

Cloud Functions and Cloud Run turn a JSON line on stdout into a LogEntry (`severity`,
`message`, `logging.googleapis.com/labels`; other keys land in `jsonPayload`). Every line
passes through the `Redactor` its handler was configured with (one per runtime), which blanks
that runtime's secrets, raw, JSON-escaped or percent-encoded, whatever logged them.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

LOGGER_NAME = "mender_bridge"
LABELS_KEY = "logging.googleapis.com/labels"
SOURCE_KEY = "logging.googleapis.com/sourceLocation"
REDACTED = "[redacted]"
# Labels are indexed by Cloud Logging: keep them few, short and string-valued.
_LABEL_FIELDS = ("device", "registry", "action", "outcome")
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class Redactor:
    """The secret values that must never appear in a log line (tokens, passwords)."""

    def __init__(self, *secrets: str | None) -> None:
        self._forms: list[str] = []
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        forms = set()
        for secret in secrets:
            # Very short values would blank unrelated text; they are not credentials anyway.
            if not secret or len(secret) < 6:
                continue
            forms.update({secret, json.dumps(secret)[1:-1], quote(secret, safe=""),
                          quote_plus(secret, safe=""), quote(secret, safe="").lower()})
        with self._lock:
            self._forms = sorted(set(self._forms) | forms, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        with self._lock:
            forms = self._forms
        for form in forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text


class JsonFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging structured JSON line, secrets redacted."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            payload.update({k: v for k, v in fields.items() if v is not None})
        labels = {k: str(payload[k]) for k in _LABEL_FIELDS if k in payload}
        if labels:
            payload[LABELS_KEY] = labels
        if record.exc_info:
            # Error Reporting picks up a stack trace found in `stack_trace`.
            payload["stack_trace"] = self.formatException(record.exc_info)
        payload[SOURCE_KEY] = {
            "file": record.pathname,
            "line": str(record.lineno),
            "function": record.funcName,
        }
        return self.redactor.scrub(json.dumps(payload, default=str, ensure_ascii=False))


class _StdoutHandler(logging.Handler):
    """Writes to whatever `sys.stdout` is at emit time (test capture, framework wrappers)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def configure(level: str = "INFO", stream: TextIO | None = None,
              redactor: Redactor | None = None) -> logging.Logger:
    """Send the bridge's logs as JSON lines to `stream` (stdout by default), with `redactor`
    blanking secrets. Idempotent: it replaces the handler an earlier call installed."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if getattr(old, "_mender_bridge", False):
            logger.removeHandler(old)
    handler: logging.Handler = (
        _StdoutHandler() if stream is None else logging.StreamHandler(stream)
    )
    handler.setFormatter(JsonFormatter(redactor))
    handler._mender_bridge = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    # Our lines are complete; a root handler (or the framework's) would print them twice.
    logger.propagate = False
    return logger


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def emit(
    logger: logging.Logger,
    level: int,
    message: str,
    /,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log `message` with structured fields (device, action, outcome, message_id, ...)."""
    logger.log(level, message, extra={"fields": fields}, exc_info=exc_info, stacklevel=2)
