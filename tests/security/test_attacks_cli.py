"""Issue 13 through `sync` and `device`, end to end: a registry endpoint (Google or ClearBlade)
or a Mender URL that answers 302 towards another origin, where a recording relay to the real
stand-in waits (following it would carry the credentials there and admit a device); and a
token or password that is not Latin-1. Each run ends in one line and exit 2, the relay is never
called, and both services read back unchanged. The clients' own redirect handling:
test_redirects.py; printed commands quoted for sh: tests/keykit (test_provision_script.py,
test_cli_keys.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from bridge.device import SimulatedDevice
from tests.security.attack_support import (
    HOME,
    Relay,
    World,
    attack_world,
    ec_credential,
)
from tests.security.test_redirects import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NEWCOMER = "newcomer-1"  # registered, not admitted: what a run that went through would admit


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with attack_world(tmp_path_factory.mktemp("attacks-cli")) as running:
        running.add_device(HOME, NEWCOMER, [ec_credential(
            SimulatedDevice.generate(NEWCOMER).public_pem)])
        yield running


def clearblade_env(world: World, url: str) -> dict[str, str]:
    account = requests.get(f"{world.sandbox.registry_url}/_sandbox/clearblade-service-account",
                           timeout=10).json()
    path = world.work / "clearblade.json"
    path.write_text(json.dumps({**account, "url": url}))
    return {"REGISTRY_BACKEND": "clearblade", "CLEARBLADE_CONFIGURATION": str(path)}


SIDES: dict[str, Callable[[World, str], dict[str, str]]] = {
    "google registry": lambda world, url: {"IOT_ENDPOINT": url},
    "clearblade registry": clearblade_env,
    "mender": lambda world, url: {"MENDER_URL": url},
}


@pytest.mark.parametrize("side", SIDES)
def test_a_redirect_to_another_origin_is_never_followed(world: World, side: str) -> None:
    real = world.sandbox.mender_url if side == "mender" else world.sandbox.registry_url
    relay = Relay(real)
    # Another origin: another host name and port, the real service behind it.
    elsewhere = relay.url.replace("127.0.0.1", "localhost")
    redirector = Server(lambda method, path: (302, {"Location": elsewhere + path}, b""))
    try:
        before = world.state()
        env = {**world.env, **SIDES[side](world, redirector.url())}
        result = world.cli("sync", "--registry", HOME.registry, env=env)
        assert redirector.calls, "the redirecting server was not asked"
        assert relay.calls == [], "a redirect was followed"
        assert result.returncode in (1, 2), result.stdout + result.stderr
        lines = [line for line in (result.stdout + result.stderr).splitlines()
                 if elsewhere.removeprefix("http://") in line]
        assert len(lines) == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert world.state() == before
        assert world.auth_sets(NEWCOMER) == []
    finally:
        redirector.stop()
        relay.stop()


@pytest.mark.parametrize(("command", "secret"), [
    (("sync",), {"MENDER_TOKEN": "tök€n-0123456789"}),
    (("device", NEWCOMER, "--registry", HOME.registry), {"MENDER_TOKEN": "токен-0123456789"}),
    (("sync",), {"MENDER_USERNAME": "admin@example.com", "MENDER_PASSWORD": "pässwört-€-123"}),
], ids=["sync token", "device token", "sync password"])
def test_a_secret_that_is_not_latin_1_is_one_line_and_exit_2(
        world: World, command: tuple[str, ...], secret: dict[str, str]) -> None:
    before = world.state()
    env = {k: v for k, v in world.env.items() if k != "MENDER_TOKEN"} | secret
    result = world.cli(*command, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "Latin-1" in result.stderr or "latin-1" in result.stderr
    assert not any(value in result.stderr for value in secret.values()
                   if value != "admin@example.com")
    assert world.state() == before
    assert world.auth_sets(NEWCOMER) == []


def test_the_untouched_newcomer_is_admitted_by_a_clean_run(world: World, tmp_path: Path) -> None:
    # The control: the same command with the real endpoints admits the newcomer, so the runs
    # above would have shown in the state had they gone through.
    result = world.cli("device", NEWCOMER, "--registry", HOME.registry)
    assert result.returncode == 0, result.stderr
    assert [s for _, s in world.auth_sets(NEWCOMER)] == ["preauthorized"]
