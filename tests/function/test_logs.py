"""bridge.logs: Cloud Logging structured lines, labels, stack traces and redaction."""

from __future__ import annotations

import logging
from urllib.parse import quote, quote_plus

from bridge import logs
from tests.function.helpers import LogCapture


def test_a_line_is_cloud_logging_structured_json_with_labels(logbuf: LogCapture) -> None:
    logs.emit(logs.get_logger("t"), logging.WARNING, "preauthorize fleet/d: conflict",
              device="fleet/d", action="preauthorize", outcome="conflict", message_id="42",
              detail=None)
    [line] = logbuf.records()
    assert line["severity"] == "WARNING"
    assert line["message"] == "preauthorize fleet/d: conflict"
    assert line["message_id"] == "42" and "detail" not in line
    assert line["logging.googleapis.com/labels"] == {
        "device": "fleet/d", "action": "preauthorize", "outcome": "conflict"}
    assert line["logging.googleapis.com/sourceLocation"]["function"] == (
        "test_a_line_is_cloud_logging_structured_json_with_labels")


def test_an_exception_is_one_line_with_its_stack_trace(logbuf: LogCapture) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logs.get_logger("t").exception("it failed")
    [line] = logbuf.records()
    assert line["severity"] == "ERROR"
    assert "RuntimeError: boom" in line["stack_trace"]
    assert len(logbuf.getvalue().strip().splitlines()) == 1


def test_registered_secrets_are_blanked_even_json_escaped_or_percent_encoded(
        logbuf: LogCapture) -> None:
    secret = 'sekr"et-with\\quote/+ 123'
    buf = LogCapture()
    logs.configure("INFO", stream=buf, redactor=logs.Redactor(secret, None, "", "short"))
    log = logs.get_logger("t")
    log.info("header Bearer %s end", secret)
    log.info("GET /x?a=1&token=%s", quote(secret, safe=""))
    log.info("form token=%s", quote_plus(secret))
    log.info("short stays")
    assert "sekr" not in buf.getvalue()
    assert buf.messages() == ["header Bearer [redacted] end", "GET /x?a=1&token=[redacted]",
                              "form token=[redacted]", "short stays"]


def test_redactors_are_per_runtime_not_global(logbuf: LogCapture) -> None:
    first, second = LogCapture(), LogCapture()
    logs.configure("INFO", stream=first, redactor=logs.Redactor("secret-of-one"))
    logs.get_logger("t").info("secret-of-one secret-of-two")
    logs.configure("INFO", stream=second, redactor=logs.Redactor("secret-of-two"))
    logs.get_logger("t").info("secret-of-one secret-of-two")
    assert first.messages() == ["[redacted] secret-of-two"]
    assert second.messages() == ["secret-of-one [redacted]"]


def test_configure_is_idempotent(logbuf: LogCapture) -> None:
    logs.configure("INFO", stream=logbuf)
    logs.configure("INFO", stream=logbuf)
    logs.get_logger().debug("hidden")
    logs.get_logger().info("once")
    assert logbuf.messages() == ["once"]
