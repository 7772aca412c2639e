"""A restart of the Mender stand-in loses nothing: devices, sets, users, tokens, keys, cert,
and what the workflows had still to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sbm_support import (
    DEVAUTH,
    INVENTORY,
    TOKENS,
    device_id_of,
    new_key,
    public_pem,
    start,
    unique_identity,
)

from bridge.sandbox.faults import Faults
from bridge.sandbox.mender.crypto import ensure_tls_certificate

pytestmark = pytest.mark.e2e


def test_state_survives_a_restart(tmp_path: Path) -> None:
    before = start(tmp_path)
    try:
        for _ in range(3):
            before.preauthorize(unique_identity(), public_pem(new_key()))
        key, identity = new_key(), unique_identity()
        before.authenticate(key, identity)  # a pending device
        accepted_key, accepted_identity = new_key("rsa"), unique_identity()
        before.preauthorize(accepted_identity, public_pem(accepted_key))
        assert before.authenticate(accepted_key, accepted_identity).status_code == 200
        pat = before.call("POST", TOKENS, json={"name": "keep"}).text
        devices = before.call("GET", f"{DEVAUTH}/devices").json()
        tokens = before.call("GET", TOKENS).json()
        login_token = before.token
    finally:
        before.stop()
    cert = ensure_tls_certificate(tmp_path)[0].read_bytes()

    after = start(tmp_path)
    try:
        after.token = login_token  # signed before the restart, still valid after it
        assert after.call("GET", f"{DEVAUTH}/devices").json() == devices
        assert after.call("GET", TOKENS).json() == tokens
        with_pat = requests.get(after.url + f"{DEVAUTH}/devices/count", timeout=10,
                                headers={"Authorization": f"Bearer {pat}"})
        assert with_pat.json() == {"count": 5}
        assert after.authenticate(accepted_key, accepted_identity).status_code == 200
        assert after.authenticate(key, identity).status_code == 401
        assert after.call("GET", f"{DEVAUTH}/devices/count",
                          params={"status": "pending"}).json() == {"count": 1}
    finally:
        after.stop()
    assert ensure_tls_certificate(tmp_path)[0].read_bytes() == cert


def test_a_restart_finishes_pending_workflows(tmp_path: Path) -> None:
    # Jobs wait in memory: a restart propagates deviceauth to inventory (as deviceauth's
    # maintenance commands do) and resumes the decommissions under way.
    before = start(tmp_path, faults=Faults(decommission_delay_ms=600_000,
                                           inventory_delay_ms=600_000))
    try:
        kept = device_id_of(before.preauthorize(unique_identity(), public_pem(new_key()))
                            .headers["Location"])
        leaving = device_id_of(before.preauthorize(unique_identity(), public_pem(new_key()))
                               .headers["Location"])
        assert before.call("DELETE", f"{DEVAUTH}/devices/{leaving}").status_code == 204
        assert before.device(leaving)["decommissioning"] is True
        assert before.call("GET", f"{INVENTORY}/devices/{kept}").status_code == 404
    finally:
        before.stop()
    after = start(tmp_path)
    try:
        assert after.call("GET", f"{DEVAUTH}/devices/{leaving}").status_code == 404
        assert after.inventory_status(kept) == "preauthorized"
        assert after.inventory_status(leaving) is None
    finally:
        after.stop()
