"""Helpers of the Pub/Sub tests: the emulator (skipped where missing, unless
REQUIRE_PUBSUB_EMULATOR=1), processes in their own process group, command lines, and reading
a subscription back."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from bridge.pubsub import clients
from bridge.pubsub.emulator import find
from bridge.pubsub.topology import DeliveryPolicy
from tests.function import e2e_support

ROOT = Path(__file__).resolve().parents[2]
# Fast enough for tests: five deliveries of a failing event take about two seconds.
POLICY = DeliveryPolicy(max_delivery_attempts=5, minimum_backoff_s=0.1, maximum_backoff_s=0.5,
                        ack_deadline_s=10)
T = TypeVar("T")


def require_emulator() -> None:
    if find() is not None:
        return
    message = "Google's Pub/Sub emulator is not installed (google-cloud-cli-pubsub-emulator)"
    if os.environ.get("REQUIRE_PUBSUB_EMULATOR") == "1":
        pytest.fail(message + " and REQUIRE_PUBSUB_EMULATOR=1")
    pytest.skip(message)


def fresh_project() -> str:
    """A project id no other test uses: the emulator keeps every project's state."""
    return "t" + uuid.uuid4().hex[:12]


def wait_for(check: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Poll `check` until it returns something truthy (a deadline, not a timing assertion)."""
    return e2e_support.wait_for(check, timeout, what)


def bridge_argv(*args: str) -> list[str]:
    return [sys.executable, "-W", "ignore::FutureWarning", "-m", "bridge", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


class Process:
    """A child in its own process group, its output in a file; `kill()` ends the group."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
                 ) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(list(argv), cwd=ROOT, env=env or child_env(),
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_output(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.output()[-2000:]}")
            return re.search(pattern, self.output())
        return wait_for(found, f"{pattern!r} in the output", timeout)

    def signal(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig` to the process itself and wait for its exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def run(*args: str, timeout: float = 60.0, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """A short-lived `mender-bridge` command, in its own process group."""
    proc = subprocess.Popen(bridge_argv(*args), cwd=ROOT, env=env or child_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def drain(emulator_host: str, subscription: str, wait_s: float = 3.0) -> list[Any]:
    """Everything `subscription` delivers within `wait_s` (acknowledged, so it is gone)."""
    subscriber = clients.subscriber(emulator_host)
    found: list[Any] = []
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            response = subscriber.pull(request={"subscription": subscription,
                                                "max_messages": 1000}, timeout=wait_s)
            if response.received_messages:
                found += [r.message for r in response.received_messages]
                subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [
                    r.ack_id for r in response.received_messages]})
    finally:
        subscriber.close()
    return found


def answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    return True
