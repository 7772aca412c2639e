"""Issue 13, events not scoped and identity collisions, end to end through `on_push`,
`on_device_event`, `serve` and `sync`: an event from a registry, location or project the
bridge does not serve is acknowledged and logged as ignored, and a Mender identity that two
configured registries' devices share is neither re-keyed nor decommissioned for one of them.
The final state of both services is read back over their APIs. The same rules over the fakes:
tests/core/test_rulebook.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from bridge.device import SimulatedDevice
from bridge.model import RegistryRef
from tests.security.attack_support import (
    AUTH,
    ELSEWHERE,
    HOME,
    OUTSIDE,
    SECOND,
    VICTIM,
    World,
    attack_world,
    cloudevent,
    ec_credential,
    entry,
    functions,
    push,
)
from tests.serve.support import Serve
from tests.support.function_proc import FunctionProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class Stack:
    world: World
    functions: dict[str, FunctionProcess]
    serve: Serve


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("attacks-scope")
    with attack_world(work) as world, \
            functions(world.env, work, "on_push", "on_device_event") as running:
        serve = Serve(["--port", "0"], world.env, work / "serve.log")
        try:
            yield Stack(world, running, serve)
        finally:
            serve.stop()


def deliver(stack: Stack, log_entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry to on_push, serve's /pubsub and on_device_event; the push endpoints' answers
    (every one a 200: an acknowledgement)."""
    answers = []
    for url, headers in ((stack.functions["on_push"].url, None),
                         (f"{stack.serve.url}/pubsub", AUTH)):
        answer = push(url, log_entry, headers)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    assert cloudevent(stack.functions["on_device_event"].url, log_entry).status_code == 200
    return answers


def ignored_lines(stack: Stack, ref: RegistryRef) -> list[dict[str, Any]]:
    """The lines the functions logged as ignored because of `ref`."""
    return [r for f in stack.functions.values() for r in f.records()
            if r.get("outcome") == "ignored" and ref.path in r.get("message", "")]


@pytest.mark.parametrize("ref", ELSEWHERE, ids=["registry", "location", "project"])
def test_a_delete_elsewhere_naming_the_victim_is_acknowledged_and_ignored(
        stack: Stack, ref: RegistryRef) -> None:
    # The attacker's registry really deletes its own `victim-1`; the entry is a true one.
    num_id = stack.world.registry_call("GET", f"{ref.path}/devices/{VICTIM}").json()["numId"]
    stack.world.delete_device(ref, VICTIM)
    before = stack.world.state()
    logged = len(ignored_lines(stack, ref))
    answers = deliver(stack, entry("DeleteDevice", ref, VICTIM, num_id))
    assert [a["outcome"] for a in answers] == ["ignored", "ignored"]
    assert all(ref.path in a["reason"] for a in answers)
    assert len(ignored_lines(stack, ref)) - logged == 2
    assert stack.world.state() == before
    assert [s for _, s in stack.world.auth_sets(VICTIM)] == ["accepted"]


def test_a_create_or_update_in_an_unconfigured_registry_admits_and_re_keys_nothing(
        stack: Stack) -> None:
    intruder = SimulatedDevice.generate("intruder-1")
    created = stack.world.add_device(OUTSIDE, "intruder-1", [ec_credential(intruder.public_pem)])
    rekey = SimulatedDevice.generate(VICTIM)
    stack.world.registry_call("PATCH", f"{OUTSIDE.path}/devices/{VICTIM}",
                              params={"updateMask": "credentials"},
                              json={"credentials": [ec_credential(rekey.public_pem)]})
    before = stack.world.state()
    for attack in (entry("CreateDevice", OUTSIDE, "intruder-1", created["numId"]),
                   entry("UpdateDevice", OUTSIDE, VICTIM)):
        assert [a["outcome"] for a in deliver(stack, attack)] == ["ignored", "ignored"]
    answer = requests.post(f"{stack.serve.url}/provision", headers=AUTH, timeout=60,
                           json={"registry": OUTSIDE.path, "device_id": "intruder-1"})
    assert answer.status_code == 400
    assert stack.world.state() == before
    assert stack.world.auth_sets("intruder-1") == []


def test_without_configured_registries_the_scope_is_the_project_and_location(
        stack: Stack, tmp_path: Any) -> None:
    env = {k: v for k, v in stack.world.env.items() if k != "IOT_REGISTRIES"}
    serve = Serve(["--port", "0"], env, tmp_path / "serve.log")
    try:
        before = stack.world.state()
        for ref in ELSEWHERE[1:]:
            answer = push(f"{serve.url}/pubsub", entry("DeleteDevice", ref, VICTIM), AUTH)
            assert answer.json()["outcome"] == "ignored", answer.text
            assert "outside the configured project and location" in answer.json()["reason"]
            provision = requests.post(f"{serve.url}/provision", headers=AUTH, timeout=60,
                                      json={"registry": ref.path, "device_id": VICTIM})
            assert provision.status_code == 400, provision.text
        assert stack.world.state() == before
    finally:
        serve.stop()


def twins(stack: Stack, device_id: str) -> list[tuple[str, str]]:
    """`device_id` registered in HOME and admitted through on_push, then registered in SECOND
    with another key: the auth sets admitted for HOME's."""
    first, second = SimulatedDevice.generate(device_id), SimulatedDevice.generate(device_id)
    made = stack.world.add_device(HOME, device_id, [ec_credential(first.public_pem)])
    assert push(stack.functions["on_push"].url,
                entry("CreateDevice", HOME, device_id, made["numId"])).status_code == 200
    admitted = stack.world.auth_sets(device_id)
    assert [s for _, s in admitted] == ["preauthorized"]
    stack.world.add_device(SECOND, device_id, [ec_credential(second.public_pem)])
    return admitted


def test_twins_in_two_configured_registries_keep_the_first_owner(stack: Stack) -> None:
    admitted = twins(stack, "twin-1")
    before = stack.world.state()
    number = stack.world.registry_call("GET", f"{SECOND.path}/devices/twin-1").json()["numId"]
    deliver(stack, entry("CreateDevice", SECOND, "twin-1", number))
    assert stack.world.state() == before, "the twin in SECOND re-keyed the first one"

    # Deleting one twin must not decommission the Mender device the other still owns.
    stack.world.delete_device(HOME, "twin-1")
    before = stack.world.state()
    deliver(stack, entry("DeleteDevice", HOME, "twin-1"))
    assert stack.world.state() == before
    assert stack.world.auth_sets("twin-1") == admitted
    conflicts = [r for f in stack.functions.values() for r in f.records()
                 if r.get("outcome") == "conflict" and "twin-1" in r.get("message", "")]
    assert conflicts


def test_sync_changes_no_twin_it_reports_as_a_collision(stack: Stack) -> None:
    admitted = twins(stack, "twin-2")
    before = stack.world.state()
    synced = stack.world.cli("sync", "--json")
    assert synced.returncode in (0, 1), synced.stderr
    assert "same Mender identity" in synced.stdout
    assert stack.world.auth_sets("twin-2") == admitted

    def twin_2(state: object) -> list[str]:  # twin-1 of the test above may rightly change
        return [text for part in vars(state).values() for text in part if "twin-2" in text]

    assert twin_2(stack.world.state()) == twin_2(before)
