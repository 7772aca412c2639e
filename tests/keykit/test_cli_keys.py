"""`mender-bridge keys generate|jwt|check` (exit codes, outputs, JSON schemas), through click's
runner, and in a real process where stderr must stay clean."""

from __future__ import annotations

import hashlib
import json
import stat
import sys
from pathlib import Path

import jwt as pyjwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from bridge import devicekeys, keykit
from bridge.cli import cli
from tests.core.key_material import keyring
from tests.keykit import procs

HOSTILE = "x'$(touch PWNED)`touch PWNED`\"$HOME"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def spki_fingerprint(pem: str) -> str:
    key = serialization.load_pem_public_key(pem.encode())
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(("kind", "fmt", "bits", "curve"), [
    ("ec", "ES256_X509_PEM", 256, "P-256"), ("rsa", "RSA_X509_PEM", 3072, None)])
def test_generate_writes_the_kit_and_its_json(kind: str, fmt: str, bits: int, curve: str | None,
                                              tmp_path: Path) -> None:
    code, out, _ = invoke("keys", "generate", "--type", kind, "--out", str(tmp_path / "k"),
                          "--device-id", "dev-1", "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"schema_version", "device_id", "files", "formats", "key", "register"}
    assert (report["schema_version"], report["device_id"]) == (1, "dev-1")
    files = {name: Path(path) for name, path in report["files"].items()}
    assert stat.S_IMODE(files["private_key"].stat().st_mode) == 0o600
    assert files["device_id"].read_text() == "dev-1\n"
    cert = files["certificate"].read_text()
    assert report["formats"] == {"certificate": fmt, "public_key": fmt.replace("_X509", "")}
    public = files["public_key"].read_text()
    assert report["key"] == {"type": kind, "bits": bits, "curve": curve,
                             "fingerprint": spki_fingerprint(public)}
    assert report["register"]["body"] == {"id": "dev-1", "credentials": [
        {"publicKey": {"format": fmt, "key": cert}}]}
    assert report["register"]["command"].startswith("curl ")


def test_generate_exits_3_when_a_key_exists_like_the_script(tmp_path: Path) -> None:
    assert invoke("keys", "generate", "--out", str(tmp_path), "--device-id", "dev-1")[0] == 0
    key = tmp_path / keykit.KEY_NAME
    first = key.read_bytes()
    code, out, err = invoke("keys", "generate", "--out", str(tmp_path), "--device-id", "dev-1")
    assert (code, out) == (3, "")
    assert err.startswith("mender-bridge: error: a key already exists") and "--force" in err
    assert key.read_bytes() == first
    assert invoke("keys", "generate", "--out", str(tmp_path), "--device-id", "dev-1",
                  "--force")[0] == 0
    assert key.read_bytes() != first


def test_generate_refuses_a_bad_device_id(tmp_path: Path) -> None:
    code, _, err = invoke("keys", "generate", "--out", str(tmp_path), "--device-id", "1x")
    assert code == 2 and "device id '1x' is not valid" in err
    assert not list(tmp_path.iterdir())


def test_generate_prints_a_quoted_command(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code, out, _ = invoke("keys", "generate", "--out", str(tmp_path / "kit"), "--device-id",
                          "dev-1", "--url", f"https://h.example/{HOSTILE}", "--system-key",
                          HOSTILE)
    assert code == 0
    assert out.splitlines()[-2].startswith("register it (ClearBlade IoT Core")
    argv = procs.paste(out.splitlines()[-1].removeprefix("  "), ["dash"], work,
                       {"CLEARBLADE_TOKEN": "t0ken"})
    assert argv[4] == "ClearBlade-UserToken: t0ken"
    assert json.loads(argv[8])["credentials"][0]["publicKey"]["key"] == (
        tmp_path / "kit" / keykit.CERT_NAME).read_text()
    assert argv[9] == (f"https://h.example/{HOSTILE}/api/v/4/webhook/execute/{HOSTILE}"
                       "/cloudiot_devices")
    assert not list(tmp_path.rglob("PWNED"))


def test_generate_makes_private_directories_under_umask_0(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    made = procs.run([sys.executable, "-m", "bridge", "keys", "generate", "--out", out,
                      "--device-id", "dev-1"], umask=0)
    assert made.returncode == 0, made.stderr
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "a", out)} == {0o700}


@pytest.mark.parametrize(("kind", "alg"), [("ec", "ES256"), ("rsa", "RS256")])
def test_jwt_prints_a_token_for_the_project(kind: devicekeys.KeyKind, alg: str,
                                            tmp_path: Path) -> None:
    kit = keykit.write_kit(tmp_path, kind=kind, device_id="dev-1")
    code, out, _ = invoke("keys", "jwt", "--key", str(kit.key_path), "--project", "p1",
                          "--ttl", "120")
    assert code == 0
    key = keykit.load_private_key(kit.key_path)
    claims = pyjwt.decode(out.strip(), key.public_key(), algorithms=[alg], audience="p1")
    assert claims["exp"] - claims["iat"] == 120


def test_jwt_refuses_a_key_the_policy_refuses_in_one_clean_line(tmp_path: Path) -> None:
    """A real process: a library warning would reach its stderr whatever ran before."""
    weak = tmp_path / "rsa1024.pem"
    weak.write_bytes(devicekeys.private_pem(keyring()["rsa1024"]))  # type: ignore[arg-type]
    result = procs.run([sys.executable, "-m", "bridge", "keys", "jwt", "--key", weak,
                        "--project", "p1"])
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("mender-bridge: error: RSA key of 1024 bits is below the minimum "
                             "of 2048\n")


def test_jwt_usage_errors(tmp_path: Path) -> None:
    kit = keykit.write_kit(tmp_path, kind="ec", device_id="dev-1")
    assert invoke("keys", "jwt", "--key", str(kit.key_path), "--project", "p",
                  "--ttl", "86401")[0] == 2
    code, _, err = invoke("keys", "jwt", "--key", str(kit.key_path), "--project", "p",
                          "--algorithm", "RS256")
    assert code == 2 and "use ES256" in err
    code, _, err = invoke("keys", "jwt", "--key", str(kit.cert_path), "--project", "p")
    assert code == 2 and "not an unencrypted PEM private key" in err
    code, _, err = invoke("keys", "jwt", "--key", "/dev/zero", "--project", "p")
    assert code == 2 and "/dev/zero is not a regular file" in err


def test_check_config_errors_exit_2(tmp_path: Path) -> None:
    kit = keykit.write_kit(tmp_path, kind="ec", device_id="dev-1")
    code, _, err = invoke("keys", "check", "--device", "dev-1", "--key", str(kit.key_path),
                          "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in err and len(err.splitlines()) == 1
    bad = tmp_path / "bridge.toml"
    bad.write_text('mender_url = "http://mender.example.com"\n')
    code, _, err = invoke("keys", "check", "--device", "dev-1", "--key", str(kit.key_path),
                          "--config", str(bad))
    assert code == 2 and "MENDER_URL" in err
