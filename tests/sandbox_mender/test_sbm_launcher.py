"""The launcher (`Sandbox`) and `mender-bridge sandbox`: both stand-ins, a ready bridge config."""

from __future__ import annotations

import os
import signal
import sys
import tomllib
from pathlib import Path

import pytest
import requests

from bridge.config import Settings
from bridge.sandbox.faults import Faults
from bridge.sandbox.launcher import Sandbox, is_loopback
from bridge.sandbox.mender.crypto import ensure_tls_certificate
from tests.support.procs import Spawned

pytestmark = pytest.mark.e2e
DEVICES = "/api/management/v2/devauth/devices"


def test_sandbox_serves_both_and_writes_a_config_the_bridge_reads(tmp_path: Path) -> None:
    with Sandbox(tmp_path, tls=True) as box:
        settings = Settings.from_toml(box.config_path, {})
        assert settings.mender_url == box.mender_url and box.mender_url.startswith("https://")
        assert settings.mender_token is not None
        assert settings.mender_token.reveal() == box.token.reveal()
        assert settings.mender_ca_bundle == str(box.ca_cert)
        assert settings.iot_endpoint == box.registry_url
        assert settings.iot_credentials == "anonymous" and settings.iot_registries
        assert "***" in repr(box.token) and box.token.reveal() not in repr(box.token)
        assert oct(box.config_path.stat().st_mode & 0o777) == "0o600"
        listed = requests.get(box.mender_url + DEVICES, verify=str(box.ca_cert), timeout=10,
                              headers={"Authorization": f"Bearer {box.token.reveal()}"})
        assert listed.status_code == 200
        registry = settings.iot_registries[0]
        path = (f"/v1/projects/{settings.iot_project}/locations/{settings.iot_location}"
                f"/registries/{registry}")
        assert requests.get(box.registry_url + path, timeout=10).status_code == 200


def test_a_restart_keeps_the_token_and_the_certificate(tmp_path: Path) -> None:
    with Sandbox(tmp_path) as first:
        token, cert = first.token.reveal(), first.ca_cert
        assert cert is not None
        cert_bytes = cert.read_bytes()
    with Sandbox(tmp_path) as second:
        assert second.token.reveal() == token
        assert second.ca_cert is not None and second.ca_cert.read_bytes() == cert_bytes


def test_plain_http_and_faults_set_at_start(tmp_path: Path) -> None:
    faults = Faults(error_rate=1.0, error_statuses=(503,))
    with Sandbox(tmp_path, tls=False, mender_faults=faults) as box:
        assert box.mender_url.startswith("http://127.0.0.1:") and box.ca_cert is None
        assert "mender_ca_bundle" not in tomllib.loads(box.config_path.read_text())
        response = requests.get(box.mender_url + DEVICES, timeout=10,
                                headers={"Authorization": f"Bearer {box.token.reveal()}"})
        assert response.status_code == 503
        box.mender_faults.update({"error_rate": 0.0})
        assert requests.get(box.mender_url + DEVICES, timeout=10, headers={
            "Authorization": f"Bearer {box.token.reveal()}"}).status_code == 200


@pytest.mark.parametrize("restart", [False, True])
def test_a_rate_limit_set_at_start_counts_only_the_callers_requests(
        tmp_path: Path, restart: bool) -> None:
    if restart:  # a saved token is checked again at start
        Sandbox(tmp_path, tls=False).start().stop()
    faults = Faults(rate_limit_quota=1, rate_limit_interval_s=86400)
    with Sandbox(tmp_path, tls=False, mender_faults=faults) as box:
        headers = {"Authorization": f"Bearer {box.token.reveal()}"}
        codes = [requests.get(box.mender_url + DEVICES, timeout=10, headers=headers).status_code
                 for _ in range(2)]
        assert codes == [200, 429]


def test_cli_prints_where_it_listens_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "data"
    command = [sys.executable, "-m", "bridge", "sandbox", "--data", str(data),
               "--mender-port", "0", "--registry-port", "0", "--latency-ms", "1",
               "--rate-429", "1"]
    with Spawned(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, log=tmp_path / "out",
                 stderr_log=tmp_path / "err") as process:
        process.wait_for(r"(?m)^Ctrl-C", timeout=120)
        output = process.stdout()
        token = (data / "sandbox-token").read_text().strip()
        assert "Mender stand-in:    https://localhost:" in output
        assert f"access token (PAT): {token}" in output
        assert "mender-cli --server https://localhost:" in output and "devices list" in output
        assert (data / "bridge.toml").exists()
        url = output.split("Mender stand-in:")[1].split()[0]
        throttled = requests.get(url + DEVICES, verify=str(data / "tls-cert.pem"), timeout=10)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
        process.proc.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=30)
    assert returncode == 0, process.stderr()
    assert "sandbox stopped" in process.stderr()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.org"])
def test_cli_refuses_plain_http_off_loopback(host: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bridge.cli import cli

    result = CliRunner().invoke(cli, ["sandbox", "--data", str(tmp_path / "d"), "--no-tls",
                                      "--host", host])
    assert result.exit_code == 2
    assert f"plain HTTP is for loopback only, not {host}" in result.output
    assert not (tmp_path / "d").exists()


def test_plain_http_is_refused_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"plain HTTP is for loopback only, not 192\.0\.2\.1"):
        Sandbox(tmp_path / "d", host="192.0.2.1", tls=False)
    assert not (tmp_path / "d").exists()
    assert [is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "", "192.0.2.1", "example.org")] == [
        False] * 5


def test_certificate_names_the_hosts_a_device_reaches_the_sandbox_by(tmp_path: Path) -> None:
    from cryptography import x509

    def names(path: Path) -> set[str]:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return {str(n.value) for n in san}

    cert, key = ensure_tls_certificate(tmp_path)
    assert names(cert) == {"localhost", "127.0.0.1"}
    first = cert.read_bytes()
    assert ensure_tls_certificate(tmp_path, ["127.0.0.1"])[0].read_bytes() == first  # reused
    ensure_tls_certificate(tmp_path, ["192.0.2.7"])
    assert names(cert) == {"localhost", "127.0.0.1", "192.0.2.7"}
    ensure_tls_certificate(tmp_path, ["mender.lan"])  # a new name keeps the old ones
    assert names(cert) == {"localhost", "127.0.0.1", "192.0.2.7", "mender.lan"}
    again = cert.read_bytes()
    assert ensure_tls_certificate(tmp_path, ["192.0.2.7"])[0].read_bytes() == again
    assert oct(key.stat().st_mode & 0o777) == "0o600"
