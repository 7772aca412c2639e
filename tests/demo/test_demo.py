"""The demo, run as a user runs it: the real CLI in a subprocess (its own session, every process
group it made killed on the way out), real HTTP everywhere, its outcome read through --json."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.demo import Narrator, World, run
from bridge.pubsub.emulator import find
from tests.support import procs
from tests.support.procs import Spawned

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {  # device → (registry state, Mender status, telemetry, OTA auth)
    "demo-001": ("active", "accepted", "ok", "ok"),
    "demo-early-bird": ("active", "accepted", "ok", "ok"),
    "demo-rotator": ("active", "accepted", "ok", "ok"),
    "demo-blocked": ("blocked", "rejected", "refused", "refused"),
    "demo-deleted": ("deleted", "absent", "refused", "refused"),
    "legacy-001": ("active", "accepted", "ok", "ok"),
    "legacy-002": ("active", "accepted", "ok", "ok"),
}


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MENDER_", "IOT_", "PUBSUB_"))}
    return {**clean, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore", **extra}


def demo(tmp_path: Path, name: str, *args: str, **env_extra: str) -> Spawned:
    return Spawned([sys.executable, "-m", "bridge", "demo", *args], env=env(**env_extra),
                   log=tmp_path / f"{name}.out", stderr_log=tmp_path / f"{name}.err",
                   cwd=tmp_path)


def finished(run: Spawned) -> tuple[int, dict[str, Any]]:
    """Exit code and the --json outcome of a demo run, once nothing of it is left."""
    code = run.wait(600)
    assert run.leftovers() == [] and run.still_listening() == set()
    assert code in (0, 1), run.stderr()[-3000:]
    outcome = json.loads(run.stdout())
    assert isinstance(outcome, dict)
    return code, outcome


def assert_story_held(outcome: dict[str, Any], events: str) -> None:
    assert outcome["schema_version"] == 1
    failed = [c["text"] for c in outcome["checks"] if not c["ok"]]
    assert outcome["ok"] and not failed and len(outcome["checks"]) >= 10, failed
    seen = {d["device"]: d for d in outcome["devices"]}
    for device, (registry, mender, telemetry, ota) in EXPECTED.items():
        row = seen[device]
        assert (row["registry"], row["mender"], row["telemetry"], row["ota_auth"],
                row["ok"]) == (registry, mender, telemetry, ota, True), row
        assert re.fullmatch(r"[0-9a-f]{16}", row["key"])
    assert outcome["events"]["path"] == events


def test_keep_then_sigterm_leaves_nothing_and_a_rerun_on_the_folder_resets_it(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    with demo(tmp_path, "kept", "--devices", "1", "--keep", "--data", str(data)) as kept:
        kept.wait_for(r"Press Ctrl-C to stop")
        kept.sample()
        config = kept.wait_for(r"mender-bridge sync --config (\S+)").group(1)
        # The printed sync command works against the kept sandbox, and finds it in sync.
        resync = procs.run([sys.executable, "-m", "bridge", "sync", "--config", config,
                            "--json"], env=env(), timeout=120)
        assert resync.returncode == 0, resync.stderr
        devices = json.loads(resync.stdout)["devices"]
        assert devices["done"] == devices["failed"] == 0 and devices["unchanged"] >= 5
        kept.proc.send_signal(signal.SIGTERM)
        assert kept.wait(60) == 0, kept.stderr()[-2000:]
        assert kept.leftovers() == [] and kept.still_listening() == set()
    assert "stopping" in kept.stdout()

    with demo(tmp_path, "again", "--devices", "1", "--data", str(data), "--json") as again:
        code, outcome = finished(again)
    assert code == 0, again.stderr()[-3000:]
    assert again.stderr().splitlines()[0].startswith(f"Data folder {data}: reset")
    assert outcome["data"] == {"path": str(data), "prepared": "reset"}
    # Over the emulator where it is installed, as production delivers events.
    assert_story_held(outcome, "emulator" if find() else "direct")


def test_demo_from_an_installed_package_without_the_source_tree(tmp_path: Path) -> None:
    # What `pip install .` installs: the `bridge` package alone (no functions/ beside it).
    site = tmp_path / "site"
    shutil.copytree(ROOT / "bridge", site / "bridge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with demo(tmp_path, "installed", "--devices", "1", "--json", "--pubsub", "direct",
              PYTHONPATH=str(site)) as installed:
        code, outcome = finished(installed)
    assert code == 0, installed.stderr()[-3000:]
    assert outcome["function"]["source"].startswith("bridge/demo/function.py")
    assert outcome["data"]["prepared"] == "temporary"
    assert_story_held(outcome, "direct")


def test_a_folder_the_demo_did_not_make_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    refused = procs.run([sys.executable, "-m", "bridge", "demo", "--data", str(tmp_path)],
                        env=env(), timeout=60)
    assert refused.returncode == 2
    lines = refused.stderr.splitlines()
    assert "no earlier demo left it" in lines[0] and "--data" in lines[0], refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_demo_reports_failure_when_mender_does_not_follow_the_registry(tmp_path: Path) -> None:
    # A function deployed with on_blocked=ignore leaves the blocked device admitted in Mender:
    # the story must notice and fail, not print a success table regardless.
    world = World(tmp_path, function_env={"ON_BLOCKED": "ignore"}, pubsub="direct").start()
    narrator = Narrator(color=False)
    try:
        rows = run(tmp_path, 1, narrator, world)
    finally:
        world.stop()
    # The story's own sync (on_blocked=reject) repairs it later, and says that it had to.
    assert any("blocked device rejected" in f for f in narrator.failures), narrator.failures
    assert any("first sync changed exactly" in f for f in narrator.failures)
    assert {r.device for r in rows} >= {"demo-001", "demo-blocked", "legacy-001"}
