"""Dead letters of the event path: what Pub/Sub parked on the dead-letter subscription after
too many failed deliveries (listed without consuming it), and its replay to the main topic,
each message acknowledged only once its copy is published.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bridge.errors import EventError
from bridge.model import ChangeKind

# Attributes Pub/Sub adds to a dead-lettered message (docs/pubsub.md).
SOURCE_PREFIX = "CloudPubSubDeadLetterSource"
_METHOD = {ChangeKind.CREATE: "CreateDevice", ChangeKind.UPDATE: "UpdateDevice",
           ChangeKind.DELETE: "DeleteDevice"}
_PULL_TIMEOUT_S = 10.0
_MORE_TIMEOUT_S = 2.0
_PUBLISH_TIMEOUT_S = 30.0
_BATCH = 500  # ack ids per acknowledge/modify request, well under the request size limit


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    device: str  # registry/device id as the entry names it, "?" if it cannot be read
    method: str  # CreateDevice, UpdateDevice, DeleteDevice, or "unreadable"
    delivery_count: int | None
    source_subscription: str | None
    published: str | None  # when the original message was published
    # Pub/Sub keeps no error with a dead letter; the worker's logs have it (by device).
    first_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(message: Any) -> DeadLetter:
    """A pulled dead-letter PubsubMessage as an operator reads it (hostile data: validated)."""
    from bridge.events import decode_entry_bytes

    attributes = dict(message.attributes)
    try:
        change = decode_entry_bytes(bytes(message.data))
        device, method = change.label, _METHOD[change.kind]
    except EventError:
        device, method = "?", "unreadable"
    count = attributes.get(f"{SOURCE_PREFIX}DeliveryCount", "")
    project = attributes.get(f"{SOURCE_PREFIX}SubscriptionProject")
    source = attributes.get(f"{SOURCE_PREFIX}Subscription")
    if source and project and "/" not in source:
        source = f"projects/{project}/subscriptions/{source}"
    return DeadLetter(message.message_id, device, method,
                      int(count) if count.isdigit() else None, source,
                      attributes.get(f"{SOURCE_PREFIX}TopicPublishTime"))


def pull(subscriber: Any, subscription: str, limit: int) -> list[Any]:
    """Up to `limit` received messages, leased (not acknowledged)."""
    from google.api_core.exceptions import DeadlineExceeded
    from google.api_core.retry import Retry

    got: list[Any] = []
    while len(got) < limit:
        # The service answers as soon as it has messages; with none it waits: the first
        # pull gives it time to find some, later ones only collect what is left.
        timeout = _PULL_TIMEOUT_S if not got else _MORE_TIMEOUT_S
        request = {"subscription": subscription, "max_messages": min(limit - len(got), 1000)}
        try:
            response = subscriber.pull(request=request, timeout=timeout,
                                       retry=Retry(timeout=timeout))
        except DeadlineExceeded:
            break
        if not response.received_messages:
            break
        got.extend(response.received_messages)
    return got


def _in_batches(call: Callable[[list[str]], None], ack_ids: Sequence[str]) -> None:
    for start in range(0, len(ack_ids), _BATCH):
        call(list(ack_ids[start:start + _BATCH]))


def release(subscriber: Any, subscription: str, ack_ids: Sequence[str]) -> None:
    """Hand leased messages back at once (they stay on the subscription)."""
    _in_batches(lambda ids: subscriber.modify_ack_deadline(request={
        "subscription": subscription, "ack_ids": ids, "ack_deadline_seconds": 0}), ack_ids)


def list_dead_letters(subscriber: Any, subscription: str, limit: int) -> list[DeadLetter]:
    received = pull(subscriber, subscription, limit)
    try:
        return [describe(r.message) for r in received]
    finally:
        release(subscriber, subscription, [r.ack_id for r in received])


@dataclass(frozen=True)
class Replayed:
    letter: DeadLetter
    error: str | None = None  # None: republished (or would be, in a dry run)


def replay(publisher: Any, subscriber: Any, subscription: str, topic: str, limit: int, *,
           dry_run: bool = False) -> list[Replayed]:
    """Republish up to `limit` dead letters to `topic` (data and attributes as the sink
    published them); each is acknowledged on the dead-letter subscription only after its
    copy was published. A dry run only lists them."""
    received = pull(subscriber, subscription, limit)
    done: list[Replayed] = []
    acked: set[str] = set()
    try:
        for item in received:
            letter = describe(item.message)
            if dry_run:
                done.append(Replayed(letter))
                continue
            attributes = {k: v for k, v in item.message.attributes.items()
                          if not k.startswith(SOURCE_PREFIX)}
            try:
                publisher.publish(topic, bytes(item.message.data), **attributes).result(
                    timeout=_PUBLISH_TIMEOUT_S)
            except Exception as exc:  # reported per message; the letter stays parked
                done.append(Replayed(letter, f"{type(exc).__name__}: {str(exc)[:160]}"))
                continue
            subscriber.acknowledge(request={"subscription": subscription,
                                            "ack_ids": [item.ack_id]})
            acked.add(item.ack_id)
            done.append(Replayed(letter))
    finally:
        release(subscriber, subscription,
                [r.ack_id for r in received if r.ack_id not in acked])
    return done
