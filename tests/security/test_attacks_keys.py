"""Issue 13, keys the policy refuses, end to end: devices registered through the registry
stand-in's REST API with the hostile keys it accepts (an even RSA modulus, corrupted
certificates, an oversized key...), then their create events through `on_push` and `device` and
`sync` runs: no preauthorize ever reaches Mender (a recording relay sits in front of it), and
both services read back unchanged. Each key's refusal and its cost: test_hostile_keys.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bridge.device import SimulatedDevice
from tests.security.attack_support import (
    HOME,
    MANAGEMENT,
    Relay,
    World,
    attack_world,
    ec_credential,
    entry,
    functions,
    push,
)
from tests.security.test_hostile_keys import CORPUS
from tests.support.function_proc import FunctionProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The corpus entries the registry stand-in accepts (it parses keys as `cryptography` does, so
# it refuses the rest at registration), with the format each is registered under.
ACCEPTED = {"rsa-even-modulus": "RSA_PEM", "rsa-even-modulus-in-certificate": "RSA_X509_PEM",
            "rsa-exponent-2^31+1": "RSA_PEM", "rsa-modulus-65000-bits": "RSA_PEM",
            "cert-flipped-key-bits": "RSA_X509_PEM", "cert-flipped-signature": "RSA_X509_PEM",
            "cert-600-extensions-bad-signature": "ES256_X509_PEM",
            "over-the-limit": "ES256_PEM"}
DEVICES = {name: f"hostile-{i}" for i, name in enumerate(ACCEPTED)}


@dataclass
class Stack:
    world: World
    relay: Relay
    on_push: FunctionProcess
    env: dict[str, str]
    numbers: dict[str, str]

    def preauthorizes(self) -> list[int]:
        return [s for m, p, s in self.relay.calls if (m, p) == ("POST", MANAGEMENT)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("attacks-keys")
    with attack_world(work) as world:
        numbers = {}
        for name, fmt in ACCEPTED.items():
            key = CORPUS[name]().decode()
            made = world.add_device(HOME, DEVICES[name],
                                    [{"publicKey": {"format": fmt, "key": key}}])
            numbers[name] = made["numId"]
        relay = Relay(world.sandbox.mender_url)
        env = {**world.env, "MENDER_URL": relay.url}
        try:
            with functions(env, work, "on_push") as running:
                yield Stack(world, relay, running["on_push"], env, numbers)
        finally:
            relay.stop()


@pytest.mark.parametrize("name", ACCEPTED)
def test_a_create_event_with_a_refused_key_sends_nothing(stack: Stack, name: str) -> None:
    before = stack.world.state()
    answer = push(stack.on_push.url, entry("CreateDevice", HOME, DEVICES[name],
                                           stack.numbers[name]))
    assert answer.status_code == 200, answer.text
    assert stack.preauthorizes() == []
    assert stack.world.state() == before
    warned = [r for r in stack.on_push.records()
              if r.get("device") == f"{HOME.registry}/{DEVICES[name]}"
              and r.get("severity") in ("WARNING", "ERROR")]
    assert warned, "the refusal was not logged"


def test_device_and_sync_send_none_of_them(stack: Stack) -> None:
    before = stack.world.state()
    device = stack.world.cli("device", *DEVICES.values(), "--registry", HOME.registry,
                             env=stack.env)
    assert device.returncode == 0 and "Traceback" not in device.stderr, device.stderr
    synced = stack.world.cli("sync", "--registry", HOME.registry, env=stack.env)
    assert synced.returncode == 0 and "Traceback" not in synced.stderr, synced.stderr
    assert stack.preauthorizes() == []
    assert stack.world.state() == before
    for name in ACCEPTED:
        assert DEVICES[name] in device.stdout and DEVICES[name] in synced.stdout

    # The control: a good key takes the same path, and the relay sees its preauthorize.
    good = SimulatedDevice.generate("good-key-1")
    made = stack.world.add_device(HOME, "good-key-1", [ec_credential(good.public_pem)])
    push(stack.on_push.url, entry("CreateDevice", HOME, "good-key-1", made["numId"]))
    assert stack.preauthorizes() == [201]
