"""Each Mender operation against `responses`: method, path, query, headers, body, result."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import responses
from mender_bodies import (
    BASE,
    DEVICES,
    EC_PEM,
    RSA_PEM,
    RSA_PKCS1,
    SEARCH,
    TOKEN,
    auth_set,
    device,
    error,
)
from mender_support import Contract
from responses import matchers

from bridge.errors import IdentityError, InvalidKeyError, NotFound, PermanentApiError
from bridge.mender import MenderClient
from bridge.model import AlreadyExists, AuthSet, AuthStatus, MenderDevice, Preauthorized

IDENTITY = {"google_iot_id": "dev-1"}


def _json(call: responses.Call) -> object:
    assert call.request.body is not None
    return json.loads(call.request.body)


def _assert_common_headers(call: responses.Call) -> None:
    headers = call.request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN.reveal()}"
    uuid.UUID(headers["X-MEN-RequestID"], version=4)
    assert headers["Accept"] == "application/json"


def test_preauthorize_201_returns_the_id_of_the_relative_location(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    # docs/mender-api.md#preauthorize: Location is relative, "devices/<id>"; the body is empty.
    mender_api.post(DEVICES, status=201, headers={"Location": "devices/6e1f-new"})
    result = client.preauthorize(IDENTITY, EC_PEM)
    assert result == Preauthorized(location_id="6e1f-new")
    (call,) = mender_api.calls
    assert call.request.method == "POST"
    assert call.request.url == DEVICES
    assert call.request.headers["Content-Type"] == "application/json"
    _assert_common_headers(call)
    assert _json(call) == {"identity_data": IDENTITY, "pubkey": EC_PEM, "force": False}


def test_preauthorize_sends_the_key_in_mender_normal_form_and_force(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.post(DEVICES, status=201, headers={"Location": "devices/x"})
    messy = RSA_PEM.replace("\n", "\r\n") + "\n\n"
    client.preauthorize(IDENTITY, messy, force=True)
    body = _json(mender_api.calls[0])
    assert isinstance(body, dict)
    assert body["pubkey"] == RSA_PEM
    assert body["force"] is True


def test_preauthorize_409_returns_the_existing_device_without_auth_sets(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    existing = device("dev-uuid-1", IDENTITY, status="accepted")
    existing["auth_sets"] = None  # docs/mender-api.md#preauthorize: no auth sets loaded
    mender_api.post(DEVICES, status=409, json=existing)
    result = client.preauthorize(IDENTITY, EC_PEM)
    assert result == AlreadyExists(MenderDevice("dev-uuid-1", IDENTITY, AuthStatus.ACCEPTED,
                                                auth_sets=None))
    assert isinstance(result, AlreadyExists) and result.device.auth_sets is None


def test_preauthorize_refuses_a_key_mender_cannot_parse_before_sending(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    with pytest.raises(InvalidKeyError):
        client.preauthorize(IDENTITY, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
    assert len(mender_api.calls) == 0


def test_preauthorize_converts_a_pkcs1_key_that_mender_would_refuse(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    # docs/mender-api.md#keys: the server rejects "RSA PUBLIC KEY" blocks; the client sends PKIX.
    mender_api.post(DEVICES, status=201, headers={"Location": "devices/x"})
    client.preauthorize(IDENTITY, RSA_PKCS1)
    body = _json(mender_api.calls[0])
    assert isinstance(body, dict) and body["pubkey"] == RSA_PEM


def test_get_device_returns_it_with_auth_sets(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    sets = [auth_set("a1", IDENTITY, EC_PEM, "accepted"),
            auth_set("a2", IDENTITY, RSA_PEM, "pending")]
    mender_api.get(f"{DEVICES}/dev-1", json=device("dev-1", IDENTITY, "accepted", sets))
    got = client.get_device("dev-1")
    assert got == MenderDevice("dev-1", IDENTITY, AuthStatus.ACCEPTED, False, (
        AuthSet("a1", EC_PEM, AuthStatus.ACCEPTED), AuthSet("a2", RSA_PEM, AuthStatus.PENDING)))
    assert got.identity_data == IDENTITY
    call = mender_api.calls[0]
    assert call.request.method == "GET"
    _assert_common_headers(call)


def test_get_device_quotes_the_id_in_the_path(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.get(f"{DEVICES}/a%2Fb", json=device("a/b"))
    assert client.get_device("a/b").id == "a/b"
    assert mender_api.calls[0].request.path_url == "/api/management/v2/devauth/devices/a%2Fb"


def test_get_device_404_is_not_found(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.get(f"{DEVICES}/gone", status=404, json=error("device not found"))
    with pytest.raises(NotFound) as info:
        client.get_device("gone")
    assert info.value.detail == "device not found"
    assert info.value.path == "/api/management/v2/devauth/devices/gone"


@pytest.mark.parametrize("status", [None, AuthStatus.PENDING])
def test_count_sends_the_status_filter(client: MenderClient, mender_api: responses.RequestsMock,
                                       status: AuthStatus | None) -> None:
    query = {"status": "pending"} if status else {}
    mender_api.get(f"{DEVICES}/count", json={"count": 42},
                   match=[matchers.query_param_matcher(query)])
    assert client.count(status) == 42
    _assert_common_headers(mender_api.calls[0])


def test_iter_devices_with_a_status_filter(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.get(DEVICES, json=[device("d1"), device("d2")], match=[
        matchers.query_param_matcher({"per_page": "500", "page": "1", "status": "preauthorized"})])
    assert [d.id for d in client.iter_devices(AuthStatus.PREAUTHORIZED)] == ["d1", "d2"]


def test_find_by_identity_searches_inventory_then_reads_the_exact_match(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    identity = {"google_iot_id": "dev-1", "registry": "r1"}
    mender_api.post(SEARCH, json=[{"id": "wider", "attributes": []}, {"id": "exact"}])
    # `$eq` on both attributes also matches a device with one more identity attribute.
    mender_api.get(f"{DEVICES}/wider", json=device("wider", {**identity, "extra": "x"}))
    mender_api.get(f"{DEVICES}/exact", json=device("exact", identity))
    found = client.find_by_identity(identity)
    assert found is not None and found.id == "exact" and found.auth_sets
    search = mender_api.calls[0]
    assert search.request.method == "POST"
    _assert_common_headers(search)
    assert _json(search) == {"page": 1, "per_page": 20, "filters": [
        {"scope": "identity", "attribute": "google_iot_id", "type": "$eq", "value": "dev-1"},
        {"scope": "identity", "attribute": "registry", "type": "$eq", "value": "r1"}]}


def test_find_by_identity_none_when_inventory_has_nothing_or_only_gone_devices(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.post(SEARCH, json=[{"id": "decommissioned"}])
    mender_api.get(f"{DEVICES}/decommissioned", status=404, json=error("device not found"))
    assert client.find_by_identity(IDENTITY) is None
    mender_api.replace(responses.POST, SEARCH, json=[])
    assert client.find_by_identity(IDENTITY) is None
    assert len(mender_api.calls) == 3


def test_find_by_identity_needs_an_identity(client: MenderClient) -> None:
    with pytest.raises(IdentityError, match="at least one"):
        client.find_by_identity({})


@pytest.mark.parametrize("status", [AuthStatus.ACCEPTED, AuthStatus.REJECTED, AuthStatus.PENDING])
def test_set_auth_status_puts_the_status(client: MenderClient, mender_api: responses.RequestsMock,
                                         status: AuthStatus) -> None:
    mender_api.put(f"{DEVICES}/d1/auth/a1/status", status=204)
    client.set_auth_status("d1", "a1", status)
    call = mender_api.calls[0]
    assert call.request.method == "PUT"
    assert _json(call) == {"status": status.value}
    _assert_common_headers(call)


@pytest.mark.parametrize("status", [AuthStatus.PREAUTHORIZED, AuthStatus.NOAUTH])
def test_set_auth_status_never_sends_what_the_server_refuses(
        client: MenderClient, mender_api: responses.RequestsMock, status: AuthStatus) -> None:
    # docs/mender-api.md#auth-sets: "preauthorized" → 400, although the spec's enum lists it.
    with pytest.raises(PermanentApiError, match=status.value):
        client.set_auth_status("d1", "a1", status)
    assert len(mender_api.calls) == 0


def test_set_auth_status_422_at_the_device_limit_is_permanent(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.put(f"{DEVICES}/d1/auth/a1/status", status=422,
                   json=error("maximum number of accepted devices reached"))
    with pytest.raises(PermanentApiError) as info:
        client.set_auth_status("d1", "a1", AuthStatus.ACCEPTED)
    assert info.value.status == 422
    assert "maximum number" in str(info.value)


@pytest.mark.parametrize("op,url", [
    (lambda c: c.delete_auth_set("d1", "a1"), f"{DEVICES}/d1/auth/a1"),
    (lambda c: c.decommission("d1"), f"{DEVICES}/d1"),
])
@pytest.mark.parametrize("status", [204, 404])
def test_deletes_succeed_and_an_empty_404_means_already_gone(
        client: MenderClient, mender_api: responses.RequestsMock, op: object, url: str,
        status: int) -> None:
    # docs/mender-api.md#errors: both DELETEs answer 404 with an empty body for an unknown id.
    mender_api.delete(url, status=status, body="")
    assert callable(op)
    assert op(client) is None
    call = mender_api.calls[0]
    assert call.request.method == "DELETE"
    _assert_common_headers(call)


def test_delete_404_with_a_json_error_is_also_gone(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.delete(f"{DEVICES}/d1", status=404, json=error("device not found"))
    client.decommission("d1")
    assert len(mender_api.calls) == 1


def test_delete_404_page_from_something_else_is_not_taken_for_gone(
        client: MenderClient, mender_api: responses.RequestsMock, contract: Contract) -> None:
    contract.exempt("an HTML page from a misconfigured proxy, not Mender")
    mender_api.delete(f"{DEVICES}/d1", status=404, body="<html>no route</html>",
                      content_type="text/html")
    with pytest.raises(NotFound):
        client.decommission("d1")


def test_a_malformed_device_body_is_a_permanent_error(
        client: MenderClient, mender_api: responses.RequestsMock, contract: Contract) -> None:
    contract.exempt("a body of the wrong shape on purpose")
    mender_api.get(f"{DEVICES}/d1", json={"id": "d1", "status": "weird", "identity_data": {}})
    with pytest.raises(PermanentApiError, match="unknown status"):
        client.get_device("d1")
    mender_api.get(f"{DEVICES}/d2", body="not json")
    with pytest.raises(PermanentApiError, match="not JSON"):
        client.get_device("d2")


def test_self_hosted_base_url_with_a_path_prefix(mender_api: responses.RequestsMock) -> None:
    base = "https://mender.example.com/mender/"
    mender_api.get("https://mender.example.com/mender/api/management/v2/devauth/devices/d1",
                   json=device("d1"))
    with MenderClient(base, token=TOKEN, retries=0) as c:
        assert c.get_device("d1").id == "d1"
        assert repr(c) == "MenderClient('https://mender.example.com/mender', auth=token)"
    assert BASE not in mender_api.calls[0].request.url


def test_timeouts_and_tls_verification_go_with_every_request(
        mender_api: responses.RequestsMock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)  # requests would put them in place of True
    mender_api.get(f"{DEVICES}/count", json={"count": 0})
    ca = tmp_path / "ca.pem"
    ca.write_text("unused: responses does not open it")
    with MenderClient(BASE, token=TOKEN, timeout=12.0) as default, \
            MenderClient(BASE, token=TOKEN, timeout=2.0, connect_timeout=1.0,
                         ca_bundle=str(ca)) as custom:
        default.count()
        custom.count()
    first, second = (c.request.req_kwargs for c in mender_api.calls)  # type: ignore[attr-defined]
    # MENDER_TIMEOUT bounds the connection too (it was capped at 5 s, whatever was set).
    assert first["timeout"] == (12.0, 12.0) and first["verify"] is True
    assert second["timeout"] == (1.0, 2.0) and second["verify"] == str(ca)
