"""Interrupted work, on a real terminal (a pseudo-terminal that is the command's controlling
terminal; Ctrl-C is written to it): `sync` stopped mid-run exits 130 with a valid partial
report, and nothing it did is lost (read back from the Mender stand-in); `demo` stopped by
Ctrl-C, SIGTERM or a closed terminal leaves no process and no listening port behind."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.sandbox.launcher import Sandbox
from tests.support.procs import Spawned

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PATH = "/v1/projects/sandbox-project/locations/us-central1/registries/sandbox-registry/devices"
FLEET = 300
LATENCY_MS = 200  # per Mender request: the sync is mid-run for seconds


def bridge_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MENDER_", "IOT_", "PUBSUB_"))}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}


def bridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "bridge", *args]


def ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def slow_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A registry of FLEET devices, none in Mender yet; Mender answers after LATENCY_MS."""
    with Sandbox(tmp_path / "sandbox", tls=True, pubsub="direct") as box, \
            requests.Session() as http:
        for n in range(FLEET):
            body = {"id": f"dev-{n:04d}",
                    "credentials": [{"publicKey": {"format": "ES256_PEM", "key": ec_pem()}}]}
            http.post(box.registry_url + PATH, json=body, timeout=10).raise_for_status()
        http.post(f"{box.mender_url}/_sandbox/faults", json={"latency_ms": LATENCY_MS},
                  verify=str(box.ca_cert), timeout=10).raise_for_status()
        yield box


def preauthorized_in_mender(box: Sandbox) -> set[str]:
    """The registry devices Mender has an auth set for, read from its management API."""
    headers = {"Authorization": f"Bearer {box.token.reveal()}"}
    found: set[str] = set()
    page = 1
    while True:
        answer = requests.get(f"{box.mender_url}/api/management/v2/devauth/devices",
                              params={"page": page, "per_page": 500}, headers=headers,
                              verify=str(box.ca_cert), timeout=30)
        answer.raise_for_status()
        devices = answer.json()
        found |= {f"sandbox-registry/{d['identity_data']['google_iot_id']}" for d in devices
                  if any(s["status"] == "preauthorized" for s in d["auth_sets"])}
        if len(devices) < 500:
            return found
        page += 1


def read_json(text: str) -> dict[str, Any]:
    report = json.loads(text)
    assert isinstance(report, dict)
    return report


def read_ndjson(text: str) -> dict[str, Any]:
    """The ndjson records folded into the --json shape (actions, then the summary record)."""
    records = [json.loads(line) for line in text.splitlines()]
    assert records and records[-1]["record"] == "summary", text[-500:]
    summary = dict(records[-1])
    summary["actions"] = [r for r in records if r["record"] == "action"]
    return summary


def interrupt_sync(box: Sandbox, tmp_path: Path, flag: str, when: str
                   ) -> tuple[int, Spawned]:
    """Run `sync FLAG` on a terminal, press Ctrl-C once `when` is on it; (exit code, run)."""
    argv = bridge("sync", "--config", str(box.config_path), flag)
    with Spawned(argv, env=bridge_env(), log=tmp_path / "stdout", terminal=True) as sync:
        sync.wait_for(when, on_terminal=True)
        sync.press_ctrl_c()
        return sync.wait(120), sync


def assert_partial_and_nothing_lost(box: Sandbox, report: dict[str, Any]) -> None:
    assert report["schema_version"] == 1 and report["interrupted"] == "interrupted"
    done = {a["device"] for a in report["actions"] if a["status"] == "done"}
    not_run = {a["device"] for a in report["actions"]
               if a["status"] == "skipped" and a["detail"].startswith("not run")}
    assert done and not_run and not done & not_run
    assert report["devices"]["done"] == len(done)
    # Nothing lost: what the report says is done is in Mender, and nothing else is.
    requests.post(f"{box.mender_url}/_sandbox/faults", json={"latency_ms": 0},
                  verify=str(box.ca_cert), timeout=10).raise_for_status()
    assert preauthorized_in_mender(box) == done


@pytest.mark.parametrize(("flag", "read"), [("--json", read_json), ("--ndjson", read_ndjson)])
def test_ctrl_c_during_sync_exits_130_with_a_partial_report_and_loses_nothing(
        slow_sandbox: Sandbox, tmp_path: Path, flag: str,
        read: Callable[[str], dict[str, Any]]) -> None:
    # Well into the run: a few dozen devices done, most not yet.
    code, sync = interrupt_sync(slow_sandbox, tmp_path, flag, r"synced [2-9]\d ")
    assert code == 130, sync.terminal()[-2000:]
    assert re.search(r"synced \d+ .*\d+/s", sync.terminal())  # the progress line, with a rate
    report = read(sync.stdout())
    assert_partial_and_nothing_lost(slow_sandbox, report)
    assert report["devices"]["done"] < FLEET / 2


def test_ctrl_c_while_the_last_devices_are_applied(slow_sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    # The total is on the progress line once the registry is listed.
    code, sync = interrupt_sync(slow_sandbox, tmp_path, "--json", r"synced \d+ of ~")
    assert code == 130, sync.terminal()[-2000:]
    assert_partial_and_nothing_lost(slow_sandbox, read_json(sync.stdout()))


def test_the_progress_line_shows_total_and_eta_early_in_the_run(slow_sandbox: Sandbox,
                                                                tmp_path: Path) -> None:
    code, sync = interrupt_sync(slow_sandbox, tmp_path, "--json", r"synced [4-9]\d ")
    assert code == 130
    early = re.search(rf"synced \d\d? of ~{FLEET} devices, ETA \d+:\d\d, \d+/s",
                      sync.terminal())
    assert early, sync.terminal()[-2000:]


def demo(tmp_path: Path, *args: str) -> Spawned:
    argv = bridge("demo", "--devices", "1", "--data", str(tmp_path / "data"), *args)
    return Spawned(argv, env=bridge_env(), log=tmp_path / "stdout", terminal=True)


def assert_nothing_left(run: Spawned) -> None:
    assert run.leftovers() == []
    assert run.still_listening() == set()


def test_ctrl_c_during_demo_keep_stops_every_process_it_started(tmp_path: Path) -> None:
    with demo(tmp_path, "--keep") as run:
        run.wait_for(r"Press Ctrl-C to stop")
        run.sample()
        # The function, and the emulator where installed, run in process groups of their own.
        assert len(run.groups) >= 2 and len(run.ports) >= 3, (run.groups, run.ports)
        run.press_ctrl_c()
        code = run.wait(60)
        assert_nothing_left(run)
    assert code == 0, run.stdout()[-2000:]
    assert "stopping" in run.stdout()


STOPS: dict[str, Callable[[Spawned], None]] = {
    "ctrl-c": Spawned.press_ctrl_c,
    "sigterm": lambda run: run.proc.send_signal(signal.SIGTERM),
    "terminal closed": Spawned.hang_up,
}


@pytest.mark.parametrize("stop", STOPS)
def test_a_demo_stopped_mid_story_exits_130_and_leaves_nothing(tmp_path: Path,
                                                                 stop: str) -> None:
    with demo(tmp_path) as run:
        run.wait_for(r"1\. Registering")
        run.sample()
        STOPS[stop](run)
        code = run.wait(60)
        assert_nothing_left(run)
    assert code == 130, run.stdout()[-2000:] + run.terminal()[-2000:]
