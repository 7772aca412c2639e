"""The provisioning webhook, the push route and the serve app, through Flask's test client over
the fakes: statuses, reasons, and the fakes' final state."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge import logs
from bridge.errors import TransientApiError
from bridge.webhook import create_app
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

AUTH = {"Authorization": f"Bearer {SECRET}"}


def client(world: World) -> FlaskClient:
    return create_app(world.runtime).test_client()


def provision(world: World, body: Any = None, headers: dict[str, str] | None = None,
              **kwargs: Any) -> Any:
    body = {"registry": REF.registry, "device_id": "dev-1"} if body is None else body
    return client(world).post("/provision", json=body, headers=AUTH if headers is None
                              else headers, **kwargs)


def test_a_registered_device_is_preauthorized_and_the_report_returned(world: World) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    response = provision(world)
    assert response.status_code == 200
    assert response.json["failed"] is False
    assert response.json["summary"]["done"] == 1
    assert [a["action"] for a in response.json["actions"]] == ["preauthorize"]
    [(identity, sets)] = world.mender.snapshot().items()
    assert json.loads(identity) == {"google_iot_id": "dev-1"}
    assert list(sets.values()) == ["preauthorized"]


def test_the_registry_may_be_given_as_its_full_path(world: World) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    response = provision(world, {"registry": REF.path, "device_id": "dev-1"})
    assert response.status_code == 200
    assert len(world.mender.snapshot()) == 1


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-secret"},
    {"Authorization": f"Basic {SECRET}"},
    {"Authorization": f"Bearer {SECRET}x"},
    {"Authorization": "Bearer "},
])
def test_without_the_secret_it_answers_401_and_touches_nothing(
        world: World, headers: dict[str, str]) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    response = provision(world, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert world.registry.total_calls == 0 and world.mender.total_calls == 0


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not JSON"),
    (b"[]", "expected a JSON object"),
    (b'"dev-1"', "expected a JSON object"),
    (b"null", "expected a JSON object"),
    (b'{"registry": "fleet"}', "device_id is missing"),
    (b'{"device_id": "dev-1"}', "registry is missing"),
    (b'{"registry": "fleet", "device_id": 42}', "device_id must be a string"),
    (b'{"registry": ["fleet"], "device_id": "dev-1"}', "registry must be a string"),
    (b'{"registry": "fleet", "device_id": "dev-1", "x": 1}', "unexpected field"),
    (b'{"registry": "fleet", "device_id": "\\ud800"}', "lone surrogate"),
    (b"[" * 10_000 + b"]" * 10_000, "nests deeper"),
    (b'{"a": ' * 100 + b"1" + b"}" * 100, "nests deeper"),
    (b'{"registry": "fleet", "device_id": NaN}', "NaN"),
    (b'{"registry": "fleet", "device_id": "\xff"}', "not UTF-8"),
])
def test_a_malformed_body_answers_400_with_its_reason(
        world: World, body: bytes, reason: str) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    response = client(world).post("/provision", data=body, headers=AUTH,
                                  content_type="application/json")
    assert response.status_code == 400
    assert reason in response.json["error"]
    assert world.registry.total_calls == 0 and world.mender.total_calls == 0


@pytest.mark.parametrize("body", [
    {"registry": REF.registry, "device_id": ""},
    {"registry": REF.registry, "device_id": "a/b"},
    {"registry": REF.registry, "device_id": "dev-1?fieldMask=name"},
    {"registry": REF.registry, "device_id": "../dev-1"},
    {"registry": "other-registry", "device_id": "dev-1"},
    {"registry": "projects/x/locations/y/registries/fleet", "device_id": "dev-1"},
    {"registry": "projects/x/fleet", "device_id": "dev-1"},
])
def test_a_name_the_runtime_refuses_answers_400_with_its_reason(world: World, body: Any) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    response = provision(world, body)
    assert response.status_code == 400
    assert response.json["error"] and "\n" not in response.json["error"]
    assert world.mender.total_calls == 0
    assert world.mender.snapshot() == {}


def test_a_body_announced_over_1_mib_is_refused_unread(world: World) -> None:
    stream = io.BytesIO(b"{" * 64)
    response = client(world).post("/provision", input_stream=stream, headers=AUTH,
                                  content_type="application/json",
                                  environ_overrides={"CONTENT_LENGTH": str(2 << 20)})
    assert response.status_code == 413
    assert stream.tell() == 0
    assert world.registry.total_calls == 0


def test_the_secret_only_counts_as_a_bearer_header(world: World) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    body = {"registry": REF.registry, "device_id": "dev-1"}
    c = client(world)
    assert c.post(f"/provision?token={SECRET}", json=body).status_code == 401
    assert c.post(f"/pubsub?token={SECRET}", data=b"{}").status_code == 401
    assert c.post("/provision", json=body,
                  headers={"Authorization": f"Token {SECRET}"}).status_code == 401
    assert world.registry.total_calls == 0 and world.mender.total_calls == 0


def test_a_transient_failure_answers_503_with_retry_after_then_a_retry_succeeds(
        world: World, logbuf: LogCapture) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    busy = TransientApiError("busy", service="mender", method="POST", status=429, retry_after=7.2)
    world.mender.fail_next("preauthorize", error=busy)
    response = provision(world)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "8"
    assert world.mender.snapshot() == {}
    assert any(r.get("outcome") == "retry" for r in logbuf.records())
    assert provision(world).status_code == 200
    assert len(world.mender.snapshot()) == 1


def test_a_transient_failure_without_retry_after_suggests_a_default(world: World) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    world.registry.fail_next("get_device")
    response = provision(world)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0


def test_an_unusable_key_is_not_sent_and_the_answer_says_why(
        world: World, logbuf: LogCapture) -> None:
    world.registry.create(REF, "weak", (credential("rsa", 1024),))
    response = provision(world, {"registry": REF.registry, "device_id": "weak"})
    assert response.status_code == 200
    assert response.json["summary"]["done"] == 0
    assert any("1024" in a["detail"] for a in response.json["actions"])
    assert world.mender.snapshot() == {}
    assert any(r["severity"] == "WARNING" and "1024" in r["message"] for r in logbuf.records())


def test_a_permanent_mender_failure_answers_422(world: World) -> None:
    from tests.fakes import permanent

    world.registry.create(REF, "dev-1", (credential(),))
    world.mender.fail_next("preauthorize", error=permanent("mender", "preauthorize", 400))
    response = provision(world)
    assert response.status_code == 422
    assert response.json["failed"] is True


def test_an_unknown_device_is_reported_not_retried(world: World) -> None:
    response = provision(world, {"registry": REF.registry, "device_id": "ghost"})
    assert response.status_code == 200
    [action] = response.json["actions"]
    assert action["status"] == "skipped" and "not in the registry" in action["detail"]
    assert world.mender.snapshot() == {}


def test_without_a_configured_secret_the_webhook_refuses_everything(
        logbuf: LogCapture) -> None:
    world = make_world(webhook_secret=None)
    world.registry.create(REF, "dev-1", (credential(),))
    response = provision(world, headers={"Authorization": "Bearer "})
    assert response.status_code == 500
    assert "WEBHOOK_SECRET" in response.json["error"]
    assert world.mender.total_calls == 0


def test_a_configuration_error_answers_500_and_is_logged_once(logbuf: LogCapture) -> None:
    world = make_world(mender_token=None)
    for _ in range(3):
        assert provision(world).status_code == 500
    config_lines = [r for r in logbuf.records() if r.get("outcome") == "config_error"]
    assert len(config_lines) == 1
    assert config_lines[0]["severity"] == "CRITICAL"
    assert "MENDER_TOKEN" in config_lines[0]["message"]
    assert world.builds == []


def test_the_bridge_is_built_once_and_reused(world: World) -> None:
    for device in ("a-1", "b-2", "c-3"):
        world.registry.create(REF, device, (credential(),))
        assert provision(world, {"registry": REF.registry, "device_id": device}).status_code == 200
    assert len(world.builds) == 1
    assert len(world.mender.snapshot()) == 3


def test_secrets_never_appear_in_logs_or_answers(logbuf: LogCapture) -> None:
    world = make_world()
    logs.configure("DEBUG", stream=logbuf, redactor=world.runtime.redactor)
    world.registry.create(REF, "dev-1", (credential(),))
    answers = [provision(world, headers=h).get_data(as_text=True) for h in (
        AUTH, {"Authorization": "Bearer nope"}, {})]
    world.runtime.log.error("leak attempt %s %s", TOKEN, SECRET)
    text = logbuf.getvalue() + "".join(answers)
    assert logbuf.records(), "something was logged"
    assert TOKEN not in text and SECRET not in text
    assert "[redacted]" in text


def test_health_and_method_checks(world: World) -> None:
    c = client(world)
    health = c.get("/healthz")
    assert health.status_code == 200 and health.json["status"] == "ok"
    assert c.get("/provision").status_code == 405
    assert c.post("/pubsub", data=b"{}").status_code == 401


def test_health_is_503_while_the_configuration_is_broken() -> None:
    world = make_world(mender_token=None)
    health = client(world).get("/healthz")
    assert health.status_code == 503
    assert health.json["status"] != "ok"


def test_a_pushed_event_is_applied_and_acknowledged(world: World) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    body = push_body(audit_entry("CreateDevice", REF, "dev-1", "7"))
    response = client(world).post("/pubsub", data=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json["outcome"] == "done"
    assert len(world.mender.snapshot()) == 1


def test_a_push_that_failed_for_now_answers_503_with_retry_after(world: World) -> None:
    world.registry.create(REF, "dev-1", (credential(),))
    busy = TransientApiError("busy", service="mender", method="POST", status=429, retry_after=3)
    world.mender.fail_next("preauthorize", error=busy)
    body = push_body(audit_entry("CreateDevice", REF, "dev-1", "7"))
    response = client(world).post("/pubsub", data=body, headers=AUTH)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 3
    assert world.mender.snapshot() == {}


@pytest.mark.parametrize("body", [b"junk", b"[" * 10_000, b'{"message": "\\ud800"}', b"[]"])
def test_an_unreadable_push_is_acknowledged_as_ignored(world: World, body: bytes) -> None:
    response = client(world).post("/pubsub", data=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json["outcome"] == "ignored" and response.json["reason"]
    assert world.registry.total_calls == 0 and world.mender.total_calls == 0
