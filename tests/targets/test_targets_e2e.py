"""Two Mender stand-ins as two targets, two registries routed to them, end to end: `sync` with
`[[targets]]` in TOML, `on_push` under functions-framework with MENDER_TARGETS in its
environment. A device id in both registries is no collision (each Mender has its own), one
target down delays only its own devices, then both converge; reports name the target. Every
Mender is read back over its own API."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.model import RegistryRef
from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox
from tests.core.credentials import credential, mender_pem
from tests.function.e2e_support import iot_client, iot_credential, wait_for
from tests.support import procs
from tests.support.function_proc import FunctionProcess
from tests.targets.mender_read import MenderRead

pytestmark = pytest.mark.e2e
STAGING = RegistryRef(PROJECT, LOCATION, REGISTRY)
PRODUCTION = RegistryRef(PROJECT, LOCATION, "production-fleet")


@dataclass
class World:
    registry_url: str
    staging: MenderRead
    production: MenderRead
    config: Path
    env: dict[str, str]
    work: Path

    def create(self, ref: RegistryRef, device_id: str, seed: int) -> None:
        cred = credential("ec", seed)
        requests.post(f"{self.registry_url}/v1/{ref.path}/devices", timeout=10, json={
            "id": device_id, "credentials": [{"publicKey": {"format": str(cred.format),
                                                            "key": cred.key}}]}
                      ).raise_for_status()

    def sync(self, *args: str) -> Any:
        return procs.run([sys.executable, "-m", "bridge", "sync", "--config", str(self.config),
                          *args], env=self.env, timeout=180)


def target(name: str, box: Sandbox, ref: RegistryRef) -> dict[str, Any]:
    return {"name": name, "mender_url": box.mender_url, "registries": [ref.registry],
            "mender_ca_bundle": str(box.ca_cert)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("targets")
    with ExitStack() as stack:
        one = stack.enter_context(Sandbox(work / "staging", tls=True))
        two = stack.enter_context(Sandbox(work / "production", tls=True))
        requests.post(f"{one.registry_url}/v1/projects/{PROJECT}/locations/{LOCATION}/"
                      "registries", json={"id": PRODUCTION.registry},
                      timeout=10).raise_for_status()
        targets = [target("staging", one, STAGING), target("production", two, PRODUCTION)]
        lines = [f"iot_project = {json.dumps(PROJECT)}", f"iot_location = {json.dumps(LOCATION)}",
                 f"iot_endpoint = {json.dumps(one.registry_url)}", 'iot_credentials = "anonymous"']
        for item in targets:
            lines += ["[[targets]]", *(f"{k} = {json.dumps(v)}" for k, v in item.items())]
        config = work / "bridge.toml"
        config.write_text("\n".join(lines) + "\n")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
               "MENDER_TOKEN_STAGING": one.token.reveal(),
               "MENDER_TOKEN_PRODUCTION": two.token.reveal()}
        # The function's form of the same settings: environment only, targets as JSON.
        function_env = {**env, "IOT_PROJECT": PROJECT, "IOT_LOCATION": LOCATION,
                        "IOT_ENDPOINT": one.registry_url, "IOT_CREDENTIALS": "anonymous",
                        "MENDER_TARGETS": json.dumps(targets), "LOG_LEVEL": "INFO"}
        function = stack.enter_context(FunctionProcess("on_push", function_env,
                                                       work / "on_push.log"))
        requests.post(f"{one.registry_url}/_sandbox/audit-endpoints", timeout=10,
                      json={"endpoints": [function.url]}).raise_for_status()
        yield World(one.registry_url, MenderRead(one), MenderRead(two), config, env, work)


def test_backfill_and_events_go_to_their_own_target(world: World) -> None:
    world.staging.faults(inventory_delay_ms=0)
    world.create(STAGING, "dup-1", 0)  # an event each, and a sync: whichever comes first
    world.create(PRODUCTION, "dup-1", 1)
    world.create(PRODUCTION, "prod-2", 2)
    done = world.sync("--json")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: world.staging.admitted() == {"dup-1": {mender_pem("ec", 0)}}, 60, "staging")
    wait_for(lambda: world.production.admitted() == {"dup-1": {mender_pem("ec", 1)},
                                                 "prod-2": {mender_pem("ec", 2)}}, 60,
             "production")
    report = json.loads(done.stdout)
    assert {a["target"] for a in report["actions"]} == {"staging", "production"}
    assert not [a for a in report["actions"] if a["status"] == "conflict"]
    client = iot_client(world.registry_url)
    for ref, device_id, seed in ((STAGING, "ev-s", 3), (PRODUCTION, "ev-p", 4)):
        client.create_device(parent=ref.path, device={
            "id": device_id, "credentials": [iot_credential(credential("ec", seed).key)]})
    wait_for(lambda: "ev-s" in world.staging.admitted() and "ev-p" in world.production.admitted(),
             60, "both events admitted, each in its own Mender")
    assert "ev-p" not in world.staging.admitted() and "ev-s" not in world.production.admitted()
    # A new key for production's dup-1: staging's dup-1 has the same identity, in another
    # Mender, so it is no twin and the rotation goes through.
    client.update_device(device={"name": f"{PRODUCTION.path}/devices/dup-1", "credentials": [
        iot_credential(credential("ec", 8).key)]}, update_mask={"paths": ["credentials"]})
    wait_for(lambda: mender_pem("ec", 8) in world.production.admitted()["dup-1"], 60,
             "production's dup-1 rotated")
    assert world.staging.admitted()["dup-1"] == {mender_pem("ec", 0)}


def test_a_target_down_delays_only_its_devices_then_both_converge(world: World) -> None:
    world.production.faults(error_rate=1.0)
    try:
        client = iot_client(world.registry_url)
        for ref, device_id, seed in ((STAGING, "down-s", 5), (PRODUCTION, "down-p", 6)):
            client.create_device(parent=ref.path, device={
                "id": device_id, "credentials": [iot_credential(credential("ec", seed).key)]})
        wait_for(lambda: "down-s" in world.staging.admitted(), 60, "staging admits its device")
        failed = world.sync()
        assert failed.returncode == 1, failed.stderr
        rows = [line.split() for line in failed.stdout.splitlines() if line.strip()]
        assert rows[0][:2] == ["TARGET", "DEVICE"]
        assert {row[0] for row in rows[1:-1] if "failed" in row} == {"production"}
    finally:
        world.production.faults(error_rate=0.0)
    # The event comes again and the next sync runs: whichever is first admits it.
    assert world.sync().returncode == 0
    wait_for(lambda: "down-p" in world.production.admitted(), 60, "production catches up")
    assert "down-p" not in world.staging.admitted()
    quiet = world.sync("--json")
    assert quiet.returncode == 0, quiet.stderr
    report = json.loads(quiet.stdout)
    assert {a["status"] for a in report["actions"]} == {"unchanged"}
    assert {a["target"] for a in report["actions"]} == {"staging", "production"}
    assert report["stats"]["staging.mender_devices"] == 3
    assert report["stats"]["production.mender_devices"] == 4
