"""Event handling of bridge.runtime over the fakes: one verdict per event (ack or deliver
again), logs, build-once, scope, reconcile."""

from __future__ import annotations

import json
import threading

import pytest

from bridge.config import Settings
from bridge.errors import AuthError, PermanentApiError, TransientApiError
from bridge.model import RegistryRef
from bridge.runtime import CONFIG_RETRY_S, Runtime
from tests.fakes import permanent
from tests.function.e2e_support import der
from tests.function.helpers import (
    REF,
    SECRET,
    TOKEN,
    LogCapture,
    World,
    audit_entry,
    credential,
    make_world,
    push_body,
)


def create(world: World, device_id: str = "dev-1") -> bytes:
    device = world.registry.create(REF, device_id, (credential(),))
    return push_body(audit_entry("CreateDevice", REF, device_id, device.num_id), "m-1")


def test_a_create_event_preauthorizes_and_logs_one_line_per_event_and_action(
        world: World, logbuf: LogCapture) -> None:
    result = world.runtime.handle_push(create(world))
    assert result.verdict == "done"
    assert len(world.mender.snapshot()) == 1
    records = logbuf.records()
    assert [r.get("action") for r in records] == [None, "preauthorize"]
    assert all(r["message_id"] == "m-1" and r["device"] == "fleet/dev-1" for r in records)
    assert records[1]["outcome"] == "done" and records[1]["severity"] == "INFO"
    assert records[1]["logging.googleapis.com/labels"]["action"] == "preauthorize"
    assert records[1]["logging.googleapis.com/sourceLocation"]["file"].endswith("runtime.py")


def test_a_delete_event_decommissions(world: World) -> None:
    world.runtime.handle_push(create(world))
    world.registry.delete(REF, "dev-1")
    result = world.runtime.handle_push(
        push_body(audit_entry("DeleteDevice", REF, "dev-1", "1"), "m-2"))
    assert result.verdict == "done"
    assert world.mender.snapshot() == {}


def test_a_transient_failure_is_delivered_again(world: World, logbuf: LogCapture) -> None:
    body = create(world)
    world.mender.fail_next("preauthorize")
    result = world.runtime.handle_push(body)
    assert (result.verdict, result.ack) == ("retry", False)
    assert world.mender.snapshot() == {}
    assert logbuf.records()[-1]["outcome"] == "retry"
    assert world.runtime.handle_push(body).verdict == "done"
    assert len(world.mender.snapshot()) == 1


def test_a_permanent_failure_is_logged_and_acknowledged(
        world: World, logbuf: LogCapture) -> None:
    body = create(world)
    world.mender.fail_next("preauthorize", error=permanent("mender", "preauthorize"))
    result = world.runtime.handle_push(body)
    assert (result.verdict, result.ack) == ("failed", True)
    assert any(r["severity"] == "ERROR" and r.get("outcome") == "failed"
               and r["device"] == "fleet/dev-1" for r in logbuf.records())


@pytest.mark.parametrize("body", [
    b"not json", b"{}", b'{"message": {"data": "!!"}}',
    push_body("not a log entry"),
    push_body({"protoPayload": {"methodName": "google.cloud.iot.v1.DeviceManager.GetDevice"}}),
])
def test_an_unreadable_event_is_acknowledged_with_the_reason(
        world: World, logbuf: LogCapture, body: bytes) -> None:
    result = world.runtime.handle_push(body)
    assert (result.verdict, result.ack) == ("ignored", True) and result.reason
    [line] = logbuf.records()
    assert line["severity"] == "WARNING" and result.reason in line["message"]
    assert world.builds == [] and world.mender.total_calls == 0


def test_a_configuration_error_is_retried_logged_once_and_read_again_later(
        logbuf: LogCapture) -> None:
    now = [0.0]
    env: dict[str, str] = {"IOT_PROJECT": REF.project, "IOT_REGISTRIES": REF.registry}
    world = make_world()
    runtime = Runtime(lambda: Settings.from_env(env), world.runtime._build,
                      clock=lambda: now[0])
    world.registry.create(REF, "dev-1", (credential(),))
    body = push_body(audit_entry("CreateDevice", REF, "dev-1", "7"))
    for _ in range(3):
        result = runtime.handle_push(body)
        assert (result.verdict, result.ack) == ("retry", False)
    critical = [r for r in logbuf.records() if r["severity"] == "CRITICAL"]
    assert len(critical) == 1 and "MENDER_TOKEN" in critical[0]["message"]
    env["MENDER_TOKEN"] = TOKEN  # fixed: read again only after the retry delay
    assert runtime.handle_push(body).verdict == "retry"
    now[0] += CONFIG_RETRY_S
    assert runtime.handle_push(body).verdict == "done"
    assert len(world.mender.snapshot()) == 1


