"""The client over real HTTPS against the Mender stand-in: one device's whole life, with a
token and with a login, and the fleet listing across pages."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from mender_bodies import EC_PEM, RSA_KEY, RSA_PEM

from bridge.errors import NotFound, PermanentApiError
from bridge.mender import MenderClient
from bridge.model import AlreadyExists, AuthStatus, Preauthorized, Secret
from bridge.sandbox.faults import Faults, PreauthSetDelete

pytestmark = pytest.mark.e2e
Sandbox = pytest.importorskip("bridge.sandbox.launcher").Sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    # Inventory learns of a device at once: this is about the client, not about the search's
    # eventual consistency (the stand-in's own tests cover that). Deleting one of a device's
    # preauthorized sets keeps the device, as on servers after 4.1.3 (docs/mender-api.md).
    faults = Faults(inventory_delay_ms=0, preauth_set_delete=PreauthSetDelete.LAST_SET)
    with Sandbox(tmp_path_factory.mktemp("mender-e2e"), mender_faults=faults) as running:
        yield running


def _client(sandbox: object, **kw: object) -> MenderClient:
    url, ca = sandbox.mender_url, sandbox.ca_cert  # type: ignore[attr-defined]
    assert url.startswith("https://") and ca is not None
    options: dict[str, object] = {"ca_bundle": str(ca), "retries": 1, "backoff": 0.0, **kw}
    if "username" not in kw:
        options["token"] = sandbox.token  # type: ignore[attr-defined]
    return MenderClient(url, **options)  # type: ignore[arg-type]


def test_one_device_from_preauthorization_to_decommission(sandbox: object) -> None:
    identity = {"google_iot_id": "e2e-life"}
    with _client(sandbox) as c:
        created = c.preauthorize(identity, EC_PEM)
        assert isinstance(created, Preauthorized) and created.location_id
        again = c.preauthorize(identity, EC_PEM)
        assert isinstance(again, AlreadyExists) and again.device.auth_sets is None
        device_id = again.device.id
        assert again.device.status is AuthStatus.PREAUTHORIZED
        assert isinstance(c.preauthorize(identity, RSA_PEM, force=True), Preauthorized)
        dev = c.get_device(device_id)
        assert dev.auth_sets is not None
        assert sorted(a.pubkey for a in dev.auth_sets) == sorted([EC_PEM, RSA_PEM])
        found = c.find_by_identity(identity)
        assert found is not None and found.id == device_id
        assert c.find_by_identity({"google_iot_id": "e2e-nobody"}) is None
        rsa_set = next(a for a in dev.auth_sets if a.pubkey == RSA_PEM)
        c.delete_auth_set(device_id, rsa_set.id)
        c.delete_auth_set(device_id, rsa_set.id)  # already gone: no error
        after = c.get_device(device_id)
        assert after.auth_sets is not None and [a.pubkey for a in after.auth_sets] == [EC_PEM]
        c.decommission(device_id)
        c.decommission(device_id)
        with pytest.raises(NotFound):
            for _ in range(50):  # asynchronous on a real server (docs/mender-api.md#decommission)
                c.get_device(device_id)


def _device_auth_request(base_url: str, ca: Path, identity: dict[str, str]) -> int:
    """A device's boot (docs/mender-api.md#device-auth): identity and key, signed with its key."""
    body = json.dumps({"id_data": json.dumps(identity), "pubkey": RSA_PEM}).encode()
    signature = RSA_KEY.sign(body, padding.PKCS1v15(), hashes.SHA256())
    response = requests.post(f"{base_url}/api/devices/v1/authentication/auth_requests",
                             data=body, verify=str(ca), timeout=10, headers={
                                 "Content-Type": "application/json",
                                 "X-MEN-Signature": base64.b64encode(signature).decode()})
    return response.status_code


def test_a_pending_auth_set_is_accepted_then_rejected(sandbox: object) -> None:
    identity = {"google_iot_id": "e2e-status"}
    with _client(sandbox) as c:
        c.preauthorize(identity, EC_PEM)
        # Booting with another key adds a pending auth set (docs/mender-api.md#device-auth).
        assert _device_auth_request(c.base_url, sandbox.ca_cert, identity) == 401  # type: ignore[attr-defined]
        found = c.find_by_identity(identity)
        assert found is not None and found.auth_sets is not None
        pending = next(a for a in found.auth_sets if a.pubkey == RSA_PEM)
        assert pending.status is AuthStatus.PENDING
        with pytest.raises(PermanentApiError):
            c.set_auth_status(found.id, pending.id, AuthStatus.PREAUTHORIZED)
        c.set_auth_status(found.id, pending.id, AuthStatus.ACCEPTED)
        assert c.get_device(found.id).status is AuthStatus.ACCEPTED
        assert _device_auth_request(c.base_url, sandbox.ca_cert, identity) == 200  # type: ignore[attr-defined]
        c.set_auth_status(found.id, pending.id, AuthStatus.REJECTED)
        after = c.get_device(found.id)
        assert {a.id: a.status for a in after.auth_sets or ()}[pending.id] is AuthStatus.REJECTED


def test_listing_and_counting_across_pages_with_a_login(sandbox: object) -> None:
    admin = sandbox.admin_email, Secret(sandbox.admin_password)  # type: ignore[attr-defined]
    with _client(sandbox, username=admin[0], password=admin[1]) as c:
        before = c.count()
        with ThreadPoolExecutor(8) as pool:  # one client shared by threads, as the backfill does
            results = list(pool.map(
                lambda i: c.preauthorize({"google_iot_id": f"e2e-fleet-{i:04d}"}, EC_PEM),
                range(520)))
        assert all(isinstance(r, Preauthorized) for r in results)
        assert c.count() == before + 520
        assert c.count(AuthStatus.PREAUTHORIZED) >= 520
        listed = [d.id for d in c.iter_devices()]
        assert len(listed) == len(set(listed)) == before + 520
        lists = c.stats.requests_by_method["GET"] - 4  # three counts, and the listing's own
        assert lists == (before + 520 + 499) // 500
        assert c.stats.requests_by_method["POST"] == 521  # one login, 520 preauthorizations


def test_without_the_sandbox_ca_the_server_is_not_trusted(sandbox: object) -> None:
    with MenderClient(sandbox.mender_url, token=sandbox.token,  # type: ignore[attr-defined]
                      retries=0) as c, pytest.raises(PermanentApiError, match="TLS"):
        c.count()
