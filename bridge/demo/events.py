"""How the demo's audit-log events reach its Cloud Function: through Google's Pub/Sub emulator
(the registry stand-in publishes each entry as a Logging sink does; a push subscription with a
dead-letter topic, as Terraform deploys it, delivers it to the function's `on_push`), or, where
the emulator is not installed, posted by the registry stand-in to `on_push` itself."""

from __future__ import annotations

import enum
from typing import Any

import requests

from bridge.demo.children import wait_for
from bridge.pubsub.local import PubsubMode
from bridge.pubsub.topology import DeliveryPolicy, Topology
from bridge.sandbox.launcher import PROJECT, Sandbox

# Quicker redelivery than the Terraform default (10 s): a demo waits for it.
POLICY = DeliveryPolicy(max_delivery_attempts=10, minimum_backoff_s=0.5,
                        maximum_backoff_s=10.0, ack_deadline_s=30)


class Delivery(enum.StrEnum):
    EMULATOR = "emulator"
    DIRECT = "direct"


class Events:
    """The event path of a started sandbox; `connect` is the moment the bridge is deployed."""

    def __init__(self, box: Sandbox, http: requests.Session) -> None:
        self.box, self.http = box, http
        self.push_subscription: str | None = None

    @property
    def path(self) -> Delivery:
        return Delivery.EMULATOR if self.box.pubsub.mode is PubsubMode.EMULATOR else Delivery.DIRECT

    def describe(self) -> str:
        found = self.box.pubsub
        if self.path is Delivery.EMULATOR:
            push = (f"push subscription {self.push_subscription}" if self.push_subscription
                    else "a push subscription made when the bridge is deployed")
            return (f"Google's Pub/Sub emulator on {found.emulator_host}: topic {found.topic}, "
                    f"{push} → the function's on_push")
        return f"posted by the registry stand-in to the function's on_push ({found.note})"

    def short(self) -> str:
        if self.path is Delivery.EMULATOR:
            return "through a push subscription of the Pub/Sub emulator"
        return "posted directly by the registry stand-in"

    def connect(self, endpoint: str) -> None:
        """From now on, every audit entry reaches `endpoint` (earlier ones never do)."""
        if self.path is Delivery.DIRECT:
            self._admin("POST", "/_sandbox/audit-endpoints", {"endpoints": [endpoint]})
            return
        from bridge.pubsub import clients
        from bridge.pubsub.topology import ensure

        host = self.box.pubsub.emulator_host
        publisher, subscriber = clients.publisher(host), clients.subscriber(host)
        try:
            # A subscription receives what is published after it exists, as in production.
            pushes = ensure(publisher, subscriber, Topology(PROJECT), POLICY, [endpoint])
        finally:
            publisher.transport.close()
            subscriber.close()
        self.push_subscription = pushes[0]

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until the registry handed every entry on: published to the topic (whose push
        subscription then delivers it on its own time), or delivered to the function."""
        def drained() -> bool:
            status = self._admin("GET", "/_sandbox/audit-status")
            if int(status.get("dead", 0)):
                raise RuntimeError(f"audit entries could not be delivered: {status}")
            return int(status.get("pending", 0)) == 0
        wait_for(drained, timeout, "the registry's audit entries to be delivered")

    def _admin(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        response = self.http.request(method, self.box.registry_url + path, json=body,
                                     timeout=10)
        response.raise_for_status()
        data = response.json()
        assert isinstance(data, dict)
        return data
