"""Every operation × every status the facts list: one mapping into bridge.errors, retries only
where they help, and the error names the call without any secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from mender_bodies import DEVICES, EC_PEM, SEARCH, TOKEN, error
from mender_support import Contract, FakeClock

from bridge.errors import (
    ApiError,
    AuthError,
    Conflict,
    NotFound,
    PermanentApiError,
    TransientApiError,
)
from bridge.mender import MenderClient
from bridge.model import AuthStatus

IDENTITY = {"google_iot_id": "dev-1"}
Op = Callable[[MenderClient], object]

OPERATIONS: list[tuple[str, Op, str, str]] = [
    ("preauthorize", lambda c: c.preauthorize(IDENTITY, EC_PEM), "POST", DEVICES),
    ("get_device", lambda c: c.get_device("d1"), "GET", f"{DEVICES}/d1"),
    ("count", lambda c: c.count(), "GET", f"{DEVICES}/count"),
    ("iter_devices", lambda c: list(c.iter_devices()), "GET", DEVICES),
    ("find_by_identity", lambda c: c.find_by_identity(IDENTITY), "POST", SEARCH),
    ("set_auth_status", lambda c: c.set_auth_status("d1", "a1", AuthStatus.ACCEPTED), "PUT",
     f"{DEVICES}/d1/auth/a1/status"),
    ("delete_auth_set", lambda c: c.delete_auth_set("d1", "a1"), "DELETE", f"{DEVICES}/d1/auth/a1"),
    ("decommission", lambda c: c.decommission("d1"), "DELETE", f"{DEVICES}/d1"),
]
MESSAGES = {400: "dev auth: bad request", 401: "unauthorized", 403: "forbidden",
            404: "device not found",
            409: "conflict", 413: "request size limit exceeded",
            415: "Bad Content-Type, expected 'application/json'",
            422: "maximum number of accepted devices reached", 429: "too many requests",
            500: "internal error", 503: "service unavailable"}
RETRIED = {429, 500, 503}


def _echo(status: int, extra: dict[str, str] | None = None) -> Callable[..., Any]:
    """An answer echoing the request id, as the server does (docs/mender-api.md#errors)."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        rid = str(request.headers["X-MEN-RequestID"])
        headers = {"X-MEN-RequestID": rid, "Content-Type": "application/json", **(extra or {})}
        return status, headers, json.dumps(error(MESSAGES[status], rid))

    return answer


def _expected(name: str, status: int) -> type[ApiError] | None:
    if status == 404:
        return None if name in ("delete_auth_set", "decommission") else NotFound
    if status == 409:
        return Conflict
    if status in (401, 403):
        return AuthError
    return TransientApiError if status in RETRIED else PermanentApiError


STATUSES = [400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503]
CASES = [pytest.param(*o, s, id=f"{o[0]}-{s}") for o in OPERATIONS for s in STATUSES
         if (o[0], s) != ("preauthorize", 409)]  # that 409 is AlreadyExists (test_mender_client)


@pytest.mark.parametrize("name,op,method,url,status", CASES)
def test_status_maps_to_one_error(client: MenderClient, mender_api: responses.RequestsMock,
                                  clock: FakeClock, name: str, op: Op, method: str, url: str,
                                  status: int) -> None:
    mender_api.add_callback(method, url, callback=_echo(status, {"Retry-After": "7"}
                                                        if status == 429 else None))
    expected = _expected(name, status)
    if expected is None:
        assert op(client) is None
        assert len(mender_api.calls) == 1
        return
    with pytest.raises(ApiError) as info:
        op(client)
    err = info.value
    assert type(err) is expected
    attempts = 3 if status in RETRIED else 1  # client fixture: retries=2
    assert len(mender_api.calls) == attempts
    assert client.stats.requests == attempts
    assert client.stats.requests_by_method == {method: attempts}
    assert (err.service, err.method, err.status) == ("mender", method, status)
    assert err.path == url.split("hosted.mender.io", 1)[1]
    assert err.detail == MESSAGES[status]
    assert err.request_id == mender_api.calls[-1].request.headers["X-MEN-RequestID"]
    assert TOKEN.reveal() not in str(err) and TOKEN.reveal() not in repr(err.args)
    # Each 429 holds the next request for its Retry-After (the last one is not retried).
    assert clock.slept == ([7.0] * (attempts - 1) if status == 429 else [])
    assert client.pace().limited == (attempts if status == 429 else 0)
    if status == 429:
        assert err.retry_after == 7.0
    # A refused token is the configuration's fault, not the device's: say what to check.
    assert ("check MENDER_TOKEN" in str(err)) == (status in (401, 403))


def test_each_request_carries_its_own_request_id(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.add_callback("GET", f"{DEVICES}/d1", callback=_echo(500))
    with pytest.raises(TransientApiError):
        client.get_device("d1")
    with pytest.raises(TransientApiError):
        client.get_device("d1")
    ids = [c.request.headers["X-MEN-RequestID"] for c in mender_api.calls]
    # The urllib3 retries of one call repeat its id; two calls have two ids.
    assert len(ids) == 6 and len(set(ids[:3])) == 1 and len(set(ids[3:])) == 1
    assert ids[0] != ids[3]


def test_a_retry_that_succeeds_returns_the_answer(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.add_callback("GET", f"{DEVICES}/count", callback=_echo(503))
    mender_api.get(f"{DEVICES}/count", json={"count": 3})
    assert client.count() == 3
    assert client.stats.requests == 2


@pytest.mark.parametrize("exc,needle", [
    (requests.ConnectionError("Connection reset by peer"), "ConnectionError"),
    (requests.exceptions.ReadTimeout("read timed out"), "timed out"),
    (requests.exceptions.ConnectTimeout("connect timed out"), "timed out"),
])
def test_connection_failures_are_transient(client: MenderClient,
                                           mender_api: responses.RequestsMock,
                                           exc: Exception, needle: str) -> None:
    mender_api.get(f"{DEVICES}/d1", body=exc)
    with pytest.raises(TransientApiError, match=needle) as info:
        client.get_device("d1")
    assert info.value.path == "/api/management/v2/devauth/devices/d1"
    assert info.value.status is None and info.value.request_id
    # The cause would carry the prepared request with its Authorization header.
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_redirect_is_not_followed(client: MenderClient, mender_api: responses.RequestsMock,
                                    contract: Contract) -> None:
    contract.exempt("Mender never redirects; this stands for a misconfigured proxy")
    mender_api.get(f"{DEVICES}/d1", status=302, headers={"Location": "https://evil.example/"})
    with pytest.raises(PermanentApiError) as info:
        client.get_device("d1")
    assert info.value.status == 302
    assert len(mender_api.calls) == 1
