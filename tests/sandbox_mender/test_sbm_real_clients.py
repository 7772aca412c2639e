"""Debian's real `mender` client and `mender-cli` against the stand-in over HTTPS."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sbm_support import DEVAUTH, public_pem, unique_identity

from bridge.sandbox.launcher import Sandbox
from tests.support import procs
from tests.support.mender_client import SUCCESS, bootstrap, need_mender_client

pytestmark = [pytest.mark.e2e, pytest.mark.mender_client]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("sandbox"), tls=True) as running:
        yield running


def _api(sandbox: Sandbox, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {sandbox.token.reveal()}"}
    return requests.request(method, sandbox.mender_url + path, headers=headers, timeout=10,
                            verify=str(sandbox.ca_cert), **kwargs)  # type: ignore[arg-type]


def _device_key(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A key as a device keeps it (RSA PKCS#1 3072, or EC P-256 SEC1), and its public PEM."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=3072) if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1()))
    path = tmp_path / f"{kind}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    return path, public_pem(key)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_preauthorized_device_is_accepted_on_its_first_request(
        sandbox: Sandbox, tmp_path: Path, kind: str) -> None:
    need_mender_client()
    key_path, pem = _device_key(tmp_path, kind)
    identity = unique_identity()
    created = _api(sandbox, "POST", f"{DEVAUTH}/devices",
                   json={"identity_data": identity, "pubkey": pem})
    assert created.status_code == 201
    code, log = bootstrap(sandbox.mender_url, sandbox.ca_cert, key_path, identity)
    assert code == 0, log
    assert SUCCESS in log
    device_id = created.headers["Location"].removeprefix("devices/")
    assert _api(sandbox, "GET", f"{DEVAUTH}/devices/{device_id}").json()["status"] == "accepted"


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_unknown_device_waits_as_pending_until_an_admin_accepts_it(
        sandbox: Sandbox, tmp_path: Path, kind: str) -> None:
    need_mender_client()
    key_path, pem = _device_key(tmp_path, kind)
    identity = unique_identity()
    code, log = bootstrap(sandbox.mender_url, sandbox.ca_cert, key_path, identity)
    assert code != 0 and SUCCESS not in log
    pending = _api(sandbox, "GET", f"{DEVAUTH}/devices",
                   params={"status": "pending", "per_page": 500}).json()
    [device] = [d for d in pending if d["identity_data"] == identity]
    [auth] = device["auth_sets"]
    assert auth["pubkey"] == pem  # the client sent the key as normalized PKIX PEM
    accepted = _api(sandbox, "PUT", f"{DEVAUTH}/devices/{device['id']}/auth/{auth['id']}"
                                    "/status", json={"status": "accepted"})
    assert accepted.status_code == 204
    code, log = bootstrap(sandbox.mender_url, sandbox.ca_cert, key_path, identity)
    assert code == 0, log


def test_mender_cli_lists_the_devices(sandbox: Sandbox) -> None:
    if shutil.which("mender-cli") is None:
        if os.environ.get("REQUIRE_MENDER_CLIENT") == "1":
            pytest.fail("mender-cli is required (REQUIRE_MENDER_CLIENT=1) but not installed")
        pytest.skip("mender-cli is not installed")
    identity = unique_identity()
    created = _api(sandbox, "POST", f"{DEVAUTH}/devices", json={
        "identity_data": identity,
        "pubkey": public_pem(ec.generate_private_key(ec.SECP256R1()))})
    device_id = created.headers["Location"].removeprefix("devices/")
    # Go reads extra roots from SSL_CERT_FILE: the sandbox's certificate, verified.
    env = {**os.environ, "SSL_CERT_FILE": str(sandbox.ca_cert), "HOME": str(sandbox.data_dir)}
    result = procs.run(
        ["mender-cli", "--server", sandbox.mender_url, "--token-value", sandbox.token.reveal(),
         "devices", "list", "--raw"], timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    # mender-cli prints its results on stderr, after a line about its own config file.
    output = result.stdout + result.stderr
    listed = json.loads(output[output.index("["):])
    assert device_id in [d["id"] for d in listed]
    plain = procs.run(
        ["mender-cli", "--server", sandbox.mender_url, "--token-value", sandbox.token.reveal(),
         "devices", "list"], timeout=60, env=env)
    assert f"ID: {device_id}" in plain.stdout + plain.stderr
