"""The function source archive (functions/package.py): reproducible to the byte, holding what
the Cloud Functions runtime needs and nothing else, and working when installed from scratch."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox
from tests.support import procs
from tests.support.procs import Spawned
from tests.terraform.conftest import REPO

SCRIPT = REPO / "functions" / "package.py"
ARCHIVE = "mender-bridge-function.zip"


def package(out: Path, root: Path = REPO) -> subprocess.CompletedProcess[str]:
    return procs.run([sys.executable, str(SCRIPT), "--out", str(out), "--root", str(root)],
                     env=dict(os.environ), timeout=60)


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


def test_the_archive_holds_main_requirements_and_what_main_imports(tmp_path: Path) -> None:
    with zipfile.ZipFile(build(tmp_path)) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert archive.read("main.py") == (REPO / "functions" / "main.py").read_bytes()
        assert archive.read("requirements.txt") == \
            (REPO / "functions" / "requirements.txt").read_bytes()
        # What the entry points reach, lazy imports included: the event path, the reconcile
        # (factory, sync, both registry adapters) and the Mender client.
        assert {"bridge/__init__.py", "bridge/runtime.py", "bridge/webhook.py",
                "bridge/events/__init__.py", "bridge/factory.py", "bridge/sync.py",
                "bridge/reconcile.py", "bridge/registry/google.py",
                "bridge/registry/clearblade.py", "bridge/mender/client.py"} <= set(names)
        # Nothing the function never runs: CLI, demo, stand-ins, the device kit.
        assert not [n for n in names if n.startswith(("bridge/cli/", "bridge/demo/",
                                                      "bridge/sandbox/", "functions/"))]
        assert not {"bridge/__main__.py", "bridge/devicekeys.py", "bridge/device.py"} & set(names)
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
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
import importlib
import pathlib
shipped = sorted(".".join(p.with_suffix("").parts).removesuffix(".__init__")
                 for p in pathlib.Path("bridge").rglob("*.py"))
for name in shipped:
    importlib.import_module(name)  # every shipped module works with requirements.txt alone
print(json.dumps({
    "imported": shipped,
    "cloudevent": ce.post("/", headers=headers, data=json.dumps(malformed)).status_code,
    "push": push.post("/", json=envelope).status_code,
    "entry_points": sorted(n for n in ("on_device_event", "on_device_event_legacy", "on_push",
                                       "provision", "reconcile") if callable(getattr(main, n))),
    "bridge_from": __import__("bridge").__file__,
}))
"""

# Serves the archive's `on_push` the way Cloud Run would, on an ephemeral loopback port.
SERVE = """
import sys
import functions_framework
from werkzeug.serving import make_server

app = functions_framework.create_app(target="on_push", source="main.py", signature_type="http")
server = make_server("127.0.0.1", 0, app, threaded=True)
print(f"serving on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class Installed:
    source: Path  # the archive, extracted
    python: Path  # a fresh venv holding only the archive's requirements.txt


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("archive")
    source = base / "source"
    with zipfile.ZipFile(build(base / "dist")) as archive:
        archive.extractall(source)
    venv = base / "venv"
    made = procs.run([sys.executable, "-m", "venv", str(venv)], env=dict(os.environ),
                     timeout=120)
    assert made.returncode == 0, made.stderr[-2000:]
    python = venv / "bin" / "python"
    # What the Cloud Functions build does: install requirements.txt, nothing else (the bridge
    # is imported from the archive). Wheels only, so no compiler is needed; pip's cache keeps
    # this fast after the first run.
    install = procs.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "-r", str(source / "requirements.txt")],
        env=dict(os.environ), timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    return Installed(source, python)


@pytest.mark.slow
def test_the_archive_installs_in_a_fresh_venv_and_acknowledges_a_malformed_event(
        installed: Installed) -> None:
    env = {"PATH": "/usr/bin:/bin", "MENDER_URL": "https://mender.invalid",
           "MENDER_TOKEN": "not-a-real-token", "IOT_PROJECT": "p", "LOG_LEVEL": "INFO"}
    run = procs.run([str(installed.python), "-c", PROBE], cwd=installed.source, env=env,
                    timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["cloudevent"] == 200  # acknowledged: a retry could not make it readable
    assert result["push"] in (200, 204)
    assert result["entry_points"] == ["on_device_event", "on_device_event_legacy", "on_push",
                                      "provision", "reconcile"]
    assert {"bridge.runtime", "bridge.factory", "bridge.registry.google"} <= set(result["imported"])
    assert Path(result["bridge_from"]).resolve() == \
        (installed.source / "bridge" / "__init__.py").resolve()
    assert "event ignored" in run.stdout + run.stderr


def _mender_devices(sandbox: Sandbox) -> list[dict[str, Any]]:
    answer = requests.get(f"{sandbox.mender_url}/api/management/v2/devauth/devices",
                          params={"per_page": 500}, timeout=10, verify=str(sandbox.ca_cert),
                          headers={"Authorization": f"Bearer {sandbox.token.reveal()}"})
    answer.raise_for_status()
    devices: list[dict[str, Any]] = answer.json()
    return devices


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


@pytest.mark.slow
@pytest.mark.e2e
def test_the_installed_archive_admits_a_created_device_through_the_push_path(
        installed: Installed, tmp_path: Path) -> None:
    """The deployed chain in miniature: the registry stand-in POSTs the audit entry as a
    Pub/Sub push envelope to `on_push` from the archive (fresh venv, pinned requirements);
    the function reads the device over the real google-cloud-iot REST client and
    preauthorizes it in the Mender stand-in over TLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with Sandbox(tmp_path / "sandbox") as sandbox:
        env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1",
               "MENDER_URL": sandbox.mender_url, "MENDER_TOKEN": sandbox.token.reveal(),
               "MENDER_CA_BUNDLE": str(sandbox.ca_cert), "IOT_PROJECT": PROJECT,
               "IOT_LOCATION": LOCATION, "IOT_REGISTRIES": REGISTRY,
               "IOT_ENDPOINT": sandbox.registry_url, "IOT_CREDENTIALS": "anonymous"}
        log_path = tmp_path / "function.log"
        with Spawned([str(installed.python), "-c", SERVE], cwd=installed.source, env=env,
                     log=log_path) as function:
            url = function.wait_for(r"serving on (http://\S+)", timeout=60)
            requests.post(f"{sandbox.registry_url}/_sandbox/audit-endpoints", timeout=10,
                          json={"endpoints": [url.group(1)]}).raise_for_status()
            parent = f"projects/{PROJECT}/locations/{LOCATION}/registries/{REGISTRY}"
            requests.post(f"{sandbox.registry_url}/v1/{parent}/devices", timeout=10, json={
                "id": "archive-dev-1",
                "credentials": [{"publicKey": {"format": "ES256_PEM", "key": pem}}],
            }).raise_for_status()
            device = _wait_for(lambda: [d for d in _mender_devices(sandbox) if d[
                "identity_data"] == {"google_iot_id": "archive-dev-1"}], "the Mender device")
    assert len(device) == 1
    assert device[0]["status"] == "preauthorized"
    output = log_path.read_text()
    assert "archive-dev-1" in output
    assert sandbox.token.reveal() not in output
