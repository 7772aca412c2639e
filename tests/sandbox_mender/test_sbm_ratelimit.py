"""The stand-in's rate limit, like Mender's: per JWT subject (a PAT shares its user's bucket),
management and device APIs apart, 429 with a JSON body and `Retry-After` in whole seconds."""

from __future__ import annotations

import math
import time

import pytest
import requests
from sbm_support import (
    DEVAUTH,
    DEVICE_INVENTORY,
    LOGIN,
    TOKENS,
    Mender,
    device_id_of,
    eventually,
    new_key,
    public_pem,
    unique_identity,
)

pytestmark = pytest.mark.e2e
DAY = 86400
USERS = "/api/management/v1/useradm/users"
ATTRS = [{"name": "artifact_name", "value": "a1"}]


def _count(mender: Mender, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return mender.call("GET", f"{DEVAUTH}/devices/count", headers=headers)


def _device_token(mender: Mender) -> str:
    identity, key = unique_identity(), new_key()
    mender.preauthorize(identity, public_pem(key))
    return mender.authenticate(key, identity).text


def test_fixed_window_answers_429_right_after_the_quota(fresh: Mender) -> None:
    fresh.set_faults(rate_limit_quota=3, rate_limit_interval_s=DAY)
    for _ in range(2):  # a window may end between the two tries, once a day
        before = time.time()
        answers = [_count(fresh) for _ in range(4)]
        after = time.time()
        if before // DAY == after // DAY:
            break
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[3]
    assert limited.headers["Content-Type"] == "application/json"
    assert limited.json() == {"error": "too many requests",
                              "request_id": limited.headers["X-MEN-RequestID"]}
    # Whole seconds, rounded up, until the next window (multiples of the interval since the
    # epoch, as Mender's Redis limiter counts).
    window_end = (before // DAY + 1) * DAY
    assert math.ceil(window_end - after) <= int(limited.headers["Retry-After"]) \
        <= math.ceil(window_end - before)
    assert _count(fresh).status_code == 429  # a refused request does not reset anything


def test_a_personal_access_token_shares_its_users_bucket(fresh: Mender) -> None:
    pat = fresh.call("POST", TOKENS, json={"name": "pat"}).text
    created = fresh.call("POST", USERS, json={"email": "other@sandbox.local",
                                              "password": "other-password"})
    assert created.status_code == 201 and created.headers["Location"].startswith("users/")
    other = requests.post(fresh.url + LOGIN, auth=("other@sandbox.local", "other-password"),
                          timeout=10).text
    fresh.set_faults(rate_limit_quota=2, rate_limit_interval_s=DAY)
    assert _count(fresh).status_code == 200
    assert _count(fresh, pat).status_code == 200
    assert _count(fresh, pat).status_code == 429
    assert _count(fresh).status_code == 429
    assert _count(fresh, other).status_code == 200  # another subject, another bucket


def test_management_and_device_apis_are_limited_apart(fresh: Mender) -> None:
    first, second = _device_token(fresh), _device_token(fresh)
    fresh.set_faults(rate_limit_quota=2, rate_limit_interval_s=DAY)
    assert [_count(fresh).status_code for _ in range(3)] == [200, 200, 429]
    calls = [fresh.device_call(first, "PUT", DEVICE_INVENTORY, json=ATTRS).status_code
             for _ in range(3)]
    assert calls == [200, 200, 429]
    limited = fresh.device_call(first, "PUT", DEVICE_INVENTORY, json=ATTRS)
    assert limited.json()["error"] == "too many requests" and "Retry-After" in limited.headers
    assert fresh.device_call(second, "PUT", DEVICE_INVENTORY, json=ATTRS).status_code == 200


def test_requests_pass_again_in_the_next_window(fresh: Mender) -> None:
    fresh.set_faults(rate_limit_quota=2, rate_limit_interval_s=1)
    limited = eventually(lambda: _count(fresh), lambda answer: answer.status_code == 429)
    assert limited.headers["Retry-After"] == "1"
    eventually(lambda: _count(fresh).status_code, lambda code: code == 200)


def test_token_bucket_refills_one_request_at_a_time(fresh: Mender) -> None:
    fresh.set_faults(rate_limit_quota=2, rate_limit_interval_s=4,
                     rate_limit_algorithm="token_bucket")
    answers = [_count(fresh) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    # One token every 2 s: the wait is at most that, rounded up.
    assert answers[2].headers["Retry-After"] in ("1", "2")
    eventually(lambda: _count(fresh).status_code, lambda code: code == 200)
    assert _count(fresh).status_code == 429  # one token came back, not the burst


def test_no_limit_by_default_and_none_on_unauthenticated_calls(fresh: Mender) -> None:
    assert all(_count(fresh).status_code == 200 for _ in range(50))
    fresh.set_faults(rate_limit_quota=1, rate_limit_interval_s=DAY)
    identity, key = unique_identity(), new_key()
    device_id_of(fresh.preauthorize(identity, public_pem(key)).headers["Location"])
    for _ in range(3):
        assert fresh.authenticate(key, identity).status_code == 200
        login = requests.post(fresh.url + LOGIN, auth=("admin@sandbox.local",
                                                       "sandbox-admin-password"), timeout=10)
        assert login.status_code == 200
