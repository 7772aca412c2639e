"""`mender-bridge sync` and `device` as a user runs them, over real HTTP(S) against the sandbox:
a mixed fleet is backfilled, a second run changes nothing, errors are one line with exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from bridge.device import SimulatedDevice
from bridge.model import Credential
from bridge.sandbox.launcher import Sandbox
from tests.core.credentials import credential, mender_pem, private_key
from tests.support import procs

pytestmark = pytest.mark.e2e
PATH = "/v1/projects/sandbox-project/locations/us-central1/registries/sandbox-registry/devices"
EXPIRED = datetime(2021, 1, 1, tzinfo=UTC)
FLEET: dict[str, tuple[tuple[Credential, ...], bool]] = {
    "ec-pem": ((credential("ec", 0),), False),
    "rsa-pem": ((credential("rsa", 0),), False),
    "ec-x509": ((credential("ec", 1, x509_cert=True),), False),
    "rsa-x509": ((credential("rsa", 1, x509_cert=True),), False),
    "two-keys": ((credential("ec", 2), credential("rsa", 0)), False),
    "half-expired": ((credential("ec", 3, expires_at=EXPIRED), credential("ec", 4)), False),
    "all-expired": ((credential("ec", 5, expires_at=EXPIRED),), False),
    "blocked": ((credential("ec", 6),), True),
}
EXPECTED = {
    "ec-pem": {mender_pem("ec", 0)},
    "rsa-pem": {mender_pem("rsa", 0)},
    "ec-x509": {mender_pem("ec", 1)},
    "rsa-x509": {mender_pem("rsa", 1)},
    "two-keys": {mender_pem("ec", 2)},  # one preauthorized key per device (deviceauth)
    "half-expired": {mender_pem("ec", 4)},
}


def registry_body(device_id: str, creds: tuple[Credential, ...],
                  blocked: bool) -> dict[str, object]:
    def one(cred: Credential) -> dict[str, object]:
        out: dict[str, object] = {"publicKey": {"format": str(cred.format), "key": cred.key}}
        if cred.expires_at is not None:
            out["expirationTime"] = cred.expires_at.isoformat().replace("+00:00", "Z")
        return out
    return {"id": device_id, "blocked": blocked, "credentials": [one(c) for c in creds]}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("sandbox"), tls=True) as running:
        for device_id, (creds, blocked) in FLEET.items():
            requests.post(running.registry_url + PATH, timeout=10,
                          json=registry_body(device_id, creds, blocked)).raise_for_status()
        yield running


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MENDER_", "IOT_"))}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return procs.run([sys.executable, "-m", "bridge", *args], timeout=120, env=clean_env())


def cli_on_a_terminal(*args: str) -> tuple[str, str]:
    """(stdout, what the terminal showed): stderr is a pseudo-terminal, stdout a pipe. The
    child has a session of its own, its group killed on the way out whatever happened."""
    master, slave = pty.openpty()
    child: subprocess.Popen[str] | None = None
    try:
        child = subprocess.Popen([sys.executable, "-m", "bridge", *args], text=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=slave, env=clean_env(), start_new_session=True)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert child.stdout is not None
        out = child.stdout.read()
        assert child.wait(timeout=120) == 0, shown
    finally:
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        os.close(master)
    return out, shown.decode("utf-8", "replace")


def mender_keys(sandbox: Sandbox) -> dict[str, set[str]]:
    """identity → keys, read from the management API directly, TLS verified."""
    response = requests.get(f"{sandbox.mender_url}/api/management/v2/devauth/devices",
                            params={"per_page": 500}, verify=str(sandbox.ca_cert), timeout=10,
                            headers={"Authorization": f"Bearer {sandbox.token.reveal()}"})
    response.raise_for_status()
    return {d["identity_data"]["google_iot_id"]: {s["pubkey"] for s in d["auth_sets"]}
            for d in response.json()}


def test_backfill_then_nothing_to_change(sandbox: Sandbox) -> None:
    first = cli("sync", "--config", str(sandbox.config_path), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["summary"]["done"] == 6 and report["summary"]["failed"] == 0
    assert mender_keys(sandbox) == EXPECTED
    skipped = {(a["device"], a["detail"]) for a in report["actions"] if a["status"] == "skipped"}
    assert ("sandbox-registry/blocked", "blocked in the registry") in skipped
    assert ("sandbox-registry/all-expired", "no usable credential") in skipped

    second = cli("sync", "--config", str(sandbox.config_path), "--ndjson")
    assert second.returncode == 0 and second.stderr == ""  # no progress bar off a terminal
    records = [json.loads(line) for line in second.stdout.splitlines()]
    lines = [r for r in records if r["record"] == "action"]
    assert {line["status"] for line in lines} <= {"unchanged", "skipped"}
    assert sum(line["status"] == "unchanged" for line in lines) == len(EXPECTED)
    closing = records[-1]
    assert closing["record"] == "summary" and closing["schema_version"] == 1
    # Per device: half-expired is in sync but its expired credential is a skip worth a look.
    assert closing["devices"] == {"failed": 0, "conflict": 0, "done": 0, "planned": 0,
                                  "skipped": 3, "unchanged": len(EXPECTED) - 1}
    assert mender_keys(sandbox) == EXPECTED


def mender_statuses(sandbox: Sandbox, device_id: str) -> dict[str, str]:
    response = requests.get(f"{sandbox.mender_url}/api/management/v2/devauth/devices",
                            params={"per_page": 500}, verify=str(sandbox.ca_cert), timeout=10,
                            headers={"Authorization": f"Bearer {sandbox.token.reveal()}"})
    [device] = [d for d in response.json()
                if d["identity_data"]["google_iot_id"] == device_id]
    return {s["pubkey"]: s["status"] for s in device["auth_sets"]}


def test_device_command_rotates_a_key_the_device_then_uses(sandbox: Sandbox) -> None:
    cli("sync", "--config", str(sandbox.config_path), "--quiet")
    old = SimulatedDevice(private_key("ec", 0), "ec-pem")
    assert old.authenticate(sandbox.mender_url, str(sandbox.ca_cert))  # accepted, in use
    creds = (credential("ec", 0), credential("ec", 7, x509_cert=True))
    requests.patch(f"{sandbox.registry_url}{PATH}/ec-pem", params={"updateMask": "credentials"},
                   json=registry_body("ec-pem", creds, False), timeout=10).raise_for_status()
    result = cli("device", "ec-pem", "--config", str(sandbox.config_path), "--json")
    assert result.returncode == 0, result.stderr
    actions = json.loads(result.stdout)["actions"]
    assert [(a["action"], a["status"]) for a in actions] == [("preauthorize_force", "done")]
    assert mender_statuses(sandbox, "ec-pem") == {mender_pem("ec", 0): "accepted",
                                                  mender_pem("ec", 7): "preauthorized"}
    new = SimulatedDevice(private_key("ec", 7), "ec-pem")
    assert new.authenticate(sandbox.mender_url, str(sandbox.ca_cert))  # first request
    assert not old.authenticate(sandbox.mender_url, str(sandbox.ca_cert))
    requests.patch(f"{sandbox.registry_url}{PATH}/ec-pem", params={"updateMask": "credentials"},
                   json=registry_body("ec-pem", creds[1:], False),
                   timeout=10).raise_for_status()
    again = cli("device", "ec-pem", "--config", str(sandbox.config_path), "--json")
    assert json.loads(again.stdout)["devices"]["unchanged"] == 1
    assert mender_statuses(sandbox, "ec-pem") == {mender_pem("ec", 0): "rejected",
                                                  mender_pem("ec", 7): "accepted"}


def test_dry_run_and_readable_table(sandbox: Sandbox) -> None:
    requests.post(sandbox.registry_url + PATH, timeout=10, json=registry_body(
        "late-comer", (credential("ec", 8),), False)).raise_for_status()
    result = cli("sync", "--config", str(sandbox.config_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]  # the summary comes after the table
    assert last.startswith("devices: ") and "1 planned" in last
    row = next(line for line in result.stdout.splitlines() if "late-comer" in line)
    assert row.split()[:3] == ["sandbox-registry/late-comer", "preauthorize", "planned"]
    assert "late-comer" not in mender_keys(sandbox)


def test_configuration_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bridge.toml"
    bad.write_text('mender_url = "http://mender.example.com"\n', encoding="utf-8")
    result = cli("sync", "--config", str(bad))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert all(line.startswith("mender-bridge: error: ") for line in lines)
    assert sorted(line.split(": ", 2)[2] for line in lines) == [
        "IOT_PROJECT is required",
        "MENDER_TOKEN (or MENDER_USERNAME and MENDER_PASSWORD) is required",
        f"MENDER_URL: plain http:// is refused except to loopback; use https:// (from {bad})"]
    both = cli("sync", "--config", str(bad), "--json", "--ndjson")
    assert both.returncode == 2 and "not both" in both.stderr


def test_unreachable_mender_fails_with_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('mender_url = "http://127.0.0.1:9"\nmender_token = "t"\n'
                      'iot_project = "my-project"\niot_registries = ["fleet"]\n'
                      'iot_endpoint = "http://127.0.0.1:9"\niot_credentials = "anonymous"\n'
                      'mender_timeout = 1\n', encoding="utf-8")
    result = cli("sync", "--config", str(config), "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["summary"]["failed"] == 1


@pytest.mark.slow
def test_backfill_under_faults_converges_without_duplicates(tmp_path: Path) -> None:
    with Sandbox(tmp_path / "faulty", tls=True) as running:
        expected = {}
        for i in range(60):
            cred = credential("ec" if i % 2 else "rsa", i % 4, x509_cert=i % 3 == 0)
            requests.post(running.registry_url + PATH, timeout=10, json=registry_body(
                f"flaky-{i}", (cred,), False)).raise_for_status()
            expected[f"flaky-{i}"] = {mender_pem("ec" if i % 2 else "rsa", i % 4)}
        running.mender_faults.update({"error_rate": 0.05, "error_statuses": [500, 503],
                                      "rate_429": 0.03, "retry_after": 0, "drop_rate": 0.02,
                                      "seed": 11})
        codes = []
        for _ in range(8):
            result = cli("sync", "--config", str(running.config_path), "--json", "--quiet")
            codes.append(result.returncode)
            if result.returncode == 0:
                break
        assert codes[-1] == 0, codes
        running.mender_faults.update({"error_rate": 0, "rate_429": 0, "drop_rate": 0})
        devices = requests.get(f"{running.mender_url}/api/management/v2/devauth/devices",
                               params={"per_page": 500}, verify=str(running.ca_cert),
                               headers={"Authorization": f"Bearer {running.token.reveal()}"},
                               timeout=10).json()
        identities = [d["identity_data"]["google_iot_id"] for d in devices]
        assert len(identities) == len(set(identities)) == 60
        assert mender_keys(running) == expected


def test_backfill_paces_itself_through_429s(tmp_path: Path) -> None:
    from bridge.config import Settings
    from bridge.factory import build_service

    with Sandbox(tmp_path / "throttled", tls=False) as running:
        for i in range(40):
            requests.post(running.registry_url + PATH, timeout=10, json=registry_body(
                f"busy-{i}", (credential("ec", i % 3),), False)).raise_for_status()
        running.mender_faults.update({"rate_429": 0.25, "retry_after": 0, "seed": 5})
        settings = Settings.from_toml(running.config_path, {})
        with build_service(settings, concurrency=8) as service:
            report = service.backfill()
        assert not report.failed and report.summary()["done"] == 40
        assert report.stats["mender_429"] > 0  # it met them, and every device got through


def test_progress_bar_only_on_a_terminal(sandbox: Sandbox) -> None:
    args = ("sync", "--config", str(sandbox.config_path), "--dry-run", "--json")
    out, shown = cli_on_a_terminal(*args)
    assert "synced" in shown and "synced" not in out
    assert json.loads(out)["summary"]["failed"] == 0  # stdout stays clean JSON
    _, quiet = cli_on_a_terminal(*args, "--quiet")
    assert "synced" not in quiet
    piped = cli(*args)
    assert piped.returncode == 0 and "synced" not in piped.stderr
    assert json.loads(piped.stdout)["summary"] == json.loads(out)["summary"]
