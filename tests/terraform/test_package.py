"""The function source archive (functions/package.py): reproducible to the byte, holding what
the Cloud Functions runtime needs and nothing else, and working when installed from scratch."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.terraform.conftest import REPO

SCRIPT = REPO / "functions" / "package.py"
ARCHIVE = "mender-bridge-function.zip"


def package(out: Path, root: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--root", str(root)],
        capture_output=True, text=True, timeout=60, check=False)


def build(out: Path, root: Path = REPO) -> Path:
    result = package(out, root)
    assert result.returncode == 0, result.stderr
    target = out / ARCHIVE
    assert str(target) in result.stdout
    return target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_sources(root: Path) -> Path:
    (root / "functions").mkdir(parents=True)
    for name in ("main.py", "requirements.txt"):
        shutil.copy2(REPO / "functions" / name, root / "functions" / name)
    shutil.copytree(REPO / "bridge", root / "bridge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_two_builds_give_the_same_bytes(tmp_path: Path) -> None:
    first = build(tmp_path / "a")
    second = build(tmp_path / "b")
    assert digest(first) == digest(second)
    assert f"sha256={digest(first)}" in package(tmp_path / "c").stdout


def test_mtimes_permissions_and_caches_do_not_change_the_bytes(tmp_path: Path) -> None:
    reference = digest(build(tmp_path / "ref"))
    root = copy_sources(tmp_path / "tree")
    for number, path in enumerate(sorted(root.rglob("*.py"))):
        os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number * 7))
        path.chmod(0o600 if number % 2 else 0o755)
    cache = root / "bridge" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "model.cpython-311.pyc").write_bytes(b"\x00stale")
    (root / "bridge" / "notes.txt").write_text("not source", encoding="utf-8")
    assert digest(build(tmp_path / "out", root)) == reference


def test_a_changed_source_changes_the_bytes(tmp_path: Path) -> None:
    reference = digest(build(tmp_path / "ref"))
    root = copy_sources(tmp_path / "tree")
    with (root / "bridge" / "model.py").open("a", encoding="utf-8") as handle:
        handle.write("\n")
    assert digest(build(tmp_path / "out", root)) != reference


def test_the_archive_holds_main_requirements_and_the_bridge_only(tmp_path: Path) -> None:
    with zipfile.ZipFile(build(tmp_path)) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert {"main.py", "requirements.txt", "bridge/__init__.py", "bridge/runtime.py",
                "bridge/py.typed"} <= set(names)
        assert archive.read("main.py") == (REPO / "functions" / "main.py").read_bytes()
        assert archive.read("requirements.txt") == \
            (REPO / "functions" / "requirements.txt").read_bytes()
        expected_bridge = {p.relative_to(REPO).as_posix() for p in (REPO / "bridge").rglob("*.py")
                           if "__pycache__" not in p.parts and "sandbox" not in p.parts}
        assert {n for n in names if n.endswith(".py") and n != "main.py"} == expected_bridge
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")
                    or n.startswith("bridge/sandbox/") or n.startswith("functions/")]
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_STORED
        assert archive.testzip() is None


@pytest.mark.parametrize(("requirements", "problem"), [
    ("functions-framework>=3\n", "is not pinned"),
    ("requests\n", "is not pinned"),
    ("-e .\n", "is not pinned"),
    ("mender-bridge==0.1.0\n", "the bridge is vendored"),
    ("https://example.com/x.whl\n", "is not pinned"),
])
def test_an_unpinned_requirement_stops_the_build(tmp_path: Path, requirements: str,
                                                 problem: str) -> None:
    root = copy_sources(tmp_path / "tree")
    (root / "functions" / "requirements.txt").write_text(
        "# comment\nrequests==2.34.2\n" + requirements, encoding="utf-8")
    result = package(tmp_path / "out", root)
    assert result.returncode == 2
    assert problem in result.stderr and "line 3" in result.stderr
    assert not (tmp_path / "out" / ARCHIVE).exists()


def test_a_missing_entry_module_stops_the_build(tmp_path: Path) -> None:
    root = copy_sources(tmp_path / "tree")
    (root / "functions" / "main.py").unlink()
    result = package(tmp_path / "out", root)
    assert result.returncode == 2
    assert "missing functions/main.py" in result.stderr


PROBE = """
import json
import functions_framework

ce = functions_framework.create_app(target="on_device_event", source="main.py",
                                    signature_type="cloudevent").test_client()
headers = {"ce-id": "m-1", "ce-specversion": "1.0", "ce-source":
           "//pubsub.googleapis.com/projects/p/topics/t",
           "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
           "Content-Type": "application/json"}
malformed = {"message": {"data": "bm90IGpzb24=", "messageId": "m-1"}}
push = functions_framework.create_app(target="on_push", source="main.py",
                                      signature_type="http").test_client()
envelope = {**malformed, "subscription": "projects/p/subscriptions/s"}
import main
print(json.dumps({
    "cloudevent": ce.post("/", headers=headers, data=json.dumps(malformed)).status_code,
    "push": push.post("/", json=envelope).status_code,
    "entry_points": sorted(n for n in ("on_device_event", "on_device_event_legacy", "on_push",
                                       "provision", "reconcile") if callable(getattr(main, n))),
    "bridge_from": __import__("bridge").__file__,
}))
"""


@pytest.mark.slow
def test_the_archive_installs_in_a_fresh_venv_and_acknowledges_a_malformed_event(
        tmp_path: Path) -> None:
    source = tmp_path / "source"
    with zipfile.ZipFile(build(tmp_path / "dist")) as archive:
        archive.extractall(source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # What the Cloud Functions build does: install requirements.txt, nothing else (the bridge
    # is imported from the archive). Wheels only, so no compiler is needed; pip's cache keeps
    # this fast after the first run.
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "-r", str(source / "requirements.txt")],
        capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    env = {"PATH": "/usr/bin:/bin", "MENDER_URL": "https://mender.invalid",
           "MENDER_TOKEN": "not-a-real-token", "IOT_PROJECT": "p", "LOG_LEVEL": "INFO"}
    run = subprocess.run([str(python), "-c", PROBE], cwd=source, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["cloudevent"] == 200  # acknowledged: a retry could not make it readable
    assert result["push"] in (200, 204)
    assert result["entry_points"] == ["on_device_event", "on_device_event_legacy", "on_push",
                                      "provision", "reconcile"]
    assert Path(result["bridge_from"]).resolve() == (source / "bridge" / "__init__.py").resolve()
    assert "event ignored" in run.stdout + run.stderr
