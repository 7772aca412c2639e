"""Pub/Sub clients and names: Google's service with the environment's credentials, or the
emulator at `host:port` over plaintext gRPC with no credentials; names checked by Pub/Sub's rules.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

# Pub/Sub resource ids: a letter, then 2-254 of letters, digits and -_.~+% (not "goog...").
_ID: Final = r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}"
_PROJECT: Final = r"(?:[a-z][a-z0-9.\-]{0,62}:)?[a-z][a-z0-9\-]{4,28}[a-z0-9]"
_NAME: Final = re.compile(rf"projects/({_PROJECT})/(topics|subscriptions)/({_ID})")
_HOST: Final = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]{1,253}):[0-9]{1,5}")


def resource_name(value: str, kind: str) -> str:
    """`value` if it is a full `projects/P/{kind}/ID` name, else ValueError naming the rule."""
    match = _NAME.fullmatch(value)
    if match is None or match.group(2) != kind or match.group(3).startswith("goog"):
        raise ValueError(f"{value[:120]!r} is not a {kind[:-1]} name: expected "
                         f"projects/PROJECT/{kind}/NAME (NAME: a letter, then 2-254 letters, "
                         "digits or -_.~+%)")
    return value


def project_id(value: str) -> str:
    if not re.fullmatch(_PROJECT, value):
        raise ValueError(f"{value[:120]!r} is not a project id: 6-30 lowercase letters, digits "
                         "or hyphens, starting with a letter")
    return value


def emulator_host(value: str) -> str:
    """`host:port` of an emulator, else ValueError."""
    if not _HOST.fullmatch(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"{value[:120]!r} is not host:port")
    return value


def _channel(host: str) -> Any:
    import grpc  # type: ignore[import-untyped]

    # The emulator speaks plaintext gRPC; larger messages than the default 4 MB are allowed
    # by Pub/Sub (10 MB), so the limits follow the service's.
    return grpc.insecure_channel(host, options=[("grpc.max_send_message_length", -1),
                                                ("grpc.max_receive_message_length", -1)])


def publisher(emulator: str | None = None, **options: Any) -> PublisherClient:
    """A publisher client; `options` go to PublisherClient (batch settings...)."""
    from google.cloud.pubsub_v1 import PublisherClient
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    if emulator is None:
        return PublisherClient(**options)
    transport = PublisherGrpcTransport(channel=_channel(emulator_host(emulator)))
    return PublisherClient(transport=transport, **options)


def subscriber(emulator: str | None = None) -> SubscriberClient:
    from google.cloud.pubsub_v1 import SubscriberClient
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    if emulator is None:
        return SubscriberClient()
    transport = SubscriberGrpcTransport(channel=_channel(emulator_host(emulator)))
    return SubscriberClient(transport=transport)
