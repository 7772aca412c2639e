"""The pull worker behind `mender-bridge listen`: google-cloud-pubsub's streaming pull, flow
control bounded by the bridge's concurrency, one runtime decision per message (ack, or nack
so the subscription's retry policy and dead-letter topic apply), the library's lease
management extending the ack deadline of long work, and a stop that finishes in-flight work.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge import logs

# Work still unfinished after this long is given up to Pub/Sub for another delivery (the
# lease is no longer extended); far above a device's handling, Mender retries included.
MAX_LEASE_S = 600.0
# Leases are extended by this much at a time. It is also the stream's ack deadline: messages
# in transit to a worker that stops come back after it (the library's default is 60 s).
LEASE_STEP_S = 10  # whole seconds: it becomes a protobuf int field


class Decision(Protocol):
    @property
    def ack(self) -> bool: ...


class Handler(Protocol):
    def handle_message(self, data: bytes, attributes: Mapping[str, str] | None = None,
                       message_id: str | None = None) -> Decision: ...


@dataclass
class Counters:
    """What this worker did since it started (for /healthz and the final log line)."""

    received: int = 0
    acked: int = 0
    nacked: int = 0
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"received": self.received, "acked": self.acked, "nacked": self.nacked,
                    "in_flight": self.in_flight}


class Worker:
    """Pulls `subscription` with `subscriber` (a google-cloud-pubsub SubscriberClient) and
    hands each message to `handler`; `start()`, then `stop()` (or watch `done`)."""

    def __init__(self, handler: Handler, subscriber: Any, subscription: str, *,
                 concurrency: int, max_lease_s: float = MAX_LEASE_S) -> None:
        self.handler, self.subscriber, self.subscription = handler, subscriber, subscription
        self.concurrency, self.max_lease_s = concurrency, max_lease_s
        self.counters = Counters()
        self.log = logs.get_logger("listen")
        self._future: Any = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler
        from google.cloud.pubsub_v1.types import FlowControl

        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="listen")
        self._future = self.subscriber.subscribe(
            self.subscription, self._on_message,
            flow_control=FlowControl(max_messages=self.concurrency,
                                     max_lease_duration=self.max_lease_s,
                                     max_duration_per_lease_extension=LEASE_STEP_S),
            scheduler=ThreadScheduler(self._executor),
            # On stop: finish what runs, ack or nack it, nack what was not started yet.
            await_callbacks_on_shutdown=True)

    @property
    def done(self) -> bool:
        return self._future is not None and self._future.done()

    def add_done_callback(self, callback: Any) -> None:
        assert self._future is not None, "start() first"
        self._future.add_done_callback(lambda _: callback())

    def failure(self) -> BaseException | None:
        """Why the pull stopped by itself (subscription missing, permission denied...)."""
        if self._future is None or not self._future.done() or self._future.cancelled():
            return None
        error: BaseException | None = self._future.exception()
        return error

    def stop(self, timeout: float | None = None) -> None:
        """Stop pulling, let running messages finish (acked or nacked), nack the rest."""
        if self._future is None:
            return
        if not self._future.done():  # cancelling an ended stream would hide its error
            self._future.cancel()
        # A stream that ended by itself raises its error here: failure() reports it.
        with contextlib.suppress(Exception):
            self._future.result(timeout=timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.subscriber.close()

    def _on_message(self, message: Any) -> None:
        self.counters.add(received=1, in_flight=1)
        attempt = message.delivery_attempt  # set when the subscription dead-letters
        if attempt is not None and attempt > 1:
            logs.emit(self.log, logging.INFO, f"delivery attempt {attempt}",
                      message_id=message.message_id, delivery_attempt=attempt)
        try:
            decision = self.handler.handle_message(
                bytes(message.data), dict(message.attributes), message.message_id)
            ack = decision.ack
        except Exception as exc:  # the runtime returns a decision; anything else is a bug
            logs.emit(self.log, logging.ERROR, f"handler failed, message nacked: {exc!r}",
                      exc_info=True, message_id=message.message_id, outcome="retry")
            ack = False
        if ack:
            message.ack()
        else:
            message.nack()
        self.counters.add(in_flight=-1, **({"acked": 1} if ack else {"nacked": 1}))
