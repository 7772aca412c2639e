"""The registry stand-in as a Logging sink: each device change made with the real
google-cloud-iot client arrives on the emulator's topic as the sink would publish it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.pubsub import clients
from bridge.pubsub.emulator import Emulator
from bridge.pubsub.topology import Topology, ensure
from bridge.sandbox.registry import create_app
from bridge.sandbox.server import serve
from tests.function.e2e_support import iot_client, iot_credential
from tests.function.helpers import public_pem
from tests.pubsub.pubsub_support import POLICY, drain, wait_for

pytestmark = pytest.mark.e2e
REGISTRY = "projects/sandbox-project/locations/us-central1/registries/reg0"


@pytest.fixture
def registry(emulator: Emulator, project: str, tmp_path: Path) -> Iterator[tuple[str, Topology]]:
    topology = Topology(project)
    publisher, subscriber = clients.publisher(emulator.host_port), clients.subscriber(
        emulator.host_port)
    ensure(publisher, subscriber, topology, POLICY)
    subscriber.close()
    app = create_app(tmp_path, project="sandbox-project", registries=["reg0"],
                     audit_topic=topology.topic, pubsub_emulator_host=emulator.host_port)
    server = serve(app)
    try:
        yield server.url, topology
    finally:
        server.stop()
        app.extensions["registry_sandbox"].close()


def test_each_device_change_is_published_as_a_logging_sink_does(
        emulator: Emulator, registry: tuple[str, Topology]) -> None:
    url, topology = registry
    client = iot_client(url)
    pem = public_pem()
    device = client.create_device(parent=REGISTRY, device={
        "id": "sink-dev", "credentials": [iot_credential(pem)]})
    client.update_device(device={"name": f"{REGISTRY}/devices/sink-dev", "blocked": True},
                         update_mask={"paths": ["blocked"]})
    client.delete_device(name=f"{REGISTRY}/devices/{device.num_id}")

    messages: list[Any] = []
    wait_for(lambda: messages.extend(drain(emulator.host_port, topology.subscription, 1.0))
             or len(messages) >= 3, "three messages on the topic")
    entries = sorted((json.loads(m.data) for m in messages), key=lambda e: e["timestamp"])
    assert [e["protoPayload"]["methodName"].rsplit(".", 1)[1] for e in entries] == [
        "CreateDevice", "UpdateDevice", "DeleteDevice"]
    for message, entry in zip(sorted(messages, key=lambda m: json.loads(m.data)["timestamp"]),
                              entries, strict=True):
        assert dict(message.attributes) == {"logging.googleapis.com/timestamp":
                                            entry["timestamp"]}
        assert entry["resource"] == {"type": "cloudiot_device", "labels": {
            "device_num_id": str(device.num_id), "project_id": "sandbox-project",
            "device_registry_id": "reg0", "location": "us-central1"}}
        assert entry["logName"].endswith("cloudaudit.googleapis.com%2Factivity")
        assert pem.strip().splitlines()[1] not in message.data.decode()  # no key material
    assert entries[1]["protoPayload"]["request"]["updateMask"] == "blocked"
    status = requests.get(f"{url}/_sandbox/audit-status", timeout=5).json()
    assert (status["delivered"], status["pending"], status["topic"]) == (3, 0, topology.topic)

