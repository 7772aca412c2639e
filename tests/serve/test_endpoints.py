"""`serve`'s endpoints over real HTTP against the sandbox: hostile bodies get a 400 with a
reason and leave Mender as it was; the secret is taken only as a bearer header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.function.e2e_support import create_device, iot_client
from tests.function.helpers import public_pem
from tests.serve.support import AUTH, SECRET, Serve, Stand

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REGISTRY = "sandbox-registry"
HOSTILE: list[tuple[str, bytes]] = [
    ("lone surrogate", b'{"registry": "sandbox-registry", "device_id": "\\ud800"}'),
    ("lone surrogate in a key", b'{"\\udfff": 1, "registry": "r", "device_id": "d"}'),
    ("10,000-deep array", b"[" * 10_000 + b"]" * 10_000),
    ("10,000-deep object",
     b'{"registry": ' * 10_000 + b"1" + b"}" * 10_000),
    ("deep inside a field", b'{"registry": "sandbox-registry", "device_id": '
     + b"[" * 100 + b"]" * 100 + b"}"),
    ("array body", b'["sandbox-registry", "victim-1"]'),
    ("string body", b'"victim-1"'),
    ("number body", b"42"),
    ("null body", b"null"),
    ("device_id a number", b'{"registry": "sandbox-registry", "device_id": 42}'),
    ("device_id an object", b'{"registry": "sandbox-registry", "device_id": {"id": "victim-1"}}'),
    ("registry a list", b'{"registry": ["sandbox-registry"], "device_id": "victim-1"}'),
    ("device_id missing", b'{"registry": "sandbox-registry"}'),
    ("extra field", b'{"registry": "sandbox-registry", "device_id": "victim-1", "force": true}'),
    ("not JSON", b"registry=sandbox-registry&device_id=victim-1"),
    ("not UTF-8", b'{"registry": "sandbox-registry", "device_id": "\xff\xfe"}'),
    ("NaN", b'{"registry": "sandbox-registry", "device_id": NaN}'),
    ("huge number", b'{"registry": "sandbox-registry", "device_id": ' + b"9" * 5000 + b"}"),
    ("injected query", b'{"registry": "sandbox-registry", "device_id": "victim-1?fieldMask=name"}'),
    ("path traversal", b'{"registry": "sandbox-registry", "device_id": "../victim-1"}'),
    ("other registry",
     b'{"registry": "projects/p/locations/l/registries/x", "device_id": "victim-1"}'),
    ("empty device_id", b'{"registry": "sandbox-registry", "device_id": ""}'),
]


@pytest.fixture(scope="module")
def served(stand: Stand, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    create_device(iot_client(stand.sandbox.registry_url), stand.ref, "victim-1", public_pem())
    log = tmp_path_factory.mktemp("serve-endpoints") / "serve.log"
    server = Serve(["--port", "0"], stand.env, log)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(("name", "body"), HOSTILE, ids=[name for name, _ in HOSTILE])
def test_a_hostile_body_is_400_with_a_reason_and_mender_is_unchanged(
        stand: Stand, served: Serve, name: str, body: bytes) -> None:
    before = stand.mender_devices()
    answer = requests.post(f"{served.url}/provision", data=body, timeout=30,
                           headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    reason = answer.json()["error"]
    assert reason and "\n" not in reason
    assert stand.mender_devices() == before
    assert served.proc.poll() is None


def test_the_secret_in_the_query_instead_of_a_bearer_header_is_401(
        stand: Stand, served: Serve) -> None:
    before = stand.mender_devices()
    body = {"registry": REGISTRY, "device_id": "victim-1"}
    for path in ("/provision", "/pubsub"):
        answer = requests.post(f"{served.url}{path}?token={SECRET}", json=body, timeout=30)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    wrong = requests.post(f"{served.url}/provision", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {SECRET[:-1]}"})
    assert wrong.status_code == 401
    assert stand.mender_devices() == before


def test_a_registered_device_is_preauthorized_through_serve(
        stand: Stand, served: Serve) -> None:
    pem = public_pem()
    create_device(iot_client(stand.sandbox.registry_url), stand.ref, "served-1", pem)
    answer = requests.post(f"{served.url}/provision", headers=AUTH, timeout=30,
                           json={"registry": REGISTRY, "device_id": "served-1"})
    assert answer.status_code == 200, answer.text
    [device] = [d for d in stand.mender_devices()
                if d.get("identity_data") == {"google_iot_id": "served-1"}]
    assert [s["status"] for s in device["auth_sets"]] == ["preauthorized"]


def test_healthz_reports_the_runtime_health(served: Serve) -> None:
    answer = requests.get(f"{served.url}/healthz", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_an_unreadable_push_is_acknowledged_as_ignored(stand: Stand, served: Serve) -> None:
    before = stand.mender_devices()
    answer = requests.post(f"{served.url}/pubsub", headers=AUTH, timeout=30,
                           data=b"[" * 10_000)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "ignored"
    assert stand.mender_devices() == before

