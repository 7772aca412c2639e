"""bridge.logs: Cloud Logging structured lines, labels, stack traces and redaction."""

from __future__ import annotations

import logging

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


def test_registered_secrets_are_blanked_even_json_escaped(logbuf: LogCapture) -> None:
    secret = 'tok"en-with\\quote-123'
    logs.redact(secret, None, "")
    logs.get_logger("t").info("header Bearer %s end", secret)
    text = logbuf.getvalue()
    assert "tok" not in text
    assert logbuf.records()[0]["message"] == "header Bearer [redacted] end"


def test_configure_is_idempotent(logbuf: LogCapture) -> None:
    logs.configure("INFO", stream=logbuf)
    logs.configure("INFO", stream=logbuf)
    logs.get_logger().debug("hidden")
    logs.get_logger().info("once")
    assert logbuf.messages() == ["once"]
