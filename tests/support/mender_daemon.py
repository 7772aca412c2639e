"""Run Debian's real `mender` daemon (3.4) as a device against a Mender server (the sandbox's
stand-in or any other), for as long as a test needs it.

    with MenderDaemon(server_url, ca_cert, key_pem_path, {"google_iot_id": "dev-1"}) as daemon:
        daemon.wait_for_update_checks(2)      # polled the server successfully twice
        ...                                   # act on the server (decommission, rotate...)
        daemon.wait_for_log(AUTH_REFUSED)     # the client's own account of what followed

What it sets up: a data dir in a temporary directory (the device's key as `mender-agent.pem`,
`device_type`), a configuration with short poll intervals (`poll_s` for update checks,
inventory and retries), and the two files Mender 3.4 reads only at fixed system paths: the
identity script (`/usr/share/mender/identity/mender-device-identity`) and
`/etc/mender/artifact_info`. Those are installed under `identity_lock()` for the daemon's whole
life and restored afterwards, so one daemon (or `mender bootstrap`) runs at a time.

The daemon runs in its own process group, logs to a file read back with `log()`, and is
stopped by killing the whole group (SIGTERM, then SIGKILL) in `stop()`, which `__exit__` calls
whatever happens. The key file is copied, never generated: `--forcebootstrap` is not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.support.mender_client import IDENTITY_SCRIPT, installed_device_files, key_value_script

ARTIFACT_INFO = Path("/etc/mender/artifact_info")
# The client's log lines (logrus, level info) for the outcomes a test waits for.
UPDATE_CHECK_DONE = "State transition: update-check [Sync] -> check-wait [Idle]"
INVENTORY_SENT = "State transition: inventory-update [Sync] -> check-wait [Idle]"
AUTH_REFUSED = "authorization request failed"
REAUTHORIZING = "Device unauthorized; attempting reauthorization"


class MenderDaemon:
    def __init__(self, server_url: str, ca_cert: Path | str | None, key_path: Path | str,
                 identity: Mapping[str, str], *, artifact_name: str = "sandbox-artifact-1",
                 device_type: str = "sandbox-test", poll_s: int = 1) -> None:
        self.server_url, self.ca_cert = server_url, ca_cert
        self.key_path, self.identity = Path(key_path), dict(identity)
        self.artifact_name, self.device_type, self.poll_s = artifact_name, device_type, poll_s
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._files: contextlib.ExitStack | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._final_log = ""

    def start(self) -> MenderDaemon:
        """Install the device files, start `mender daemon`; stop everything on failure."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="mender-daemon-")
        root = Path(self._tmp.name)
        data = root / "data"
        data.mkdir()
        shutil.copyfile(self.key_path, data / "mender-agent.pem")
        (data / "mender-agent.pem").chmod(0o600)
        (data / "device_type").write_text(f"device_type={self.device_type}\n", encoding="utf-8")
        config: dict[str, object] = {
            "ServerURL": self.server_url, "UpdatePollIntervalSeconds": self.poll_s,
            "InventoryPollIntervalSeconds": self.poll_s, "RetryPollIntervalSeconds": self.poll_s}
        if self.ca_cert is not None:
            config["ServerCertificate"] = str(self.ca_cert)
        (root / "mender.conf").write_text(json.dumps(config), encoding="utf-8")
        self._files = contextlib.ExitStack()
        self._files.enter_context(installed_device_files({
            IDENTITY_SCRIPT: key_value_script(self.identity),
            ARTIFACT_INFO: f"artifact_name={self.artifact_name}\n".encode()}))
        self.log_path = root / "mender.log"
        with self.log_path.open("wb") as log:
            # -b: a fallback configuration that does not exist, so no system one is merged in.
            self._process = subprocess.Popen(
                ["mender", "-c", str(root / "mender.conf"), "-b", str(root / "none.conf"),
                 "-d", str(data), "--no-syslog", "-l", "info", "daemon"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                start_new_session=True)

    def stop(self) -> str:
        """Kill the daemon's process group, restore the device files; the client's log."""
        text = ""
        try:
            if self._process is not None:
                _kill_group(self._process)
            text = self._final_log = self.log()
        finally:
            self._process = None
            if self._files is not None:
                self._files.close()
                self._files = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
        return text

    def log(self) -> str:
        """The client's log so far (after `stop()`, all of it)."""
        if self.log_path is None or not self.log_path.exists():
            return self._final_log
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def count(self, line: str) -> int:
        return len(re.findall(re.escape(line), self.log()))

    def update_checks(self) -> int:
        """Update checks that ended well ("no update" from the server)."""
        return self.count(UPDATE_CHECK_DONE)

    def wait_for_log(self, line: str, times: int = 1, timeout: float = 60.0) -> None:
        """Wait until the client has logged `line` at least `times` times."""
        deadline = time.monotonic() + timeout
        while self.count(line) < times:
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(f"mender daemon exited ({self._process.returncode}):\n"
                                     + self.log()[-4000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"{line!r} seen {self.count(line)} of {times} times in "
                                     f"{timeout} s:\n" + self.log()[-4000:])
            time.sleep(0.1)

    def wait_for_update_checks(self, times: int, timeout: float = 60.0) -> None:
        self.wait_for_log(UPDATE_CHECK_DONE, times, timeout)

    def __enter__(self) -> MenderDaemon:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)
    # Whatever is left of the group (the client's helpers included) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5.0)
