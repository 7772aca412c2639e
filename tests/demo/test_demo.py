"""The demo, run as a user runs it: the real CLI in a subprocess, real HTTP everywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.demo import Narrator, World, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXPECTED = {  # device → (registry state, Mender status, telemetry, OTA auth)
    "demo-001": ("active", "accepted", "ok", "ok"),
    "demo-002": ("active", "accepted", "ok", "ok"),
    "demo-early-bird": ("active", "accepted", "ok", "ok"),
    "demo-rotator": ("active", "accepted", "ok", "ok"),
    "demo-blocked": ("blocked", "rejected", "refused", "refused"),
    "demo-deleted": ("deleted", "absent", "refused", "refused"),
    "legacy-001": ("active", "accepted", "ok", "ok"),
    "legacy-002": ("active", "accepted", "ok", "ok"),
}


def test_demo_command_succeeds_with_its_final_table(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "demo", "--devices", "2", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=240, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("DEVICE"))
    rows = {cols[0]: cols for cols in (line.split() for line in lines[header + 2:]) if cols}
    for device, (registry, mender, telemetry, ota) in EXPECTED.items():
        cols = rows[device]
        assert (cols[-6], cols[-5], cols[-3], cols[-2], cols[-1]) == (
            registry, mender, telemetry, ota, "ok"), cols
    assert len(rows[device][-4]) == 16  # a key fingerprint is shown
    assert "all checks passed" in result.stdout
    assert "✗" not in result.stdout


def test_demo_reports_failure_when_mender_does_not_follow_the_registry(tmp_path: Path) -> None:
    # A function deployed with on_blocked=ignore leaves the blocked device admitted in Mender:
    # the story must notice and fail, not print a success table regardless.
    world = World(tmp_path, function_env={"ON_BLOCKED": "ignore"}).start()
    narrator = Narrator(color=False)
    try:
        rows = run(tmp_path, 1, narrator, world)
    finally:
        world.stop()
    # The story's own sync (on_blocked=reject) repairs it later, and says that it had to.
    assert any("blocked device rejected" in f for f in narrator.failures), narrator.failures
    assert any("first sync changed exactly" in f for f in narrator.failures)
    assert {r.device for r in rows} >= {"demo-001", "demo-blocked", "legacy-001"}


def test_demo_keep_leaves_a_working_sandbox_and_its_instructions(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "bridge", "demo", "--devices", "1", "--keep", "--data",
         str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        assert "all checks passed" in text, text
        sync_line = next(line.strip() for line in lines
                         if line.strip().startswith("mender-bridge sync --config"))
        config = sync_line.split("--config ")[1].split()[0]
        assert Path(config).is_file()
        # The printed sync command works against the kept sandbox, and finds it in sync.
        resync = subprocess.run([sys.executable, "-m", "bridge", "sync", "--config", config,
                                 "--json"], capture_output=True, text=True, timeout=60,
                                env=env, check=False)
        assert resync.returncode == 0, resync.stderr
        assert '"done": 0' in resync.stdout and '"failed": 0' in resync.stdout
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, out
    assert "stopping" in out
