"""The sandbox's event path: Google's Pub/Sub emulator (started here, or one already running)
with the event topology on it, or direct delivery by the registry stand-in where the emulator
is not installed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.pubsub import clients
from bridge.pubsub.emulator import Emulator, EmulatorError, find
from bridge.pubsub.topology import DeliveryPolicy, Topology, ensure


class PubsubMode(enum.StrEnum):
    AUTO = "auto"  # the emulator where it is installed, direct delivery elsewhere
    EMULATOR = "emulator"
    DIRECT = "direct"  # the registry stand-in posts push envelopes itself


@dataclass(frozen=True)
class EventPath:
    """How the sandbox's audit events travel, and the full names of what they travel through
    (all None with direct delivery; `note` then says why)."""

    mode: PubsubMode
    emulator_host: str | None = None
    topic: str | None = None
    dead_letter_topic: str | None = None
    subscription: str | None = None
    dead_letter_subscription: str | None = None
    push_subscriptions: tuple[str, ...] = ()
    note: str = ""


class LocalPubsub:
    """`launch()` starts the emulator early (it takes seconds), `ready()` waits for it and
    creates the topology; `stop()` ends an emulator started here (never one adopted)."""

    def __init__(self, mode: PubsubMode | str, *, project: str, log: Path,
                 emulator_host: str | None = None, policy: DeliveryPolicy | None = None
                 ) -> None:
        self.mode = PubsubMode(mode)
        self.topology = Topology(clients.project_id(project))
        self.log = log
        self.policy = policy or DeliveryPolicy()
        self.host = clients.emulator_host(emulator_host) if emulator_host else None
        self.emulator: Emulator | None = None
        self.note = ""

    def launch(self) -> None:
        if self.mode is PubsubMode.DIRECT or self.host is not None:
            return
        if self.mode is PubsubMode.AUTO and find() is None:
            self.mode = PubsubMode.DIRECT
            self.note = "the Pub/Sub emulator is not installed: events are delivered directly"
            return
        self.emulator = Emulator.launch(self.log)
        self.host = self.emulator.host_port

    def ready(self, push_endpoints: Sequence[str] = ()) -> EventPath:
        if self.mode is PubsubMode.DIRECT or self.host is None:
            return EventPath(PubsubMode.DIRECT, note=self.note or "direct delivery chosen")
        if self.emulator is not None:
            self.emulator.wait_ready()
        publisher, subscriber = clients.publisher(self.host), clients.subscriber(self.host)
        try:
            pushes = ensure(publisher, subscriber, self.topology, self.policy, push_endpoints)
        except Exception as exc:
            raise EmulatorError(f"cannot set up Pub/Sub on {self.host}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        finally:
            publisher.transport.close()
            subscriber.close()
        t = self.topology
        return EventPath(PubsubMode.EMULATOR, self.host, t.topic, t.dead_letter_topic,
                         t.subscription, t.dead_letter_subscription, tuple(pushes))

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
