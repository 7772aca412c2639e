"""Debian's real `mender` client against the stand-in: the daemon polls, is decommissioned and
locked out; `mender bootstrap` through a key rotation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sbm_support import (
    DEVAUTH,
    DEVICE_INVENTORY,
    INVENTORY,
    NEXT_V2,
    eventually,
    public_pem,
    unique_identity,
)

from bridge.sandbox.launcher import Sandbox
from tests.support.mender_client import SUCCESS, bootstrap, need_mender_client
from tests.support.mender_daemon import AUTH_REFUSED, REAUTHORIZING, MenderDaemon

pytestmark = [pytest.mark.e2e, pytest.mark.mender_client]
AUTH = "/api/devices/v1/authentication/auth_requests"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "sandbox", tls=True) as running:
        yield running


def _api(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {sandbox.token.reveal()}"}
    return requests.request(method, sandbox.mender_url + path, headers=headers, timeout=10,
                            verify=str(sandbox.ca_cert), **kwargs)


def _key(path: Path) -> str:
    """An EC P-256 device key in SEC1 form at `path`; its public PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    return public_pem(key)


def _device_log(sandbox: Sandbox) -> list[dict[str, Any]]:
    response = requests.get(sandbox.mender_url + "/_sandbox/device_log", timeout=10,
                            verify=str(sandbox.ca_cert))
    result: list[dict[str, Any]] = response.json()
    return result


def test_daemon_polls_then_a_decommission_locks_it_out(sandbox: Sandbox, tmp_path: Path) -> None:
    need_mender_client()
    identity, key_path = unique_identity(), tmp_path / "device.pem"
    created = _api(sandbox, "POST", f"{DEVAUTH}/devices",
                   json={"identity_data": identity, "pubkey": _key(key_path)})
    device_id = created.headers["Location"].removeprefix("devices/")
    with MenderDaemon(sandbox.mender_url, sandbox.ca_cert, key_path, identity,
                      artifact_name="release-7", device_type="bridge-board") as daemon:
        daemon.wait_for_update_checks(2)
        calls = {(e["method"], e["path"], e["status"]) for e in _device_log(sandbox)
                 if e["device_id"] == device_id}
        assert {("POST", NEXT_V2, 204), ("PUT", DEVICE_INVENTORY, 200)} <= calls
        record = _api(sandbox, "GET", f"{INVENTORY}/devices/{device_id}").json()
        reported = {a["name"]: a["value"] for a in record["attributes"]
                    if a["scope"] == "inventory"}
        assert reported["artifact_name"] == "release-7"
        assert reported["device_type"] == "bridge-board"

        assert _api(sandbox, "DELETE", f"{DEVAUTH}/devices/{device_id}").status_code == 204
        since = time.time()

        def after() -> list[tuple[str, int]]:
            return [(e["path"], e["status"]) for e in _device_log(sandbox)
                    if e["time"] >= since]
        # Its next call is refused, and so is its attempt to authenticate again.
        seen = eventually(after, lambda got: any(p == AUTH for p, _ in got), timeout=60)
        assert any(p != AUTH and s == 401 for p, s in seen), seen
        assert all(s == 401 for _, s in seen), seen
        daemon.wait_for_log(AUTH_REFUSED)
    log = daemon.log()
    assert log.count(REAUTHORIZING) >= 2, log  # once at the start, again when refused
    # The re-authentication made a new device, pending: nothing accepts it.
    listed = _api(sandbox, "GET", f"{DEVAUTH}/devices", params={"per_page": 500}).json()
    assert [d["status"] for d in listed if d["identity_data"] == identity] == ["pending"]


def test_bootstrap_through_a_key_rotation(sandbox: Sandbox, tmp_path: Path) -> None:
    need_mender_client()
    identity = unique_identity()
    old_path, new_path = tmp_path / "old.pem", tmp_path / "new.pem"
    old_pem, new_pem = _key(old_path), _key(new_path)
    created = _api(sandbox, "POST", f"{DEVAUTH}/devices",
                   json={"identity_data": identity, "pubkey": old_pem})
    device_id = created.headers["Location"].removeprefix("devices/")
    code, log = bootstrap(sandbox.mender_url, sandbox.ca_cert, old_path, identity)
    assert code == 0, log
    forced = _api(sandbox, "POST", f"{DEVAUTH}/devices",
                  json={"identity_data": identity, "pubkey": new_pem, "force": True})
    assert forced.status_code == 201
    code, log = bootstrap(sandbox.mender_url, sandbox.ca_cert, new_path, identity)
    assert code == 0 and SUCCESS in log, log  # accepted on its first request
    sets = {a["pubkey"]: a["status"]
            for a in _api(sandbox, "GET", f"{DEVAUTH}/devices/{device_id}").json()["auth_sets"]}
    assert sets == {old_pem: "rejected", new_pem: "accepted"}
    code, log = bootstrap(sandbox.mender_url, sandbox.ca_cert, old_path, identity)
    assert code != 0 and SUCCESS not in log
    device = _api(sandbox, "GET", f"{DEVAUTH}/devices/{device_id}").json()
    assert device["status"] == "accepted"
    assert {a["pubkey"]: a["status"] for a in device["auth_sets"]}[old_pem] == "rejected"