@pytest.mark.parametrize(("failure", "verdict"), [
    (TransientApiError("down", service="mender", status=503), "retry"),
    (AuthError("token refused", service="mender", status=401), "retry"),
    (PermanentApiError("bad", service="mender", status=400), "failed"),
    (RuntimeError("a bug"), "retry"),
])
def test_every_failure_maps_to_one_verdict(world: World, logbuf: LogCapture,
                                           failure: Exception, verdict: str) -> None:
    body = create(world)
    world.mender.fail_next("preauthorize", error=failure)  # type: ignore[arg-type]
    result = world.runtime.handle_push(body)
    assert result.verdict == verdict and result.ack == (verdict != "retry")
    if isinstance(failure, RuntimeError):
        [line] = [r for r in logbuf.records() if "internal error" in r["message"]]
        assert "RuntimeError: a bug" in line["stack_trace"]
    assert world.mender.snapshot() == {}


def test_an_event_outside_the_scope_is_acknowledged_and_touches_nothing(
        world: World, logbuf: LogCapture) -> None:
    other = RegistryRef(REF.project, REF.location, "other-registry")
    device = world.registry.create(other, "dev-1", (credential(),))
    result = world.runtime.handle_push(
        push_body(audit_entry("CreateDevice", other, "dev-1", device.num_id)))
    assert (result.verdict, result.ack) == ("ignored", True)
    assert "not one of the configured registries" in result.reason
    assert world.mender.total_calls == 0 and world.registry.calls["get_device"] == 0
    assert logbuf.records()[-1]["outcome"] == "ignored"


def test_a_pulled_message_is_the_log_entry_itself(world: World) -> None:
    device = world.registry.create(REF, "dev-1", (credential(),))
    data = json.dumps(audit_entry("CreateDevice", REF, "dev-1", device.num_id)).encode()
    assert world.runtime.handle_message(data, {}, "m-9").verdict == "done"
    assert len(world.mender.snapshot()) == 1
    assert world.runtime.handle_message(b"{", {}, "m-10").verdict == "ignored"


def test_concurrent_first_events_build_the_bridge_once(world: World) -> None:
    bodies = [create(world, f"dev-{i}") for i in range(8)]
    barrier = threading.Barrier(len(bodies))

    def deliver(body: bytes) -> None:
        barrier.wait()
        world.runtime.handle_push(body)

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(world.builds) == 1
    assert len(world.mender.snapshot()) == 8


def test_duplicate_and_reordered_events_end_in_the_registry_state(world: World) -> None:
    create_body = create(world)
    first = world.registry.devices[REF]["dev-1"]
    rotated = credential()
    world.registry.update(REF, "dev-1", credentials=(rotated,))
    update_body = push_body(audit_entry("UpdateDevice", REF, "dev-1", first.num_id,
                                        "credentials"), "m-3")
    for body in (update_body, create_body, create_body, update_body):
        world.runtime.handle_push(body)
    [(_, sets)] = world.mender.snapshot().items()
    [(pubkey, status)] = sets.items()
    assert status == "preauthorized" and der(pubkey) == der(rotated.key)  # the rotated key


def test_reconcile_backfills_and_remembers_the_last_run(
        world: World, logbuf: LogCapture) -> None:
    for i in range(3):
        world.registry.create(REF, f"dev-{i}", (credential(),))
    assert world.runtime.health()["last_reconcile"] is None
    report = world.runtime.reconcile()
    assert report.devices()["done"] == 3 and len(world.mender.snapshot()) == 3
    assert world.runtime.health()["last_reconcile"]["devices"]["done"] == 3
    assert any(r["message"] == "reconcile finished" for r in logbuf.records())


def test_the_token_never_reaches_the_logs(world: World, logbuf: LogCapture) -> None:
    world.runtime.handle_push(create(world))
    world.runtime.log.info("settings: %r", world.runtime.settings())
    world.runtime.log.info("raw: %s", TOKEN)
    assert TOKEN not in logbuf.getvalue() and SECRET not in logbuf.getvalue()
