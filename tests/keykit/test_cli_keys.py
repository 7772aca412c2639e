"""`mender-bridge keys generate|jwt|check` through click's runner (exit codes, outputs)."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt as pyjwt
import pytest
from click.testing import CliRunner

from bridge import devicekeys
from bridge import keys as keylib
from bridge.cli import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("kind", "fmt"), [("ec", "ES256_X509_PEM"), ("rsa", "RSA_X509_PEM")])
def test_generate_writes_the_kit(kind: str, fmt: str, tmp_path: Path) -> None:
    code, out, _ = invoke("keys", "generate", "--type", kind, "--out", str(tmp_path),
                          "--device-id", "dev-1")
    assert code == 0
    assert out.splitlines()[0] == "device id:   dev-1"
    assert f"type={fmt.lower().replace('_', '-')}" in out
    key = tmp_path / devicekeys.KEY_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert keylib.normalize((tmp_path / devicekeys.CERT_NAME).read_text(), fmt)
    again = invoke("keys", "generate", "--out", str(tmp_path), "--device-id", "dev-1")
    assert again[0] == 2 and "already exists" in again[2]
    assert invoke("keys", "generate", "--out", str(tmp_path), "--device-id", "dev-1",
                  "--force")[0] == 0


def test_generate_refuses_a_bad_device_id(tmp_path: Path) -> None:
    code, _, err = invoke("keys", "generate", "--out", str(tmp_path), "--device-id", "1x")
    assert code == 2 and "invalid device id" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("kind", "alg"), [("ec", "ES256"), ("rsa", "RS256")])
def test_jwt_prints_a_token_for_the_project(kind: devicekeys.KeyKind, alg: str,
                                            tmp_path: Path) -> None:
    kit = devicekeys.write_kit(tmp_path, kind=kind, device_id="dev-1")
    code, out, _ = invoke("keys", "jwt", "--key", str(kit.key_path), "--project", "p1",
                          "--ttl", "120")
    assert code == 0
    key = devicekeys.load_private_key(kit.key_path)
    claims = pyjwt.decode(out.strip(), key.public_key(), algorithms=[alg], audience="p1")
    assert claims["exp"] - claims["iat"] == 120


def test_jwt_usage_errors(tmp_path: Path) -> None:
    kit = devicekeys.write_kit(tmp_path, kind="ec", device_id="dev-1")
    assert invoke("keys", "jwt", "--key", str(kit.key_path), "--project", "p",
                  "--ttl", "86401")[0] == 2
    code, _, err = invoke("keys", "jwt", "--key", str(kit.key_path), "--project", "p",
                          "--algorithm", "RS256")
    assert code == 2 and "use ES256" in err
    code, _, err = invoke("keys", "jwt", "--key", str(kit.cert_path), "--project", "p")
    assert code == 2 and "not an unencrypted PEM private key" in err


def test_check_config_errors_exit_2(tmp_path: Path) -> None:
    kit = devicekeys.write_kit(tmp_path, kind="ec", device_id="dev-1")
    code, _, err = invoke("keys", "check", "--device", "dev-1", "--key", str(kit.key_path),
                          "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "cannot read config file" in err
    bad = tmp_path / "bridge.toml"
    bad.write_text('mender_url = "http://mender.example.com"\n')
    code, _, err = invoke("keys", "check", "--device", "dev-1", "--key", str(kit.key_path),
                          "--config", str(bad))
    assert code == 2 and "MENDER_URL" in err
