"""The Pub/Sub resources of the event path, as Terraform names them: the topic a Logging sink
publishes to, its dead-letter topic with a subscription that keeps the dead letters, a pull
subscription for `listen` workers and push subscriptions, both with retries and dead-lettering.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PREFIX = "mender-bridge"


@dataclass(frozen=True)
class DeliveryPolicy:
    """Delivery settings of the pull and push subscriptions (Pub/Sub allows 5-100 attempts).
    With `minimum_backoff_s` None there is no retry policy: a nack is redelivered at once."""

    max_delivery_attempts: int = 5
    minimum_backoff_s: float | None = 1.0
    maximum_backoff_s: float = 60.0
    ack_deadline_s: int = 60


@dataclass(frozen=True)
class Topology:
    project: str
    prefix: str = PREFIX

    @property
    def topic(self) -> str:
        return f"projects/{self.project}/topics/{self.prefix}-device-events"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic}-dead-letter"

    @property
    def subscription(self) -> str:
        """The pull subscription `listen` workers share."""
        return f"projects/{self.project}/subscriptions/{self.prefix}-device-events-listen"

    @property
    def dead_letter_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.prefix}-device-events-dead-letter"

    def push_subscription(self, index: int) -> str:
        suffix = "" if index == 0 else f"-{index + 1}"
        return f"projects/{self.project}/subscriptions/{self.prefix}-device-events-push{suffix}"


def _duration(seconds: float) -> dict[str, int]:
    whole = int(seconds)
    return {"seconds": whole, "nanos": round((seconds - whole) * 1e9)}


def subscription_request(name: str, topic: str, dead_letter_topic: str | None,
                         policy: DeliveryPolicy, push_endpoint: str | None = None
                         ) -> dict[str, Any]:
    request: dict[str, Any] = {"name": name, "topic": topic,
                               "ack_deadline_seconds": policy.ack_deadline_s}
    if dead_letter_topic is not None:
        request["dead_letter_policy"] = {"dead_letter_topic": dead_letter_topic,
                                         "max_delivery_attempts": policy.max_delivery_attempts}
        if policy.minimum_backoff_s is not None:
            request["retry_policy"] = {
                "minimum_backoff": _duration(policy.minimum_backoff_s),
                "maximum_backoff": _duration(policy.maximum_backoff_s)}
    if push_endpoint is not None:
        request["push_config"] = {"push_endpoint": push_endpoint}
    return request


def ensure(publisher: Any, subscriber: Any, topology: Topology, policy: DeliveryPolicy,
           push_endpoints: Sequence[str] = ()) -> list[str]:
    """Create what is missing (an existing resource is left as it is); returns the push
    subscriptions' names, in the order of `push_endpoints`."""
    from google.api_core.exceptions import AlreadyExists

    def create(call: Any, request: dict[str, Any]) -> None:
        with contextlib.suppress(AlreadyExists):
            call(request=request)

    for topic in (topology.topic, topology.dead_letter_topic):
        create(publisher.create_topic, {"name": topic})
    create(subscriber.create_subscription, subscription_request(
        topology.dead_letter_subscription, topology.dead_letter_topic, None, policy))
    create(subscriber.create_subscription, subscription_request(
        topology.subscription, topology.topic, topology.dead_letter_topic, policy))
    pushes = []
    for index, endpoint in enumerate(push_endpoints):
        name = topology.push_subscription(index)
        create(subscriber.create_subscription, subscription_request(
            name, topology.topic, topology.dead_letter_topic, policy, endpoint))
        # An existing one may point elsewhere (a restarted function on another port).
        subscriber.modify_push_config(request={"subscription": name,
                                               "push_config": {"push_endpoint": endpoint}})
        pushes.append(name)
    return pushes
