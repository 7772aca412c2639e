"""Upgrading a deployment of an earlier release of the module: the `moved` blocks carry every
secret (with its versions), grant and subscription to its new address, so `terraform apply`
deletes nothing. Both releases are applied offline on one state; the earlier one is read from
git history (skipped in a checkout without it, e.g. a shallow clone)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.terraform.conftest import BASE, MODULE, REPO, WEBHOOK
from tests.terraform.offline import render, run_grouped, terraform

# The module as the first review round left it: one token secret, a push subscription named
# events_push, uncounted topics and sink.
EARLIER = "05190537563ded27ef635c9bd23ad164911cb9fa"


def earlier_module(target: Path) -> Path:
    target.mkdir()
    tar = target / "earlier.tar"
    archive = run_grouped(["git", "archive", f"--output={tar}", EARLIER, "terraform"], REPO)
    if archive.returncode != 0:
        pytest.skip(f"release {EARLIER[:12]} is not in this checkout's git history")
    with tarfile.open(tar) as opened:
        opened.extractall(target, filter="data")
    return target / "terraform"


def changes(workdir: Path, binary: str) -> dict[str, list[str]]:
    """Address -> actions of the plan that upgrades the state in workdir."""
    plan = terraform(binary, workdir, "plan", "-input=false", "-no-color", "-out=upgrade.plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    shown = terraform(binary, workdir, "show", "-json", "upgrade.plan")
    found: dict[str, list[str]] = {}
    for change in json.loads(shown.stdout).get("resource_changes", []):
        found[change["address"]] = change["change"]["actions"]
    return found


@pytest.mark.parametrize("tfvars", [
    BASE, {**BASE, **WEBHOOK}, {**BASE, "event_delivery": "eventarc"},
], ids=["push", "push+webhook", "eventarc"])
def test_an_upgrade_deletes_and_recreates_nothing(tmp_path: Path, tfvars: dict[str, Any]) -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (the CI script warns about it)")
    earlier = earlier_module(tmp_path / "earlier")
    workdir = tmp_path / "deployment"
    workdir.mkdir()
    archive = workdir / "archive.zip"
    archive.write_bytes(b"stand-in for the function archive")
    (workdir / "terraform.tfvars.json").write_text(
        json.dumps({**tfvars, "source_archive": str(archive)}), encoding="utf-8")
    (workdir / "main.tf").write_text(render(earlier), encoding="utf-8")
    for step in (("init", "-input=false", "-no-color"),
                 ("apply", "-auto-approve", "-input=false", "-no-color")):
        result = terraform(binary, workdir, *step)
        assert result.returncode == 0, result.stdout + result.stderr
    before = json.loads(terraform(binary, workdir, "show", "-json").stdout)
    kept = len(before["values"]["root_module"]["resources"])
    (workdir / "main.tf").write_text(render(MODULE), encoding="utf-8")
    upgrade = changes(workdir, binary)
    deleted = sorted(a for a, actions in upgrade.items() if "delete" in actions)
    assert deleted == []
    assert len([a for a, actions in upgrade.items() if "create" not in actions]) == kept
