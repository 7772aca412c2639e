"""Authentication: a personal access token, or a login (Basic → JWT) repeated once on 401 and
never more; no secret in a repr, an error or a log line."""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

import pytest
import requests
import responses
from mender_bodies import BASE, DEVICES, LOGIN, TOKEN, device, error

from bridge.errors import ConfigError, PermanentApiError, TransientApiError
from bridge.mender import MenderClient
from bridge.model import Secret

USER, PASSWORD = "admin@example.com", Secret("pw-correct-horse-battery")
JWT1, JWT2 = "eyJhbGciOiJSUzI1NiJ9.first.sig1", "eyJhbGciOiJSUzI1NiJ9.second.sig2"


def _login_client(**kw: Any) -> MenderClient:
    return MenderClient(BASE, username=USER, password=PASSWORD, retries=1, backoff=0.0, **kw)


def _jwt(token: str) -> dict[str, Any]:
    # docs/mender-api.md#login: the login answer is the raw JWT, Content-Type application/jwt.
    return {"body": token, "status": 200, "content_type": "application/jwt"}


def _bearers(mock: responses.RequestsMock) -> list[str]:
    return [str(c.request.headers["Authorization"]) for c in mock.calls]


def test_login_once_then_bearer_on_every_call(mender_api: responses.RequestsMock) -> None:
    mender_api.post(LOGIN, **_jwt(JWT1))
    mender_api.get(f"{DEVICES}/d1", json=device("d1"))
    with _login_client() as c:
        c.get_device("d1")
        c.get_device("d1")
    basic = base64.b64encode(f"{USER}:{PASSWORD.reveal()}".encode()).decode()
    assert _bearers(mender_api) == [f"Basic {basic}", f"Bearer {JWT1}", f"Bearer {JWT1}"]
    login = mender_api.calls[0].request
    assert login.method == "POST" and login.body is None
    assert login.headers["Accept"] == "application/jwt, application/json"


def test_a_401_logs_in_again_once_and_repeats_the_call(
        mender_api: responses.RequestsMock) -> None:
    mender_api.post(LOGIN, **_jwt(JWT1))
    mender_api.post(LOGIN, **_jwt(JWT2))
    mender_api.get(f"{DEVICES}/d1", status=401, json=error("token expired"))
    mender_api.get(f"{DEVICES}/d1", json=device("d1"))
    with _login_client() as c:
        assert c.get_device("d1").id == "d1"
        assert c.stats.requests_by_method == {"POST": 2, "GET": 2}
    assert _bearers(mender_api)[1:] == [f"Bearer {JWT1}", f"Basic {_basic()}", f"Bearer {JWT2}"]


def _basic() -> str:
    return base64.b64encode(f"{USER}:{PASSWORD.reveal()}".encode()).decode()


def test_a_second_401_is_permanent_and_there_is_no_third_login(
        mender_api: responses.RequestsMock) -> None:
    mender_api.post(LOGIN, **_jwt(JWT1))
    mender_api.post(LOGIN, **_jwt(JWT2))
    mender_api.get(f"{DEVICES}/d1", status=401, json=error("unauthorized"))
    with _login_client() as c, pytest.raises(PermanentApiError) as info:
        c.get_device("d1")
    assert info.value.status == 401
    methods = [c.request.method for c in mender_api.calls]
    assert methods == ["POST", "GET", "POST", "GET"]


def test_concurrent_401s_share_one_new_login(mender_api: responses.RequestsMock) -> None:
    logins: list[str] = []

    def login(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        logins.append("x")
        return 200, {"Content-Type": "application/jwt"}, JWT1 if len(logins) == 1 else JWT2

    def get(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if request.headers["Authorization"] == f"Bearer {JWT2}":
            return 200, {"Content-Type": "application/json"}, '{"count": 1}'
        return 401, {"Content-Type": "application/json"}, '{"error": "token expired"}'

    mender_api.add_callback("POST", LOGIN, callback=login)
    mender_api.add_callback("GET", f"{DEVICES}/count", callback=get)
    with _login_client() as c:
        c.count()  # first login, then 401 → second login
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(c.count())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [1] * 8
    assert len(logins) == 2


def test_a_token_is_never_exchanged_and_its_401_is_permanent(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.get(f"{DEVICES}/d1", status=401, json=error("unauthorized"))
    with pytest.raises(PermanentApiError):
        client.get_device("d1")
    assert [c.request.url for c in mender_api.calls] == [f"{DEVICES}/d1"]


def test_wrong_password_is_a_permanent_login_error(mender_api: responses.RequestsMock) -> None:
    mender_api.post(LOGIN, status=401, json=error("unauthorized"))
    with _login_client() as c, pytest.raises(PermanentApiError) as info:
        c.count()
    assert "login failed" in str(info.value)
    assert info.value.path == "/api/management/v1/useradm/auth/login"
    assert PASSWORD.reveal() not in str(info.value)
    assert len(mender_api.calls) == 1


def test_login_retried_on_503_then_transient(mender_api: responses.RequestsMock) -> None:
    mender_api.post(LOGIN, status=503, json=error("service unavailable"))
    with _login_client() as c, pytest.raises(TransientApiError):
        c.count()
    assert len(mender_api.calls) == 2  # retries=1: login is safe to repeat


def test_login_answer_as_a_json_string_is_accepted(mender_api: responses.RequestsMock) -> None:
    # The spec also lists application/json (a JSON string) for the login answer.
    mender_api.post(LOGIN, json=JWT1)
    mender_api.get(f"{DEVICES}/count", json={"count": 0})
    with _login_client() as c:
        assert c.count() == 0
    assert mender_api.calls[1].request.headers["Authorization"] == f"Bearer {JWT1}"


def test_an_empty_login_answer_is_an_error(mender_api: responses.RequestsMock,
                                           contract: Any) -> None:
    contract.exempt("an empty token on purpose")
    mender_api.post(LOGIN, status=200, body="", content_type="application/jwt")
    with _login_client() as c, pytest.raises(PermanentApiError, match="no token"):
        c.count()


def test_no_secret_in_repr_errors_or_logs(mender_api: responses.RequestsMock,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mender_api.post(LOGIN, **_jwt(JWT1))
    mender_api.get(f"{DEVICES}/d1", status=500, json=error("internal error"))
    mender_api.get(f"{DEVICES}/d2", body=requests.ConnectionError("reset"))
    errors: list[str] = []
    with _login_client() as c:
        for did in ("d1", "d2"):
            with pytest.raises(TransientApiError) as info:
                c.get_device(did)
            errors += [str(info.value), repr(info.value), repr(info.value.__dict__)]
        text = " ".join([repr(c), str(c.__dict__), *errors, caplog.text])
    assert "Bearer" not in text
    for secret in (JWT1, PASSWORD.reveal(), _basic()):
        assert secret not in text
    with MenderClient(BASE, token=TOKEN) as t:
        assert TOKEN.reveal() not in repr(t) + str(t.__dict__)


@pytest.mark.parametrize("kwargs,problem", [
    ({}, "token, or a username and a password"),
    ({"username": USER}, "token, or a username and a password"),
    ({"username": USER, "password": PASSWORD, "token": TOKEN}, "not both"),
])
def test_credentials_are_required(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        MenderClient(BASE, **kwargs)
