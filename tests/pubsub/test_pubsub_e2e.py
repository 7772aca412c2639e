"""End to end over Google's Pub/Sub emulator, once per transport: the real google-cloud-iot
client changes devices in the registry stand-in, which publishes the audit entries as a Logging
sink does; (push) a push subscription delivers them to functions/main.py `on_push` served by
the real functions-framework, (listen) `mender-bridge listen` pulls them. The Mender stand-in's
state is read back over its API."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.model import RegistryRef
from bridge.pubsub import clients, deadletters
from bridge.pubsub.emulator import Emulator
from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox
from tests.function.e2e_support import (
    MenderView,
    create_device,
    der,
    env_from_config,
    free_port,
    iot_client,
    iot_credential,
)
from tests.function.helpers import public_pem
from tests.pubsub.pubsub_support import (
    POLICY,
    ROOT,
    Process,
    answers,
    bridge_argv,
    fresh_project,
    run,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REF = RegistryRef(PROJECT, LOCATION, REGISTRY)
# Longer than any test: the test ends the decommissioning itself once the event is parked.
DECOMMISSION_DELAY_MS = 600_000


@dataclass
class Stack:
    box: Sandbox
    client: Any
    mender: MenderView
    consumer: Process

    def mender_faults(self, **values: Any) -> None:
        answer = requests.post(f"{self.box.mender_url}/_sandbox/faults", json=values,
                               timeout=10)
        answer.raise_for_status()

    def finish_decommissioning(self, device_id: str) -> None:
        """What fixes the poison: the old device's decommissioning ends (run again, with no
        delay, by an operator here)."""
        self.mender_faults(decommission_delay_ms=0)
        for device in self.mender.devices(device_id):
            answer = self.mender.session.delete(
                f"{self.mender.url}/api/management/v2/devauth/devices/{device['id']}",
                timeout=10)
            assert answer.status_code == 204, answer.text

    def keys(self, device_id: str) -> dict[bytes, str]:
        return self.mender.keys(device_id)

    def dead_letters(self) -> list[dict[str, Any]]:
        """What the dead-letter subscription holds now (left there: listed, not consumed)."""
        name = str(self.box.pubsub.dead_letter_subscription)
        subscriber = clients.subscriber(self.box.pubsub.emulator_host)
        try:
            # The emulator answers at once when asked to (a flag the service deprecated);
            # `list` itself waits a while for messages.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                received = subscriber.pull(request={
                    "subscription": name, "max_messages": 100, "return_immediately": True
                }).received_messages
            deadletters.release(subscriber, name, [r.ack_id for r in received])
            return [deadletters.describe(r.message).as_dict() for r in received]
        finally:
            subscriber.close()


def _consumer(transport: str, box: Sandbox, port: int, work: Path) -> Process:
    if transport == "push":
        binary = Path(sys.executable).parent / "functions-framework"
        function = Process([str(binary), "--target", "on_push", "--source",
                            str(ROOT / "functions/main.py"), "--host", "127.0.0.1",
                            "--port", str(port)], work / "function.log",
                           env=env_from_config(box.config_path, LOG_LEVEL="INFO"))
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/"), "the function to answer")
        return function
    worker = Process(bridge_argv("listen", "--config", str(box.config_path)),
                     work / "listen.log")
    worker.wait_output("listening on")
    return worker


@pytest.fixture(scope="module", params=["push", "listen"])
def stack(request: pytest.FixtureRequest, emulator: Emulator,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    transport = request.param
    work = tmp_path_factory.mktemp(transport)
    port = free_port()
    box = Sandbox(work / "sandbox", tls=False, pubsub="emulator",
                  pubsub_emulator_host=emulator.host_port, pubsub_project=fresh_project(),
                  pubsub_policy=POLICY,
                  audit_endpoints=[f"http://127.0.0.1:{port}/"] if transport == "push" else [])
    consumer = None
    try:
        box.start()
        consumer = _consumer(transport, box, port, work)
        yield Stack(box, iot_client(box.registry_url),
                    MenderView(box.mender_url, box.token.reveal()), consumer)
    finally:
        if consumer is not None:
            consumer.kill()
        box.stop()


def only(keys: dict[bytes, str], pem: str) -> bool:
    return keys == {der(pem): "preauthorized"}


def test_created_rotated_deleted(stack: Stack) -> None:
    device_id = "life-dev"
    first, second = public_pem(), public_pem()
    create_device(stack.client, REF, device_id, first)
    wait_for(lambda: only(stack.keys(device_id), first), "preauthorized in Mender")
    stack.client.update_device(device={"name": f"{REF.path}/devices/{device_id}",
                                       "credentials": [iot_credential(second)]},
                               update_mask={"paths": ["credentials"]})
    wait_for(lambda: only(stack.keys(device_id), second), "the key rotated in Mender")
    stack.client.delete_device(name=f"{REF.path}/devices/{device_id}")
    wait_for(lambda: stack.mender.devices(device_id) == [], "decommissioned in Mender")


def test_mender_down_for_a_while_then_redelivered_and_converged(stack: Stack) -> None:
    device_id = "down-dev"
    pem = public_pem()
    stack.mender_faults(error_rate=1.0, error_statuses=[503])
    try:
        create_device(stack.client, REF, device_id, pem)
        stack.consumer.wait_output(r"transient failure[^\n]*down-dev")  # a delivery failed
    finally:
        stack.mender_faults(error_rate=0.0)
    wait_for(lambda: only(stack.keys(device_id), pem), "preauthorized after redelivery")
    assert stack.dead_letters() == []


def test_a_poison_event_is_dead_lettered_then_replayed_after_the_fix(stack: Stack) -> None:
    # Deleted and created again while Mender still decommissions the old device: every
    # delivery of the CreateDevice finds the identity taken (409, decommissioning).
    device_id = "poison-dev"
    first, second = public_pem(), public_pem()
    create_device(stack.client, REF, device_id, first)
    wait_for(lambda: only(stack.keys(device_id), first), "preauthorized in Mender")
    stack.mender_faults(decommission_delay_ms=DECOMMISSION_DELAY_MS)
    try:
        stack.client.delete_device(name=f"{REF.path}/devices/{device_id}")
        wait_for(lambda: any(d.get("decommissioning") for d in stack.mender.devices(device_id)),
                 "the Mender device to be decommissioning")
        create_device(stack.client, REF, device_id, second)
        letters = wait_for(stack.dead_letters, "the event in the dead-letter subscription")
    finally:
        stack.finish_decommissioning(device_id)
    assert [(x["device"], x["method"], x["delivery_count"]) for x in letters] == [
        (f"{REGISTRY}/{device_id}", "CreateDevice", POLICY.max_delivery_attempts)]

    pubsub, config = stack.box.pubsub, str(stack.box.config_path)
    listed = run("dead-letters", "list", "--json", "--config", config, "--subscription",
                 str(pubsub.dead_letter_subscription))
    assert listed.returncode == 0 and json.loads(listed.stdout)["dead_letters"] == letters
    assert stack.mender.devices(device_id) == []
    done = run("dead-letters", "replay", "--subscription", str(pubsub.dead_letter_subscription),
               "--topic", str(pubsub.topic), "--config", config)
    assert done.returncode == 0 and "replayed 1 dead letter" in done.stderr, done.stderr
    wait_for(lambda: only(stack.keys(device_id), second), "preauthorized after the replay")
    assert stack.dead_letters() == []
