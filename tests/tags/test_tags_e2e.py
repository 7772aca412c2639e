"""End to end on the sandbox (Mender stand-in over TLS, registry stand-in): registry metadata
becomes Mender inventory tags through `sync` and through the event path (`on_push` under
functions-framework, audit events from changes made with the real google-cloud-iot client).
Tags are read back over Mender's own inventory API; `mender-cli` lists deviceauth only, so it
cannot show them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.model import RegistryRef
from bridge.sandbox.launcher import Sandbox
from tests.core.credentials import credential
from tests.function.e2e_support import env_from_config, iot_client, iot_credential, wait_for
from tests.support import procs
from tests.support.function_proc import FunctionProcess
from tests.tags.tags_support import InventoryView

pytestmark = pytest.mark.e2e
TAGS = "site={metadata[site]},registry={registry}"
NOT_YET = "not yet in inventory; the next sync tags it"


@dataclass
class World:
    sandbox: Sandbox
    ref: RegistryRef
    env: dict[str, str]
    inventory: InventoryView
    work: Path

    def create(self, device_id: str, seed: int, **metadata: str) -> None:
        """Through the registry's REST API (no event goes anywhere yet)."""
        cred = credential("ec", seed)
        answer = requests.post(f"{self.sandbox.registry_url}/v1/{self.ref.path}/devices",
                               timeout=10, json={"id": device_id, "metadata": metadata,
                                                 "credentials": [{"publicKey": {
                                                     "format": str(cred.format),
                                                     "key": cred.key}}]})
        answer.raise_for_status()

    def inventory_delay(self, ms: float) -> None:
        """How long the Mender stand-in takes to index a device in inventory."""
        self.inventory.session.post(f"{self.sandbox.mender_url}/_sandbox/faults", timeout=10,
                                    json={"inventory_delay_ms": ms}).raise_for_status()

    def sync(self) -> dict[str, Any]:
        done = procs.run([sys.executable, "-m", "bridge", "sync", "--json"], env=self.env,
                         timeout=120)
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("tags")
    with Sandbox(work / "sandbox", tls=True) as sandbox:
        env = env_from_config(Path(sandbox.config_path), TAGS=TAGS, LOG_LEVEL="INFO")
        ref = RegistryRef(env["IOT_PROJECT"], env["IOT_LOCATION"], env["IOT_REGISTRIES"])
        view = InventoryView(sandbox.mender_url, sandbox.token.reveal(), str(sandbox.ca_cert))
        yield World(sandbox, ref, env, view, work)


def tag_actions(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {a["device"]: (a["status"], a["detail"]) for a in report["actions"]
            if a["action"] == "tag"}


def test_sync_writes_the_tags_keeps_a_persons_and_a_resync_writes_nothing(
        world: World) -> None:
    sites = {"lab-1": "lab", "lab-2": "lab", "field-1": "field"}
    for seed, (device_id, site) in enumerate(sites.items()):
        world.create(device_id, seed, site=site)
    world.create("no-site", 3)
    # Inventory indexes the devices well after this first sync ends (its inventory listing
    # runs while it preauthorizes them), so none of them can be tagged yet.
    world.inventory_delay(1500)
    first = world.sync()
    registry = world.ref.registry
    assert tag_actions(first) == {f"{registry}/{d}": ("skipped", NOT_YET)
                                  for d in [*sites, "no-site"]}
    for device_id in [*sites, "no-site"]:
        wait_for(lambda d=device_id: world.inventory.mender_id(d), 30, f"{device_id} indexed")
    second = world.sync()
    assert {d: s for d, (s, _) in tag_actions(second).items()} == {
        f"{registry}/{d}": "done" for d in [*sites, "no-site"]}
    for device_id, site in sites.items():
        assert world.inventory.tags(device_id) == {"site": site, "registry": registry}
    assert world.inventory.tags("no-site") == {"registry": registry}
    # What a Mender dynamic group with the filter `site = lab` holds:
    assert world.inventory.selected(site="lab") == {"lab-1", "lab-2"}
    world.inventory.person_tags("lab-1", owner="alice", site_notes="bench 3")
    before = {d: world.inventory.record(d) for d in [*sites, "no-site"]}
    third = world.sync()
    assert tag_actions(third) == {}
    assert third["stats"]["tag_writes"] == 0
    assert {d: world.inventory.record(d) for d in before} == before  # same tags, same ETags
    assert world.inventory.tags("lab-1") == {"site": "lab", "registry": registry,
                                             "owner": "alice", "site_notes": "bench 3"}


def test_the_event_path_tags_a_new_device_and_follows_a_metadata_change(
        world: World) -> None:
    client = iot_client(world.sandbox.registry_url)
    # Inventory learns of new devices late: the first try cannot tag, the event comes again.
    world.inventory_delay(1500)
    with FunctionProcess("on_push", world.env, world.work / "on_push.log") as function:
        requests.post(f"{world.sandbox.registry_url}/_sandbox/audit-endpoints", timeout=10,
                      json={"endpoints": [function.url]}).raise_for_status()
        name = f"{world.ref.path}/devices/ev-1"
        client.create_device(parent=world.ref.path, device={
            "id": "ev-1", "metadata": {"site": "lab"},
            "credentials": [iot_credential(credential("ec", 7).key)]})
        registry = world.ref.registry
        wait_for(lambda: world.inventory.tags("ev-1") == {"site": "lab", "registry": registry},
                 60, "ev-1 tagged")
        retried = [r for r in function.records() if r.get("device") == f"{registry}/ev-1"
                   and r.get("outcome") == "retry"]
        assert retried and "not yet in inventory" in retried[0]["message"]
        world.inventory.person_tags("ev-1", owner="bob")
        client.update_device(device={"name": name, "metadata": {"site": "field"}},
                             update_mask={"paths": ["metadata"]})
        wait_for(lambda: world.inventory.tags("ev-1").get("site") == "field", 60,
                 "the tag to follow the metadata")
        assert world.inventory.tags("ev-1") == {"site": "field", "registry": registry,
                                                "owner": "bob"}
