"""Every request the client sends, exactly: method, path, query, headers and JSON body, one row
per operation (docs/mender-api.md). The `mender_api` fixture also validates each against the spec.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from mender_bodies import BASE, DEVICES, EC_PEM, LOGIN, SEARCH, TOKEN, device

from bridge.mender import MenderClient
from bridge.model import AuthStatus, Secret

IDENTITY = {"google_iot_id": "dev-1"}
D = "/api/management/v2/devauth/devices"
Op = Callable[[MenderClient], object]

# name, operation, answer (method, url, kwargs), expected (method, path, query, JSON body)
ROWS: list[tuple[str, Op, tuple[str, str, dict[str, Any]],
                 tuple[str, str, dict[str, list[str]], object]]] = [
    ("preauthorize", lambda c: c.preauthorize(IDENTITY, EC_PEM),
     ("POST", DEVICES, {"status": 201, "headers": {"Location": "devices/n1"}}),
     ("POST", D, {}, {"identity_data": IDENTITY, "pubkey": EC_PEM, "force": False})),
    ("preauthorize-force", lambda c: c.preauthorize(IDENTITY, EC_PEM, force=True),
     ("POST", DEVICES, {"status": 201, "headers": {"Location": "devices/n1"}}),
     ("POST", D, {}, {"identity_data": IDENTITY, "pubkey": EC_PEM, "force": True})),
    ("get_device", lambda c: c.get_device("d1"),
     ("GET", f"{DEVICES}/d1", {"json": device("d1")}), ("GET", f"{D}/d1", {}, None)),
    ("iter_devices", lambda c: list(c.iter_devices()),
     ("GET", DEVICES, {"json": [device("d1")]}),
     ("GET", D, {"per_page": ["500"], "page": ["1"]}, None)),
    ("iter_devices-status", lambda c: list(c.iter_devices(AuthStatus.PENDING)),
     ("GET", DEVICES, {"json": [device("d1", status="pending")]}),
     ("GET", D, {"per_page": ["500"], "page": ["1"], "status": ["pending"]}, None)),
    ("count", lambda c: c.count(),
     ("GET", f"{DEVICES}/count", {"json": {"count": 1}}), ("GET", f"{D}/count", {}, None)),
    ("count-status", lambda c: c.count(AuthStatus.ACCEPTED),
     ("GET", f"{DEVICES}/count", {"json": {"count": 1}}),
     ("GET", f"{D}/count", {"status": ["accepted"]}, None)),
    ("find_by_identity", lambda c: c.find_by_identity(IDENTITY),
     ("POST", SEARCH, {"json": []}),
     ("POST", "/api/management/v2/inventory/filters/search", {},
      {"page": 1, "per_page": 20, "filters": [
          {"scope": "identity", "attribute": "google_iot_id", "type": "$eq", "value": "dev-1"}]})),
    ("set_auth_status", lambda c: c.set_auth_status("d1", "a1", AuthStatus.REJECTED),
     ("PUT", f"{DEVICES}/d1/auth/a1/status", {"status": 204}),
     ("PUT", f"{D}/d1/auth/a1/status", {}, {"status": "rejected"})),
    ("delete_auth_set", lambda c: c.delete_auth_set("d1", "a1"),
     ("DELETE", f"{DEVICES}/d1/auth/a1", {"status": 204}), ("DELETE", f"{D}/d1/auth/a1", {}, None)),
    ("decommission", lambda c: c.decommission("d1"),
     ("DELETE", f"{DEVICES}/d1", {"status": 204}), ("DELETE", f"{D}/d1", {}, None)),
]


@pytest.mark.parametrize("name,op,answer,expected", ROWS, ids=[r[0] for r in ROWS])
def test_each_operation_sends_exactly_this_request(
        client: MenderClient, mender_api: responses.RequestsMock, name: str, op: Op,
        answer: tuple[str, str, dict[str, Any]],
        expected: tuple[str, str, dict[str, list[str]], object]) -> None:
    method, url, kwargs = answer
    mender_api.add(method, url, **kwargs)
    op(client)
    (call,) = mender_api.calls
    request = call.request
    want_method, want_path, want_query, want_body = expected
    parts = urlsplit(str(request.url))
    assert (request.method, parts.scheme + "://" + parts.netloc) == (want_method, BASE)
    assert (parts.path, parse_qs(parts.query)) == (want_path, want_query)
    assert request.headers["Authorization"] == f"Bearer {TOKEN.reveal()}"
    assert request.headers["Accept"] == "application/json"
    uuid.UUID(request.headers["X-MEN-RequestID"], version=4)
    if want_body is None:
        assert not request.body and "Content-Type" not in request.headers
    else:
        assert request.headers["Content-Type"] == "application/json"
        assert request.body is not None and json.loads(request.body) == want_body


def test_login_sends_basic_auth_and_no_body(mender_api: responses.RequestsMock) -> None:
    mender_api.post(LOGIN, body="eyJhbGciOiJSUzI1NiJ9.e30.sig", content_type="application/jwt")
    mender_api.get(f"{DEVICES}/count", json={"count": 0})
    with MenderClient(BASE, username="admin@example.com", password=Secret("pw"),
                      retries=0) as client:
        client.count()
    login = mender_api.calls[0].request
    parts = urlsplit(str(login.url))
    assert (login.method, parts.path, parts.query) == (
        "POST", "/api/management/v1/useradm/auth/login", "")
    assert login.headers["Authorization"] == "Basic YWRtaW5AZXhhbXBsZS5jb206cHc="
    assert login.headers["Accept"] == "application/jwt, application/json"
    uuid.UUID(login.headers["X-MEN-RequestID"], version=4)
    assert login.body is None
    assert mender_api.calls[1].request.headers["Authorization"] == \
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"
