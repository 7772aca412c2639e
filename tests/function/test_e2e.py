"""End to end over real HTTP: the functions-framework server running functions/main.py, the
sandbox (registry stand-in delivering audit events as Pub/Sub push, Mender stand-in), and the
real google-cloud-iot client making the registry changes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.model import RegistryRef
from tests.function.e2e_support import (
    MenderView,
    create_device,
    der,
    env_from_config,
    iot_client,
    iot_credential,
    wait_for,
)
from tests.function.helpers import audit_entry, public_pem, push_body
from tests.support.function_proc import FunctionProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# The gen1 target needs its signature type on the command line (no decorator for it).
TARGETS = {"on_push": (), "on_device_event": (),
           "on_device_event_legacy": ("--signature-type", "event")}


@dataclass
class Stack:
    sandbox: Any
    ref: RegistryRef
    client: Any
    mender: MenderView
    functions: dict[str, FunctionProcess]

    def deliver_to(self, *endpoints: str) -> None:
        answer = requests.post(f"{self.sandbox.registry_url}/_sandbox/audit-endpoints",
                               json={"endpoints": list(endpoints)}, timeout=10)
        answer.raise_for_status()

    def logs(self) -> str:
        return "".join(f.output() for f in self.functions.values())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from bridge.sandbox.launcher import Sandbox

    work = tmp_path_factory.mktemp("function-e2e")
    sandbox = Sandbox(work / "sandbox", tls=False).start()
    functions: dict[str, FunctionProcess] = {}
    try:
        env = env_from_config(Path(sandbox.config_path), LOG_LEVEL="INFO")
        ref = RegistryRef(env["IOT_PROJECT"], env["IOT_LOCATION"],
                          env["IOT_REGISTRIES"].split(",")[0])
        for target, extra in TARGETS.items():
            functions[target] = FunctionProcess(target, env, work / f"{target}.log", *extra)
        yield Stack(sandbox, ref, iot_client(sandbox.registry_url),
                    MenderView(sandbox.mender_url, sandbox.token.reveal()), functions)
    finally:
        for server in functions.values():
            server.stop()
        sandbox.stop()


def only(keys: dict[bytes, str], pem: str) -> bool:
    return keys == {der(pem): "preauthorized"}


@pytest.mark.parametrize("target", TARGETS)
def test_create_rotate_delete_reach_mender_through_the_function(
        stack: Stack, target: str) -> None:
    stack.deliver_to(stack.functions[target].url)
    device_id = f"e2e-{target.replace('_', '-')}"
    first, second = public_pem(), public_pem()
    create_device(stack.client, stack.ref, device_id, first)
    wait_for(lambda: only(stack.mender.keys(device_id), first), what="preauthorized in Mender")

    stack.client.update_device(device={"name": f"{stack.ref.path}/devices/{device_id}",
                                       "credentials": [iot_credential(second)]},
                               update_mask={"paths": ["credentials"]})
    wait_for(lambda: only(stack.mender.keys(device_id), second), what="the key rotated")

    stack.client.delete_device(name=f"{stack.ref.path}/devices/{device_id}")
    wait_for(lambda: stack.mender.devices(device_id) == [], what="decommissioned")
    token = stack.sandbox.token.reveal()
    assert token not in stack.logs()
    lines = [json.loads(x) for x in stack.functions[target].output().splitlines()
             if x.startswith("{")]
    assert any(x.get("action") == "preauthorize" and x.get("device") == f"{stack.ref.registry}/"
               f"{device_id}" and x.get("message_id") for x in lines)


def _post(server: FunctionProcess, body: bytes) -> requests.Response:
    return requests.post(server.url, data=body, timeout=60,
                         headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("target", ["on_push", "on_device_event"])
def test_a_transient_mender_failure_answers_500_and_a_redelivery_succeeds(
        stack: Stack, target: str) -> None:
    stack.deliver_to()
    device_id = f"flaky-{target.replace('_', '-')}"
    pem = public_pem()
    device = create_device(stack.client, stack.ref, device_id, pem)
    body = push_body(audit_entry("CreateDevice", stack.ref, device_id, str(device.num_id)))
    stack.sandbox.mender_faults.update({"error_rate": 1.0, "error_statuses": [503]})
    try:
        answer = _post(stack.functions[target], body)
    finally:
        stack.sandbox.mender_faults.update({"error_rate": 0.0})
    assert answer.status_code in (500, 503)
    assert "Traceback" not in stack.functions[target].output()
    assert stack.mender.devices(device_id) == []
    assert _post(stack.functions[target], body).status_code == 200
    assert only(stack.mender.keys(device_id), pem)


def test_a_malformed_event_or_an_invalid_key_is_acknowledged_and_logged(stack: Stack) -> None:
    stack.deliver_to()
    server = stack.functions["on_push"]
    assert _post(server, b"this is not a push envelope").status_code == 200
    assert _post(server, push_body("not a log entry", "bad-1")).status_code == 200
    device = create_device(stack.client, stack.ref, "weak-key", public_pem("rsa", 1024),
                           "RSA_PEM")
    body = push_body(audit_entry("CreateDevice", stack.ref, "weak-key", str(device.num_id)))
    assert _post(server, body).status_code == 200
    assert stack.mender.devices("weak-key") == []
    reasons = [json.loads(x) for x in server.output().splitlines() if x.startswith("{")]
    assert any("event ignored" in r["message"] and "not valid JSON" in r["message"]
               for r in reasons)
    assert any(r.get("device") == f"{stack.ref.registry}/weak-key" and "1024" in r["message"]
               and r["severity"] == "WARNING" for r in reasons)


def test_duplicate_reordered_and_concurrent_deliveries_end_in_the_right_state(
        stack: Stack) -> None:
    stack.deliver_to()
    servers = list(stack.functions.values())
    old, new = public_pem(), public_pem()
    device = create_device(stack.client, stack.ref, "dup-1", old)
    num = str(device.num_id)
    stack.client.update_device(device={"name": f"{stack.ref.path}/devices/dup-1",
                                       "credentials": [iot_credential(new)]},
                               update_mask={"paths": ["credentials"]})
    create = push_body(audit_entry("CreateDevice", stack.ref, "dup-1", num), "c-1")
    update = push_body(audit_entry("UpdateDevice", stack.ref, "dup-1", num, "credentials"), "u-1")
    # Update first, then a burst of duplicates of both to both entry points at once.
    assert _post(servers[0], update).status_code == 200
    burst = [(servers[i % 2], create if i % 3 else update) for i in range(12)]
    answers: list[int] = []
    threads = [threading.Thread(target=lambda s=s, b=b: answers.append(_post(s, b).status_code))
               for s, b in burst]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * len(burst)
    assert len(stack.mender.devices("dup-1")) == 1
    assert only(stack.mender.keys("dup-1"), new)

    # A delete handled before its create leaves nothing behind.
    gone = create_device(stack.client, stack.ref, "gone-1", public_pem())
    stack.client.delete_device(name=f"{stack.ref.path}/devices/gone-1")
    for body in (push_body(audit_entry("DeleteDevice", stack.ref, "gone-1", str(gone.num_id))),
                 push_body(audit_entry("CreateDevice", stack.ref, "gone-1", str(gone.num_id)))):
        assert _post(servers[1], body).status_code == 200
    assert stack.mender.devices("gone-1") == []


def test_reconcile_and_provision_targets_with_device_notification(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import functions_framework

    from tests.function.helpers import SECRET

    stack.deliver_to()
    for key, value in env_from_config(Path(stack.sandbox.config_path)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("NOTIFY_DEVICE", "true")
    source = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")
    pems = {f"backlog-{i}": public_pem() for i in range(3)}
    for device_id, pem in pems.items():
        create_device(stack.client, stack.ref, device_id, pem)

    reconcile = functions_framework.create_app(target="reconcile", source=source)
    answer = reconcile.test_client().post("/")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert (answer.json or {})["summary"]["done"] >= 3
    for device_id, pem in pems.items():
        assert only(stack.mender.keys(device_id), pem)

    pem = public_pem()
    create_device(stack.client, stack.ref, "hooked-fn", pem)
    hook = functions_framework.create_app(target="provision", source=source).test_client()
    body = {"registry": stack.ref.registry, "device_id": "hooked-fn"}
    assert hook.post("/", json=body).status_code == 401
    answer = hook.post("/", json=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert answer.status_code == 200
    assert only(stack.mender.keys("hooked-fn"), pem)
    config = stack.client.get_device(name=f"{stack.ref.path}/devices/hooked-fn").config
    assert json.loads(config.binary_data) == {
        "mender": {"preauthorized": True, "server_url": stack.sandbox.mender_url}}


def test_cloudevents_in_binary_and_structured_mode_and_direct_audit_events(
        stack: Stack) -> None:
    import base64

    from cloudevents.conversion import to_binary, to_structured
    from cloudevents.http import CloudEvent

    stack.deliver_to()
    server = stack.functions["on_device_event"]
    cases = {"ce-binary": (to_binary, "published"), "ce-structured": (to_structured, "published"),
             "ce-audit": (to_binary, "audit")}
    for device_id, (encode, kind) in cases.items():
        pem = public_pem()
        device = create_device(stack.client, stack.ref, device_id, pem)
        entry = audit_entry("CreateDevice", stack.ref, device_id, str(device.num_id))
        if kind == "audit":
            attributes = {"type": "google.cloud.audit.log.v1.written",
                          "source": "//cloudaudit.googleapis.com/projects/p/logs/activity"}
            data: dict[str, Any] = entry
        else:
            attributes = {"type": "google.cloud.pubsub.topic.v1.messagePublished",
                          "source": "//pubsub.googleapis.com/projects/p/topics/t"}
            data = {"message": {"data": base64.b64encode(json.dumps(entry).encode()).decode(),
                                "messageId": f"id-{device_id}"},
                    "subscription": "projects/p/subscriptions/s"}
        headers, body = encode(CloudEvent(attributes, data))
        headers.setdefault("Content-Type", "application/json")
        answer = requests.post(server.url, data=body, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        assert only(stack.mender.keys(device_id), pem), device_id
