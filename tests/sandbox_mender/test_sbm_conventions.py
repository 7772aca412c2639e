"""Request ids, size limit, faults, and the Go-canonical identity hashing (docs/mender-api.md)."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sbm_support import DEVAUTH, Mender, new_key, public_pem, unique_identity

from bridge.sandbox.mender import canonical

pytestmark = pytest.mark.e2e


def test_request_id_is_echoed_or_generated(mender: Mender) -> None:
    echoed = mender.call("GET", f"{DEVAUTH}/devices/none", headers={"X-MEN-RequestID": "abc"})
    assert echoed.headers["X-MEN-RequestID"] == "abc"
    assert echoed.json()["request_id"] == "abc"
    generated = mender.call("GET", f"{DEVAUTH}/devices/none")
    request_id = generated.headers["X-MEN-RequestID"]
    assert len(request_id) == 36 and generated.json()["request_id"] == request_id


def test_bodies_above_one_mebibyte_are_413(mender: Mender) -> None:
    big = json.dumps({"identity_data": {"a": "x" * (1024 * 1024)}, "pubkey": "p"})
    response = mender.call("POST", f"{DEVAUTH}/devices", data=big,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert set(response.json()) == {"error", "request_id"}


def test_faults_can_be_set_at_run_time(fresh: Mender) -> None:
    admin = fresh.url + "/_sandbox/faults"
    assert requests.post(admin, json={"error_rate": 1.0, "error_statuses": [503]},
                         timeout=10).status_code == 200
    failing = fresh.call("GET", f"{DEVAUTH}/devices")
    assert failing.status_code == 503
    assert failing.json()["error"] == "service unavailable"
    requests.post(admin, json={"error_rate": 0.0, "rate_429": 1.0, "retry_after": 3},
                  timeout=10)
    limited = fresh.call("GET", f"{DEVAUTH}/devices")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    requests.post(admin, json={"rate_429": 0.0}, timeout=10)
    assert fresh.call("GET", f"{DEVAUTH}/devices").status_code == 200


def test_latency_holds_each_answer_until_it_is_due(fresh: Mender) -> None:
    # Only a lower bound: the answer must not leave before the injected round trip is over
    # (a fault that did nothing would fail this); no upper bound on a shared machine.
    admin = fresh.url + "/_sandbox/faults"
    requests.post(admin, json={"latency_ms": 200}, timeout=10).raise_for_status()
    for method, path in (("GET", f"{DEVAUTH}/devices"), ("GET", f"{DEVAUTH}/devices/none")):
        started = time.monotonic()
        answer = fresh.call(method, path)
        assert time.monotonic() - started >= 0.2, (method, path)
        assert answer.status_code in (200, 404)
    requests.post(admin, json={"latency_ms": 0}, timeout=10).raise_for_status()


@pytest.mark.parametrize(("value", "text"), [
    (1, "1"), (1.0, "1"), (-0.0, "-0"), (0.1, "0.1"), (1e20, "100000000000000000000"),
    (1e21, "1e+21"), (1.5e-7, "1.5e-7"), (1e-10, "1e-10"), (0.000001, "0.000001"),
    (123456789012345678, "123456789012345680"), (2.5e300, "2.5e+300"),
])
def test_numbers_are_written_as_go_writes_float64(value: float, text: str) -> None:
    assert canonical.dumps(value) == text


def test_canonical_json_sorts_keys_and_escapes_like_go() -> None:
    value = {"z": "<a&b>", "a": {"y": [True, None, "\u2028é"], "b": 2}}
    assert canonical.dumps(value) == (
        '{"a":{"b":2,"y":[true,null,"\\u2028é"]},"z":"\\u003ca\\u0026b\\u003e"}')
    assert canonical.identity_hash({"b": "2", "a": "1"}) == hashlib.sha256(
        b'{"a":"1","b":"2"}').digest()


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": 1e400}', "[1,"])
def test_json_go_would_refuse_is_refused(text: str) -> None:
    with pytest.raises(canonical.JsonError):
        canonical.loads(text)


def test_equal_identities_in_other_spellings_conflict(mender: Mender) -> None:
    base = unique_identity()["google_iot_id"]
    pem = public_pem(new_key())
    first = mender.preauthorize({"id": base, "n": 100}, pem)
    assert first.status_code == 201
    spelled = json.dumps({"identity_data": {"n": 12345, "id": base}, "pubkey": pem}
                         ).replace("12345", "1e2")
    response = mender.call("POST", f"{DEVAUTH}/devices", data=spelled,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 409


def test_concurrent_preauthorizations_of_one_identity_make_one_device(fresh: Mender) -> None:
    identities = [unique_identity() for _ in range(4)]
    pems = [public_pem(new_key()) for _ in range(4)]

    def attempt(index: int) -> int:
        with requests.Session() as session:
            response = session.post(
                fresh.url + f"{DEVAUTH}/devices", timeout=30,
                headers={"Authorization": f"Bearer {fresh.token}"},
                json={"identity_data": identities[index % 4], "pubkey": pems[index % 4]})
            return response.status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(attempt, range(48)))
    assert sorted(set(codes)) == [201, 409]
    assert codes.count(201) == 4
    assert fresh.call("GET", f"{DEVAUTH}/devices/count").json() == {"count": 4}


def test_dropped_connections_can_be_injected(fresh: Mender) -> None:
    fresh.faults.update({"drop_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        requests.get(fresh.url + f"{DEVAUTH}/devices", timeout=10,
                     headers={"Authorization": f"Bearer {fresh.token}"})
    fresh.faults.update({"drop_rate": 0.0})
    assert fresh.call("GET", f"{DEVAUTH}/devices").status_code == 200
