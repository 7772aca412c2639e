"""The stand-in's Logging sink: publishes audit LogEntries to a Pub/Sub topic as a sink does,
the entry's JSON as the message data and its timestamp in `logging.googleapis.com/timestamp`.

It makes its own publisher client (a few lines like `bridge.pubsub.clients`, on purpose): the
stand-ins share no code with the bridge they test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

TIMESTAMP_ATTRIBUTE = "logging.googleapis.com/timestamp"
_TOPIC = re.compile(r"projects/[a-z][a-z0-9\-]{4,28}[a-z0-9]/topics/[A-Za-z][\w\-.~+%]{2,254}")
_PUBLISH_TIMEOUT = 10.0


class TopicSink:
    """Publishes to `topic` on the emulator at `emulator_host` (or Google, when None)."""

    def __init__(self, topic: str, emulator_host: str | None) -> None:
        if not _TOPIC.fullmatch(topic):
            raise ValueError(f"{topic[:120]!r} is not a topic name projects/PROJECT/topics/NAME")
        self.topic = topic
        self._client = _publisher(emulator_host)

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


def _publisher(emulator_host: str | None) -> Any:
    """A publisher on Google, or on the emulator's plaintext gRPC at `host:port`."""
    from google.cloud.pubsub_v1 import PublisherClient
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    if emulator_host is None:
        return PublisherClient()
    import grpc  # type: ignore[import-untyped]

    channel = grpc.insecure_channel(emulator_host)
    return PublisherClient(transport=PublisherGrpcTransport(channel=channel))
