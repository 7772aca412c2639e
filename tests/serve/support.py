"""Helpers of the serve tests: a real `mender-bridge serve` subprocess (its own process group,
killed whatever happens; its output in a file; its port read from the line it prints), and a
sandbox with a bridge environment pointed at it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bridge.model import RegistryRef
from tests.function.e2e_support import wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "serve-test-secret-7f3a9c"
AUTH = {"Authorization": f"Bearer {SECRET}"}


def offline_env(**extra: str) -> dict[str, str]:
    """Settings whose services are never reached (nothing listens on port 9): enough for the
    tests of the server itself."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
           "WEBHOOK_SECRET": SECRET, "MENDER_URL": "http://127.0.0.1:9",
           "MENDER_TOKEN": "offline-token-0123456789", "IOT_PROJECT": "serve-tests",
           "IOT_REGISTRIES": "fleet", "IOT_ENDPOINT": "http://127.0.0.1:9",
           "IOT_CREDENTIALS": "anonymous"}
    env.update(extra)
    return env


class Serve:
    """`python -m bridge serve ARGS` in a new session; `stop()` kills its process group."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "bridge", "serve", *args], env=env,
                                     cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self.port = wait_for(self._announced_port, 60, "serve to start")
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def _announced_port(self) -> int | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited {self.proc.returncode}: {self.output()}")
        match = re.search(r"serving on http://[\d.]+:(\d+)", self.output())
        return int(match.group(1)) if match else None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_kib(self) -> int:
        """The server's resident memory (VmRSS), in KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match, status
        return int(match.group(1))

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Kill the whole process group, whatever state it is in."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()


def http_exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send a raw request, read the answer until the server closes or sends it whole."""
    sock.sendall(request)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if sep and length and len(body) >= int(length.group(1)):
            break
    return data


def run_serve(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`serve ARGS` expected to stop on its own (an error), in its own process group."""
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@dataclass
class Stand:
    """The running sandbox, its registry and a bridge environment pointed at it."""

    sandbox: Any
    ref: RegistryRef
    env: dict[str, str]

    def mender_devices(self) -> list[dict[str, Any]]:
        """Every device of the Mender stand-in, read over its management API."""
        answer = requests.get(f"{self.sandbox.mender_url}/api/management/v2/devauth/devices",
                              params={"per_page": 500}, timeout=10,
                              headers={"Authorization": f"Bearer {self.sandbox.token.reveal()}"})
        answer.raise_for_status()
        return list(answer.json())

    def mender_faults(self, **faults: Any) -> None:
        requests.post(f"{self.sandbox.mender_url}/_sandbox/faults", json=faults,
                      timeout=10).raise_for_status()


@contextmanager
def sandbox_stand(data_dir: Path) -> Iterator[Stand]:
    """Both stand-ins over plain HTTP on loopback, stopped on exit."""
    from bridge.sandbox.launcher import Sandbox

    sandbox = Sandbox(data_dir, tls=False).start()
    try:
        config = tomllib.loads(Path(sandbox.config_path).read_text())
        ref = RegistryRef(config["iot_project"], config["iot_location"],
                          config["iot_registries"][0])
        env = offline_env(MENDER_URL=sandbox.mender_url, MENDER_TOKEN=sandbox.token.reveal(),
                          IOT_PROJECT=ref.project, IOT_LOCATION=ref.location,
                          IOT_REGISTRIES=ref.registry, IOT_ENDPOINT=sandbox.registry_url)
        yield Stand(sandbox, ref, env)
    finally:
        sandbox.stop()
