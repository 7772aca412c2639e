"""Run Debian's real `mender` client (3.4) once against a server: `mender bootstrap`.

The client's identity script has a fixed path, so every run holds an exclusive lock while it
installs that script and runs the client, then puts back whatever script was there before.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.support import procs

IDENTITY_SCRIPT = Path("/usr/share/mender/identity/mender-device-identity")
LOCK_PATH = Path(tempfile.gettempdir()) / "mender-bridge-identity.lock"
SUCCESS = "successfully received new authorization data"


def have_mender_client() -> bool:
    return shutil.which("mender") is not None


def need_mender_client() -> None:
    """Skip the calling test when `mender` is missing, or fail if REQUIRE_MENDER_CLIENT=1."""
    if have_mender_client():
        return
    if os.environ.get("REQUIRE_MENDER_CLIENT") == "1":
        pytest.fail("the mender client is required (REQUIRE_MENDER_CLIENT=1) but not installed")
    pytest.skip("Debian's mender-client is not installed")


@contextlib.contextmanager
def identity_lock() -> Iterator[None]:
    """Exclusive lock shared by every test (any process) that writes the identity script."""
    with LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def key_value_script(identity: Mapping[str, str]) -> bytes:
    """An identity script printing `identity` as the client's key=value lines."""
    lines = []
    for key, value in identity.items():
        if not key or "=" in key or "\n" in key + value:
            raise ValueError(f"identity attribute not representable as key=value: {key!r}")
        lines.append(f"{key}={value}")
    # A quoted here-document prints the values verbatim, whatever shell characters they hold.
    body = "#!/bin/sh\ncat <<'MENDER_BRIDGE_EOF'\n" + "\n".join(lines) + "\nMENDER_BRIDGE_EOF\n"
    return body.encode("utf-8")


@contextlib.contextmanager
def installed_device_files(files: Mapping[Path, bytes]) -> Iterator[None]:
    """Hold `identity_lock()` with `files` written at their (fixed, system) paths, mode 0755;
    put back whatever was at each path on the way out."""
    with identity_lock():
        previous: dict[Path, tuple[bytes, int] | None] = {}
        try:
            for path, data in files.items():
                previous[path] = ((path.read_bytes(), path.stat().st_mode & 0o7777)
                                  if path.exists() else None)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.chmod(0o755)
            yield
        finally:
            for path, saved in previous.items():
                if saved is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(saved[0])
                    path.chmod(saved[1])


def installed_identity_script(script: bytes) -> contextlib.AbstractContextManager[None]:
    """`installed_device_files` with `script` as the client's identity script."""
    return installed_device_files({IDENTITY_SCRIPT: script})


def run_bootstrap(
    server_url: str,
    ca_cert: Path | str | None,
    data_dir: Path,
    script: bytes,
    *,
    env: Mapping[str, str] | None = None,
    device_type: str = "sandbox-test",
    timeout: float = 60.0,
) -> tuple[int, str]:
    """`mender bootstrap` on a prepared data dir (its `mender-agent.pem` used as it is, never
    `--forcebootstrap`), with `script` as the identity script: (exit code, client log).

    Exit 0 means the server answered with a token; the log then contains SUCCESS.
    """
    config: dict[str, object] = {
        "ServerURL": server_url,
        "UpdatePollIntervalSeconds": 1800,
        "InventoryPollIntervalSeconds": 28800,
        "RetryPollIntervalSeconds": 300,
    }
    if ca_cert is not None:
        config["ServerCertificate"] = str(ca_cert)
    (data_dir / "device_type").write_text(f"device_type={device_type}\n", encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="mender-client-") as tmp:
        conf = Path(tmp) / "mender.conf"
        conf.write_text(json.dumps(config), encoding="utf-8")
        command = ["mender", "-c", str(conf), "-d", str(data_dir), "--no-syslog", "bootstrap"]
        with installed_identity_script(script):
            proc = procs.run(command, timeout=timeout, cwd=Path(tmp),
                             env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout + proc.stderr


def bootstrap(
    server_url: str,
    ca_cert: Path | str | None,
    key_path: Path | str,
    identity: Mapping[str, str],
    *,
    timeout: float = 60.0,
) -> tuple[int, str]:
    """Run `mender bootstrap` once with the given key and identity: (exit code, client log).

    The key is copied into a fresh data dir as `mender-agent.pem`.
    """
    script = key_value_script(identity)
    with tempfile.TemporaryDirectory(prefix="mender-data-") as tmp:
        data = Path(tmp)
        agent_key = data / "mender-agent.pem"
        shutil.copyfile(key_path, agent_key)
        agent_key.chmod(0o600)
        return run_bootstrap(server_url, ca_cert, data, script, timeout=timeout)
