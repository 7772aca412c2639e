"""keys/mender-device-identity prints what the bridge's default identity template computes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bridge.identity import DEFAULT_TEMPLATE, IdentityTemplate
from bridge.model import RegistryDevice, RegistryRef
from tests.keykit.procs import run

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "keys" / "mender-device-identity"
PROVISION = ROOT / "keys" / "provision-device.sh"
SHELLS = ["dash"] + (["busybox"] if shutil.which("busybox") else [])


def identity(shell: str, id_file: Path) -> subprocess.CompletedProcess[str]:
    command = ["busybox", "sh"] if shell == "busybox" else [shell]
    env = {"PATH": os.environ.get("PATH", ""), "MENDER_BRIDGE_DEVICE_ID_FILE": str(id_file)}
    return run([*command, SCRIPT], timeout=30, env=env)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("device_id", ["g-0123456789abcdef0123456789abcdef", "A-_.+~%9"])
def test_prints_the_default_template_identity(shell: str, device_id: str,
                                              tmp_path: Path) -> None:
    made = run(["dash", PROVISION, "--data-dir", tmp_path, "--device-id", device_id])
    assert made.returncode == 0, made.stderr
    result = identity(shell, tmp_path / "device-id")
    assert result.returncode == 0, result.stderr
    device = RegistryDevice(RegistryRef("project-1", "l1", "reg"), device_id, "123")
    expected = IdentityTemplate.parse(DEFAULT_TEMPLATE).render(device)
    assert result.stdout == "".join(f"{k}={v}\n" for k, v in expected.items())


@pytest.mark.parametrize(("content", "message"), [
    (None, "no device id at"),
    ("", "is empty"),
    ("1bad\n", "does not hold a valid device id"),
    ("has space\n", "does not hold a valid device id"),
    ("ab\n", "does not hold a valid device id"),
])
def test_fails_clearly(content: str | None, message: str, tmp_path: Path) -> None:
    id_file = tmp_path / "device-id"
    if content is not None:
        id_file.write_text(content)
    result = identity("dash", id_file)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_tolerates_crlf_and_a_missing_final_newline(tmp_path: Path) -> None:
    id_file = tmp_path / "device-id"
    for content in ("dev-1\r\n", "dev-1"):
        id_file.write_text(content, newline="")
        assert identity("dash", id_file).stdout == "google_iot_id=dev-1\n"
