"""The stand-in's Logging sink: publishes audit LogEntries to a Pub/Sub topic as a sink does,
the entry's JSON as the message data and its timestamp in `logging.googleapis.com/timestamp`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bridge.pubsub import clients

TIMESTAMP_ATTRIBUTE = "logging.googleapis.com/timestamp"
_PUBLISH_TIMEOUT = 10.0


class TopicSink:
    """Publishes to `topic` on the emulator at `emulator_host` (or Google, when None)."""

    def __init__(self, topic: str, emulator_host: str | None) -> None:
        self.topic = clients.resource_name(topic, "topics")
        self._client = clients.publisher(emulator_host)

    def publish(self, items: Sequence[tuple[str, bytes]]) -> list[str]:
        """Publish each (topic, entry JSON) at once, then wait for all; one error text per
        item, empty when it was published."""
        from google.api_core.retry import Retry

        retry = Retry(timeout=_PUBLISH_TIMEOUT)
        futures = []
        for topic, body in items:
            entry = json.loads(body)
            stamp = entry.get("timestamp", "") if isinstance(entry, dict) else ""
            futures.append(self._client.publish(topic, body, retry=retry,
                                                timeout=_PUBLISH_TIMEOUT,
                                                **{TIMESTAMP_ATTRIBUTE: str(stamp)}))
        errors = []
        for future in futures:
            try:
                future.result(timeout=_PUBLISH_TIMEOUT * 2)
                errors.append("")
            except Exception as exc:  # any failure: the queue retries it
                errors.append(f"publish failed: {type(exc).__name__}")
        return errors

    def close(self) -> None:
        self._client.stop()
        self._client.transport.close()
