"""Contract: every request the client can send, and the answers the tests feed it, against the
Mender OpenAPI spec (bundled, ref-resolved). Every other test in this folder is checked the same
way by the `mender_api` fixture; here the coverage is asserted and the checker is shown to bite.
Where spec and server differ, the server wins (docs/mender-api.md#specs); comments say where."""

from __future__ import annotations

import os
from typing import Any

import jsonschema
import pytest
import requests
import responses
from mender_bodies import BASE, DEVICES, EC_PEM, LOGIN, SEARCH, TOKEN, device, error
from mender_support import SPEC_DIR, Contract

from bridge.errors import TransientApiError
from bridge.mender import MenderClient
from bridge.model import AuthStatus, Secret

IDENTITY = {"google_iot_id": "dev-1", "registry": "r1"}


@pytest.fixture
def spec(openapi: Any) -> Any:
    if openapi is None:
        assert not os.environ.get("REQUIRE_SHARED")
        pytest.skip(f"Mender OpenAPI spec not found beside the repo ({SPEC_DIR}); "
                    "set REQUIRE_SHARED=1 to make this a failure")
    return openapi


def _serve_everything(mock: responses.RequestsMock) -> None:
    mock.post(LOGIN, body="eyJhbGciOiJSUzI1NiJ9.e30.sig", content_type="application/jwt")
    existing = device("d1", IDENTITY, "accepted")
    existing["auth_sets"] = None  # docs/mender-api.md#preauthorize: null in a 409 body
    mock.post(DEVICES, status=409, json=existing)
    mock.post(DEVICES, status=201, headers={"Location": "devices/new-id"})
    mock.get(f"{DEVICES}/d1", json=device("d1", IDENTITY, "accepted"))
    mock.get(f"{DEVICES}/count", json={"count": 1})
    mock.get(DEVICES, json=[device("d1", IDENTITY)])
    mock.post(SEARCH, json=[{"id": "d1", "attributes": [
        {"name": "google_iot_id", "scope": "identity", "value": "dev-1"}]}],
        headers={"X-Total-Count": "1"})
    mock.put(f"{DEVICES}/d1/auth/a1/status", status=204)
    mock.delete(f"{DEVICES}/d1/auth/a1", status=204)
    mock.delete(f"{DEVICES}/d1", status=404)  # docs/mender-api.md#errors: no body


def test_every_request_the_client_sends_matches_the_spec(spec: Any) -> None:
    contract = Contract(spec)
    with responses.RequestsMock() as mock, MenderClient(
            BASE, username="admin@example.com", password=Secret("pw"), retries=0) as client:
        _serve_everything(mock)
        client.preauthorize(IDENTITY, EC_PEM)
        client.preauthorize(IDENTITY, EC_PEM, force=True)
        client.get_device("d1")
        client.count()
        client.count(AuthStatus.PENDING)
        list(client.iter_devices())
        list(client.iter_devices(AuthStatus.ACCEPTED))
        client.find_by_identity(IDENTITY)
        for status in (AuthStatus.ACCEPTED, AuthStatus.REJECTED, AuthStatus.PENDING):
            client.set_auth_status("d1", "a1", status)
        client.delete_auth_set("d1", "a1")
        client.decommission("d1")
        for call in mock.calls:
            contract.check(call.request, call.response)
        sent = len(mock.calls)
    operations = {c.split("?")[0] for c in contract.checked}
    assert operations == {
        "POST /api/management/v1/useradm/auth/login",
        "POST /api/management/v2/devauth/devices",
        "GET /api/management/v2/devauth/devices",
        "GET /api/management/v2/devauth/devices/d1",
        "GET /api/management/v2/devauth/devices/count",
        "POST /api/management/v2/inventory/filters/search",
        "PUT /api/management/v2/devauth/devices/d1/auth/a1/status",
        "DELETE /api/management/v2/devauth/devices/d1/auth/a1",
        "DELETE /api/management/v2/devauth/devices/d1",
    }
    assert len(contract.checked) == sent == 15


def test_error_answers_are_checked_against_the_common_error_schema(spec: Any) -> None:
    contract = Contract(spec)
    with responses.RequestsMock() as mock, MenderClient(BASE, token=TOKEN, retries=0) as c:
        mock.get(f"{DEVICES}/count", status=429, json={"request_id": "no error text"})
        with pytest.raises(TransientApiError, match="count devices failed"):
            c.count()
        with pytest.raises(jsonschema.ValidationError, match="'error' is a required property"):
            contract.check(mock.calls[0].request, mock.calls[0].response)
        mock.replace(responses.GET, f"{DEVICES}/count", status=429,
                     json=error("too many requests"))
        with pytest.raises(TransientApiError, match="count devices failed"):
            c.count()
        contract.check(mock.calls[1].request, mock.calls[1].response)


@pytest.mark.parametrize("method,url,kwargs,problem", [
    ("GET", DEVICES, {"params": {"per_page": 600}}, "query parameter: per_page"),  # max is 500
    ("GET", DEVICES, {"params": {"status": "bogus"}}, "query parameter: status"),
    ("PUT", f"{DEVICES}/d1/auth/a1/status", {"json": {"state": "accepted"}}, "body"),
    ("POST", DEVICES, {"json": {"identity_data": {"a": "b"}}}, "body"),  # no pubkey
    ("POST", SEARCH, {"json": {"filters": [{"scope": "identity", "attribute": "a",
                                            "type": "$equals", "value": "b"}]}}, "body"),
    ("GET", f"{DEVICES}/count", {"auth": None}, "Security not found"),  # no bearer token
])
def test_the_checker_rejects_requests_the_spec_forbids(spec: Any, method: str, url: str,
                                                        kwargs: dict[str, Any],
                                                        problem: str) -> None:
    from openapi_core.validation.request.exceptions import RequestValidationError

    contract = Contract(spec)
    headers = {} if "auth" in kwargs else {"Authorization": "Bearer x"}
    kwargs = {k: v for k, v in kwargs.items() if k != "auth"}
    with responses.RequestsMock() as mock:
        mock.add(method, url, status=204)
        requests.request(method, url, headers=headers, timeout=1, **kwargs)
        with pytest.raises(RequestValidationError, match=problem):
            contract.check(mock.calls[0].request, None)


def test_the_checker_rejects_a_device_of_the_wrong_shape(spec: Any) -> None:
    from openapi_core.validation.response.exceptions import ResponseValidationError

    contract = Contract(spec)
    bad = device("d1")
    bad["status"] = "approved"
    with responses.RequestsMock() as mock:
        mock.get(f"{DEVICES}/d1", json=bad)
        response = requests.get(f"{DEVICES}/d1", headers={"Authorization": "Bearer x"}, timeout=1)
        with pytest.raises(ResponseValidationError, match="approved"):
            contract.check(mock.calls[0].request, response)
