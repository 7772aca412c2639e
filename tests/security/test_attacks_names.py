"""Issue 13, injection through names, end to end: hostile device ids and registries sent to
`provision` (functions-framework and `serve`), in the labels and names of events (`on_push`,
`on_device_event`, `serve`'s /pubsub) and on the command line (`device`, `sync --registry`)
never reach another device: the victim's auth set in Mender and every registry device read
back afterwards are exactly as before. The adapters' own paths are checked request by request
in test_paths.py; hostile JSON bodies of `serve` in tests/serve/test_endpoints.py."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from bridge.sandbox.launcher import REGISTRY
from tests.security.attack_support import (
    AUTH,
    HOME,
    VICTIM,
    World,
    attack_world,
    cloudevent,
    entry,
    functions,
    ignored,
    push,
)
from tests.serve.support import Serve
from tests.serve.test_endpoints import HOSTILE as HOSTILE_BODIES
from tests.support.function_proc import FunctionProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The list, each aimed at the victim ({} is its id, or its registry's). `legal`: a valid
# Cloud IoT id (`%` and `+` are allowed), so it travels escaped to the registry, which has no
# such device; the others are refused before any request.
PATTERNS = [("{}?fieldMask=name", False), ("{}#frag", False), ("..", False),
            ("projects/../locations/../registries/..", False), ("x%2F..%2F{}", True),
            ("{}%23frag", True), ("{}%3FfieldMask%3Dname", True), ("{}%00", True),
            ("{}:verb", False), ("{}+", True)]
IDS = [p for p, _ in PATTERNS]


@dataclass
class Stack:
    world: World
    functions: dict[str, FunctionProcess]
    serve: Serve

    def provision_urls(self) -> list[str]:
        return [self.functions["provision"].url, f"{self.serve.url}/provision"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("attacks-names")
    with attack_world(work) as world, \
            functions(world.env, work, "provision", "on_push", "on_device_event") as running:
        serve = Serve(["--port", "0"], world.env, work / "serve.log")
        try:
            yield Stack(world, running, serve)
        finally:
            serve.stop()


def provision(url: str, body: Any) -> requests.Response:
    return requests.post(url, json=body, headers=AUTH, timeout=60)


def one_line_reason(answer: requests.Response) -> str:
    reason = str(answer.json()["error"])
    assert reason and "\n" not in reason
    return reason


def deliver(stack: Stack, log_entry: dict[str, Any]) -> list[str]:
    """The entry to every event entry point: the outcomes the push endpoints answered."""
    outcomes = []
    for url, headers in ((stack.functions["on_push"].url, None),
                         (f"{stack.serve.url}/pubsub", AUTH)):
        answer = push(url, log_entry, headers)
        assert answer.status_code == 200, answer.text
        outcomes.append(answer.json()["outcome"])
    assert cloudevent(stack.functions["on_device_event"].url, log_entry).status_code == 200
    return outcomes


@pytest.mark.parametrize(("pattern", "legal"), PATTERNS, ids=IDS)
def test_a_hostile_device_id_in_a_provision_request_touches_no_device(
        stack: Stack, pattern: str, legal: bool) -> None:
    before = stack.world.state()
    for url in stack.provision_urls():
        answer = provision(url, {"registry": REGISTRY, "device_id": pattern.format(VICTIM)})
        assert answer.status_code == (200 if legal else 400), answer.text
        if not legal:
            assert "device id" in one_line_reason(answer)
    assert stack.world.state() == before


@pytest.mark.parametrize(("pattern", "legal"), PATTERNS, ids=IDS)
def test_a_hostile_registry_in_a_provision_request_is_refused(
        stack: Stack, pattern: str, legal: bool) -> None:
    before = stack.world.state()
    for url in stack.provision_urls():
        answer = provision(url, {"registry": pattern.format(REGISTRY), "device_id": VICTIM})
        assert answer.status_code == 400, answer.text
        assert "registry" in one_line_reason(answer) or "project" in answer.json()["error"]
    assert stack.world.state() == before


@pytest.mark.parametrize(("pattern", "legal"), PATTERNS, ids=IDS)
def test_a_hostile_device_name_in_an_event_touches_no_device(
        stack: Stack, pattern: str, legal: bool) -> None:
    before = stack.world.state()
    seen = ignored(stack.functions["on_device_event"])
    name, expected = pattern.format(VICTIM), []
    for method in ("CreateDevice", "UpdateDevice", "DeleteDevice"):
        outcomes = deliver(stack, entry(method, HOME, name))
        # A legal name is looked up (escaped) and found nowhere; any other is ignored, but for
        # a delete whose name cannot be parsed at all: it is read by its numeric-id label
        # (which names no device here) like an entry without a name.
        unreadable = method == "DeleteDevice" and "/" in name
        expected.append("done" if legal or unreadable else "ignored")
        assert outcomes == [expected[-1]] * 2
    assert ignored(stack.functions["on_device_event"]) - seen == expected.count("ignored")
    assert stack.world.state() == before


@pytest.mark.parametrize(("pattern", "legal"), PATTERNS, ids=IDS)
@pytest.mark.parametrize("label", ["device_registry_id", "project_id", "location"])
def test_a_hostile_registry_label_on_the_victims_delete_is_ignored(
        stack: Stack, pattern: str, legal: bool, label: str) -> None:
    before = stack.world.state()
    seen = ignored(stack.functions["on_device_event"])
    default = {"device_registry_id": HOME.registry, "project_id": HOME.project,
               "location": HOME.location}[label]
    attack = entry("DeleteDevice", HOME, VICTIM, **{label: pattern.format(default)})
    assert deliver(stack, attack) == ["ignored", "ignored"]
    assert ignored(stack.functions["on_device_event"]) - seen == 1
    assert stack.world.state() == before


def test_hostile_names_on_the_command_line_touch_no_device(stack: Stack) -> None:
    # Each pattern as `device ID` and as `sync --prune --registry` (with --prune a registry read
    # wrongly would decommission the victim), two processes at a time (CPU: two cores).
    before = stack.world.state()
    runs = [(("device", p.format(VICTIM), "--registry", REGISTRY), 0 if legal else 2)
            for p, legal in PATTERNS]
    runs += [(("sync", "--prune", "--registry", p.format(REGISTRY)), 2) for p in IDS]
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda args: stack.world.cli(*args), [a for a, _ in runs]))
    wrong = [(args, result.returncode, result.stderr) for (args, code), result
             in zip(runs, done, strict=True) if result.returncode != code
             or (code == 2 and (result.stderr.count("\n") != 1 or "Traceback" in result.stderr))]
    assert not wrong
    assert stack.world.state() == before


@pytest.mark.parametrize(("name", "body"), HOSTILE_BODIES, ids=[n for n, _ in HOSTILE_BODIES])
def test_a_hostile_body_to_the_provision_function_is_400(
        stack: Stack, name: str, body: bytes) -> None:
    before = stack.world.state()
    answer = requests.post(stack.functions["provision"].url, data=body, timeout=60,
                           headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    one_line_reason(answer)
    assert stack.world.state() == before
