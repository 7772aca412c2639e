"""Event handling of bridge.runtime over the fakes: ack vs retry, logs, build-once, reconcile."""

from __future__ import annotations

import threading

import pytest

from bridge.errors import ConfigError, TransientApiError
from bridge.webhook import create_app, push_response
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
    assert result.outcome == "done"
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
    assert result.outcome == "done"
    assert world.mender.snapshot() == {}


def test_a_transient_failure_raises_so_the_event_is_delivered_again(
        world: World, logbuf: LogCapture) -> None:
    body = create(world)
    world.mender.fail_next("preauthorize")
    with pytest.raises(TransientApiError):
        world.runtime.handle_push(body)
    assert world.mender.snapshot() == {}
    assert logbuf.records()[-1]["outcome"] == "retry"
    assert world.runtime.handle_push(body).outcome == "done"
    assert len(world.mender.snapshot()) == 1


def test_a_permanent_failure_is_logged_and_acknowledged(
        world: World, logbuf: LogCapture) -> None:
    body = create(world)
    world.mender.fail_next("preauthorize", error=permanent("mender", "preauthorize"))
    result = world.runtime.handle_push(body)
    assert result.outcome == "failed"
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
    assert result.outcome == "ignored" and result.reason
    [line] = logbuf.records()
    assert line["severity"] == "WARNING" and result.reason in line["message"]
    assert world.builds == [] and world.mender.total_calls == 0


def test_the_push_view_answers_200_503_and_500(logbuf: LogCapture) -> None:
    world = make_world()
    body = create(world)
    app = create_app(world.runtime)
    with app.test_request_context("/", method="POST", data=b"junk"):
        from flask import request
        assert push_response(world.runtime, request).status_code == 200
    world.mender.fail_next("preauthorize")
    with app.test_request_context("/", method="POST", data=body):
        assert push_response(world.runtime, request).status_code == 503
    with app.test_request_context("/", method="POST", data=body):
        assert push_response(world.runtime, request).status_code == 200
    broken = make_world(mender_url="ftp://nowhere")
    with app.test_request_context("/", method="POST", data=body):
        assert push_response(broken.runtime, request).status_code == 500


def test_serve_pubsub_route_needs_the_secret_as_bearer_or_query(world: World) -> None:
    client = create_app(world.runtime).test_client()
    body = create(world)
    assert client.post("/pubsub", data=body).status_code == 401
    assert client.post("/pubsub?token=wrong", data=body).status_code == 401
    assert world.mender.total_calls == 0
    assert client.post(f"/pubsub?token={SECRET}", data=body).status_code == 200
    assert client.post("/pubsub", data=body,
                       headers={"Authorization": f"Bearer {SECRET}"}).status_code == 200
    assert len(world.mender.snapshot()) == 1


def test_a_configuration_error_raises_on_every_event_and_is_logged_once(
        logbuf: LogCapture) -> None:
    world = make_world(iot_project=None, mender_token=None)
    body = push_body(audit_entry("CreateDevice", REF, "dev-1", "7"))
    for _ in range(3):
        with pytest.raises(ConfigError):
            world.runtime.handle_push(body)
    critical = [r for r in logbuf.records() if r["severity"] == "CRITICAL"]
    assert len(critical) == 1
    assert "IOT_PROJECT" in critical[0]["message"] and "MENDER_TOKEN" in critical[0]["message"]


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


def test_reconcile_backfills_and_answers_with_the_summary(
        world: World, logbuf: LogCapture) -> None:
    for i in range(3):
        world.registry.create(REF, f"dev-{i}", (credential(),))
    client = create_app(world.runtime).test_client()
    from bridge.webhook import reconcile_response

    with client.application.test_request_context("/", method="POST"):
        from flask import request
        response = reconcile_response(world.runtime, request)
    assert response.status_code == 200
    assert (response.json or {})["summary"]["done"] == 3
    assert len(world.mender.snapshot()) == 3
    assert any(r["message"] == "reconcile finished" for r in logbuf.records())


def test_the_token_never_reaches_the_logs(world: World, logbuf: LogCapture) -> None:
    world.runtime.handle_push(create(world))
    world.runtime.log.info("settings: %r", world.runtime.settings())
    world.runtime.log.info("raw: %s", TOKEN)
    assert TOKEN not in logbuf.getvalue() and SECRET not in logbuf.getvalue()


def test_reconcile_reports_failures_with_500_and_refuses_get(world: World) -> None:
    from flask import request

    from bridge.webhook import reconcile_response

    world.registry.create(REF, "dev-1", (credential(),))
    world.mender.fail_next("preauthorize", error=permanent("mender", "preauthorize"))
    app = create_app(world.runtime)
    with app.test_request_context("/", method="GET"):
        assert reconcile_response(world.runtime, request).status_code == 405
    assert world.mender.total_calls == 0
    with app.test_request_context("/", method="POST"):
        response = reconcile_response(world.runtime, request)
    assert response.status_code == 500
    assert (response.json or {})["failed"] is True
