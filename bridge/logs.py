"""Structured logs in Cloud Logging's format: one JSON line per event and per action.

Cloud Functions and Cloud Run turn a JSON line on stdout into a LogEntry (`severity`,
`message`, `logging.googleapis.com/labels`; other keys land in `jsonPayload`). Every line
passes through a redactor that blanks registered secrets, whatever logged them.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

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
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def redact(*secrets: str | None) -> None:
    """Register secret values that must never appear in a log line (tokens, passwords)."""
    with _secrets_lock:
        # Very short values would blank unrelated text; they are not credentials anyway.
        _secrets.update(s for s in secrets if s and len(s) >= 6)


def scrub(text: str) -> str:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
        escaped = json.dumps(secret)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, REDACTED)
    return text


class JsonFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging structured JSON line."""

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
        return scrub(json.dumps(payload, default=str, ensure_ascii=False))


class _StdoutHandler(logging.Handler):
    """Writes to whatever `sys.stdout` is at emit time (test capture, framework wrappers)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def configure(level: str = "INFO", stream: TextIO | None = None) -> logging.Logger:
    """Send the bridge's logs as JSON lines to `stream` (stdout by default). Idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if getattr(old, "_mender_bridge", False):
            logger.removeHandler(old)
    handler: logging.Handler = (
        _StdoutHandler() if stream is None else logging.StreamHandler(stream)
    )
    handler.setFormatter(JsonFormatter())
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
