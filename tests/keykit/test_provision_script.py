"""keys/provision-device.sh run under dash (and busybox sh when installed) in temp dirs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from bridge import keys as keylib
from bridge.errors import InvalidKeyError
from tests.keykit import procs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "keys" / "provision-device.sh"
MACHINE_ID = "0123456789abcdef0123456789abcdef"
# A hang guard, not a speed check: RSA 3072 generation has a long tail, and a loaded 2-core
# machine stretches it many times (pytest-timeout still bounds the whole test).
TIMEOUT = 240
SHELLS = [pytest.param(["dash"], id="dash")]
if shutil.which("busybox"):
    SHELLS.append(pytest.param(["busybox", "sh"], id="busybox"))


def run(shell: list[str], *args: str | Path, env: dict[str, str] | None = None,
        umask: int = 0o022, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # `umask=` (not a preexec_fn): the suite's process has threads (servers, pools), and a
    # preexec_fn runs Python in the forked child, which can deadlock there until the timeout.
    return procs.run([shutil.which(shell[0]) or shell[0], *shell[1:], SCRIPT, *args],
                     timeout=TIMEOUT, env=env, umask=umask, cwd=cwd)


@pytest.fixture
def machine_id(tmp_path: Path) -> Path:
    path = tmp_path / "machine-id"
    path.write_text(MACHINE_ID + "\n")
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("kind", "header", "cert_fmt", "pub_fmt"), [
    ("ec", "EC PRIVATE KEY", "ES256_X509_PEM", "ES256_PEM"),
    ("rsa", "RSA PRIVATE KEY", "RSA_X509_PEM", "RSA_PEM"),
])
def test_makes_a_kit_the_bridge_and_mender_client_accept(
    shell: list[str], kind: str, header: str, cert_fmt: str, pub_fmt: str,
    tmp_path: Path, machine_id: Path,
) -> None:
    data = tmp_path / "var" / "data"
    # A permissive umask must not leak into the key's mode nor the directories made for it.
    result = run(shell, "--type", kind, "--data-dir", data, "--machine-id-file", machine_id,
                 umask=0)
    assert result.returncode == 0, result.stderr
    assert (mode(tmp_path / "var"), mode(data)) == (0o700, 0o700)
    key, pub, cert = data / "mender-agent.pem", data / "device-public.pem", data / "device-cert.pem"
    assert mode(key) == 0o600
    assert {mode(p) for p in (pub, cert, data / "device-id")} == {0o644}
    assert key.read_text().splitlines()[0] == f"-----BEGIN {header}-----"
    assert (data / "device-id").read_text() == f"g-{MACHINE_ID}\n"
    from_cert = keylib.normalize(cert.read_text(), cert_fmt)
    from_pub = keylib.normalize(pub.read_text(), pub_fmt)
    assert from_cert == from_pub
    assert from_cert.bits == (3072 if kind == "rsa" else 256)
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    assert parsed.version is x509.Version.v3
    assert parsed.subject.rfc4514_string() == f"CN=g-{MACHINE_ID}"
    lines = result.stdout.splitlines()
    assert lines[0] == f"device id:   g-{MACHINE_ID}"
    assert lines[-2].startswith("register it with ClearBlade IoT Core")
    assert lines[-1].startswith("  curl ")
    assert not list(data.glob(".provision*"))


@pytest.mark.parametrize("shell", SHELLS)
def test_never_overwrites_a_key_unless_forced(shell: list[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(shell, "--data-dir", data, "--device-id", "dev-1").returncode == 0
    key = data / "mender-agent.pem"
    first = key.read_bytes()
    again = run(shell, "--data-dir", data, "--device-id", "dev-2")
    assert again.returncode == 3
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert key.read_bytes() == first
    assert (data / "device-id").read_text() == "dev-1\n"
    forced = run(shell, "--data-dir", data, "--device-id", "dev-2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert key.read_bytes() != first
    assert mode(key) == 0o600


def test_a_directory_at_the_key_path_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "mender-agent.pem").mkdir()
    result = run(["dash"], "--data-dir", tmp_path, "--device-id", "dev-1", "--force")
    assert result.returncode == 1
    assert "is a directory" in result.stderr
    assert list((tmp_path / "mender-agent.pem").iterdir()) == []


@pytest.mark.parametrize("shell", SHELLS)
def test_reuse_key_rewrites_certificate_for_the_existing_key(shell: list[str],
                                                              tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(shell, "--data-dir", data, "--device-id", "dev-1", "--type", "rsa").returncode == 0
    key_before = (data / "mender-agent.pem").read_bytes()
    mismatch = run(shell, "--data-dir", data, "--device-id", "dev-9", "--reuse-key", "--type=ec")
    assert mismatch.returncode == 2 and "the key at" in mismatch.stderr
    result = run(shell, "--data-dir", data, "--device-id", "dev-9", "--reuse-key", "--rest")
    assert result.returncode == 0, result.stderr
    assert (data / "mender-agent.pem").read_bytes() == key_before
    body = json.loads(result.stdout)
    assert body["id"] == "dev-9"
    credential = body["credentials"][0]["publicKey"]
    assert credential["format"] == "RSA_X509_PEM"  # detected from the key, not --type's default
    assert credential["key"] == (data / "device-cert.pem").read_text()
    assert keylib.normalize(credential["key"], "RSA_X509_PEM") == keylib.normalize(
        (data / "device-public.pem").read_text())
    assert "device id:   dev-9" in result.stderr


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("args", "message"), [
    (["--colour"], "unknown option '--colour'"),
    (["--type", "dsa"], "--type must be ec or rsa"),
    (["--type"], "--type needs a value"),
    (["--force=yes"], "--force takes no value"),
    (["--days", "ten"], "--days must be a positive whole number"),
    (["--force", "--reuse-key"], "exclude each other"),
    (["extra"], "unknown option 'extra'"),
])
def test_bad_flags_are_usage_errors(shell: list[str], args: list[str], message: str,
                                    tmp_path: Path) -> None:
    result = run(shell, "--data-dir", tmp_path / "d", "--device-id", "dev-1", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("device_id", ["1abc", "ab", "a b", "a/b", "dev$1", "é-device",
                                       "a" * 256, "-abc"])
def test_invalid_device_ids_are_refused(device_id: str, tmp_path: Path) -> None:
    result = run(["dash"], "--data-dir", tmp_path / "d", "--device-id", device_id)
    assert result.returncode == 2
    assert "invalid device id" in result.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("device_id", ["abc", "A-_.+~%9", "z" * 255])
def test_every_valid_device_id_character_is_accepted(device_id: str, tmp_path: Path) -> None:
    result = run(["dash"], "--data-dir", tmp_path / "d", "--device-id", device_id)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "device-id").read_text() == device_id + "\n"
    cert = x509.load_pem_x509_certificate((tmp_path / "d" / "device-cert.pem").read_bytes())
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == device_id[:64]  # X.509 caps a common name at 64 characters


def test_unwritable_data_dir_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # A path under a regular file cannot be created, even by root.
    result = run(["dash"], "--data-dir", blocker / "data", "--device-id", "dev-1")
    assert result.returncode == 1
    assert f"cannot create data directory {blocker / 'data'}" in result.stderr


def test_read_only_data_dir_fails_clearly() -> None:
    # Root writes anywhere, so as root the script runs as `nobody` in a root-owned directory.
    as_nobody = os.geteuid() == 0
    top = Path(tempfile.mkdtemp(prefix="keykit-ro-"))
    try:
        top.chmod(0o755)
        script = top / "provision-device.sh"
        shutil.copyfile(SCRIPT, script)
        script.chmod(0o755)
        data = top / "data"
        data.mkdir(mode=0o755 if as_nobody else 0o500)

        nobody: dict[str, Any] = (
            {"user": 65534, "group": 65534, "extra_groups": []} if as_nobody else {})
        result = procs.run(["dash", script, "--data-dir", data, "--device-id", "dev-1"],
                           timeout=TIMEOUT, cwd=top, **nobody)
        assert result.returncode == 1
        assert f"cannot write in {data}" in result.stderr
        assert list(data.iterdir()) == []
    finally:
        (top / "data").chmod(0o700)
        shutil.rmtree(top)


def test_missing_openssl_fails_clearly(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cat", "cut", "tr", "mkdir", "chmod", "mv", "rm", "head", "grep", "awk", "date"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    result = run(["dash"], "--data-dir", tmp_path / "d", "--device-id", "dev-1",
                 env={"PATH": str(bin_dir)})
    assert result.returncode == 1
    assert "openssl not found in PATH" in result.stderr
    assert not (tmp_path / "d").exists()


def test_missing_machine_id_asks_for_device_id(tmp_path: Path) -> None:
    result = run(["dash"], "--data-dir", tmp_path / "d", "--machine-id-file", tmp_path / "none")
    assert result.returncode == 1
    assert "give --device-id" in result.stderr


def test_help_lists_every_option() -> None:
    result = run(["dash"], "--help")
    assert result.returncode == 0
    for option in ("--type", "--data-dir", "--device-id", "--force", "--reuse-key", "--rest"):
        assert option in result.stdout


HOSTILE = "x'$(touch PWNED)`touch PWNED`\"$HOME"


def register_line(stdout: str) -> str:
    lines = stdout.splitlines()
    assert lines[-2].startswith("register it with ClearBlade IoT Core"), stdout
    return lines[-1].removeprefix("  ")


def expected_argv(token: str, body: dict[str, Any], url: str) -> list[str]:
    return ["-fsS", "-X", "POST", "-H", f"ClearBlade-UserToken: {token}", "-H",
            "Content-Type: application/json", "--data-binary", json.dumps(body, separators=(
                ",", ":")), url]


@pytest.mark.parametrize("shell", SHELLS)
def test_printed_command_is_quoted_for_sh(shell: list[str], tmp_path: Path) -> None:
    """Hostile values pasted into the line stay data: nothing runs, curl gets them verbatim."""
    data = tmp_path / f"data {HOSTILE}"
    work = tmp_path / "work"
    work.mkdir()
    result = run(["dash"], "--data-dir", data, "--device-id", "dev-1", "--url",
                 f"https://h.example/{HOSTILE}/", "--system-key", HOSTILE, cwd=work)
    assert result.returncode == 0, result.stderr
    argv = procs.paste(register_line(result.stdout), [shutil.which(shell[0]) or shell[0],
                                                      *shell[1:]], work,
                       {"CLEARBLADE_TOKEN": "secret-token"})
    cert = (data / "device-cert.pem").read_text()
    body = {"id": "dev-1", "credentials": [{"publicKey": {"format": "ES256_X509_PEM",
                                                          "key": cert}}]}
    assert argv == expected_argv("secret-token", body, f"https://h.example/{HOSTILE}"
                                 f"/api/v/4/webhook/execute/{HOSTILE}/cloudiot_devices")
    assert not list(tmp_path.rglob("PWNED"))
    assert "secret-token" not in result.stdout


def test_placeholders_and_region(tmp_path: Path) -> None:
    """Without --url and --system-key the line reads them from the pasting shell; --region
    picks ClearBlade's regional host."""
    work = tmp_path / "work"
    work.mkdir()
    plain = run(["dash"], "--data-dir", tmp_path / "a", "--device-id", "dev-1", cwd=work)
    assert plain.returncode == 0, plain.stderr
    env = {"CLEARBLADE_URL": f"https://u.example/{HOSTILE}", "CLEARBLADE_SYSTEM_KEY": HOSTILE,
           "CLEARBLADE_TOKEN": HOSTILE}
    argv = procs.paste(register_line(plain.stdout), ["dash"], work, env)
    assert argv[4] == f"ClearBlade-UserToken: {HOSTILE}"
    assert argv[-1] == f"https://u.example/{HOSTILE}/api/v/4/webhook/execute/{HOSTILE}" \
        "/cloudiot_devices"
    regional = run(["dash"], "--data-dir", tmp_path / "b", "--device-id", "dev-2", "--region",
                   "europe-west1", "--system-key", "abc", "--project", "p", cwd=work)
    assert regional.returncode == 0, regional.stderr
    assert "--project and --registry are not needed" in regional.stderr
    argv = procs.paste(register_line(regional.stdout), ["dash"], work, env)
    assert argv[-1] == "https://europe-west1.clearblade.com/api/v/4/webhook/execute/abc" \
        "/cloudiot_devices"
    assert not list(tmp_path.rglob("PWNED"))


def test_private_key_is_never_accepted_as_a_credential(tmp_path: Path) -> None:
    assert run(["dash"], "--data-dir", tmp_path, "--device-id", "dev-1").returncode == 0
    with pytest.raises(InvalidKeyError, match="private key"):
        keylib.normalize((tmp_path / "mender-agent.pem").read_text())


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("name", ["provision-device.sh", "mender-device-identity"])
def test_scripts_are_posix_sh(name: str) -> None:
    result = procs.run(["shellcheck", "--shell=sh", ROOT / "keys" / name])
    assert result.returncode == 0, result.stdout
