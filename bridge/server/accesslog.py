"""One Cloud Logging line per request `serve` answered, with its `httpRequest` field.

The query string is never logged: a caller may put a secret there. The path is logged
percent-decoded (up to three times), so the redactor of the log handler meets a secret hidden
in it in plain text, whatever its encoding; waitress's header limit bounds its length.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import unquote

from bridge import logs

_LOG = logs.get_logger("http")


def shown_path(path: str) -> str:
    """A request path (waitress gives it decoded once, as Latin-1) fit for a log line."""
    text = path.encode("latin-1", "replace").decode("utf-8", "replace")
    for _ in range(3):
        decoded = unquote(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return text


def request_url(path: str, query: str) -> str:
    return shown_path(path) + ("?[redacted]" if query else "")


def log_task(task: Any) -> None:
    """Log a waitress task (a WSGI answer or one of waitress's own error answers)."""
    request = task.request
    method = getattr(request, "command", "") or "-"
    url = request_url(getattr(request, "path", "") or "-", getattr(request, "query", ""))
    try:
        status = int(str(task.status).split()[0])
    except (ValueError, IndexError):
        status = 0
    elapsed = max(time.time() - task.start_time, 0.0) if task.start_time else 0.0
    http = {
        "requestMethod": method,
        "requestUrl": url,
        "status": status,
        "responseSize": str(task.content_bytes_written),
        "remoteIp": str(task.channel.addr[0]) if task.channel.addr else None,
        "latency": f"{elapsed:.3f}s",
        "protocol": f"HTTP/{request.version}" if request.version else None,
    }
    message = f"{method} {url} {status}"
    error = request.error
    reason = None
    if error is not None:
        # Waitress's error bodies quote the offending input after the first '"': keep the
        # fixed part only.
        reason = f"{error.reason}: {str(error.body).partition(chr(34))[0].strip()}"
        message += f" ({reason})"
    level = logging.ERROR if status >= 500 else logging.INFO
    logs.emit(_LOG, level, message, httpRequest={k: v for k, v in http.items() if v},
              error=reason)
