"""`mender-bridge serve` over real HTTP: the provisioning webhook, and Pub/Sub push delivery
from the registry stand-in to /pubsub, against the sandbox."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.model import RegistryRef
from tests.function.e2e_support import (
    MenderView,
    Server,
    create_device,
    der,
    iot_client,
    wait_for,
)
from tests.function.helpers import SECRET, public_pem

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class Served:
    sandbox: Any
    server: Server
    ref: RegistryRef


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from bridge.sandbox.launcher import Sandbox

    work = tmp_path_factory.mktemp("serve")
    sandbox = Sandbox(work / "sandbox", tls=False).start()
    env = {"PATH": "/usr/bin:/bin", "WEBHOOK_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    server = None
    try:
        server = Server([sys.executable, "-m", "bridge", "serve", "--config",
                         str(sandbox.config_path), "--port", "0"], env, work / "serve.log")
        settings = tomllib.loads(Path(sandbox.config_path).read_text())
        ref = RegistryRef(settings["iot_project"], settings["iot_location"],
                          settings["iot_registries"][0])
        yield Served(sandbox, server, ref)
    finally:
        if server is not None:
            server.stop()
        sandbox.stop()


def test_the_webhook_preauthorizes_a_registered_device(served: Served) -> None:
    sandbox, server, ref, pem = served.sandbox, served.server, served.ref, public_pem()
    create_device(iot_client(sandbox.registry_url), ref, "hooked-1", pem)
    url = f"{server.url}/provision"
    body = {"registry": ref.registry, "device_id": "hooked-1"}
    assert requests.post(url, json=body, timeout=30).status_code == 401
    answer = requests.post(url, json=body, timeout=30,
                           headers={"Authorization": f"Bearer {SECRET}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"]["done"] == 1
    mender = MenderView(sandbox.mender_url, sandbox.token.reveal())
    assert mender.keys("hooked-1") == {der(pem): "preauthorized"}
    bad = requests.post(url, json={"registry": ref.registry}, timeout=30,
                        headers={"Authorization": f"Bearer {SECRET}"})
    assert bad.status_code == 400


def test_audit_events_pushed_to_pubsub_route_are_applied(served: Served) -> None:
    sandbox, server, ref, pem = served.sandbox, served.server, served.ref, public_pem()
    requests.post(f"{sandbox.registry_url}/_sandbox/audit-endpoints", timeout=10,
                  json={"endpoints": [f"{server.url}/pubsub?token={SECRET}"]}).raise_for_status()
    try:
        create_device(iot_client(sandbox.registry_url), ref, "pushed-1", pem)
        mender = MenderView(sandbox.mender_url, sandbox.token.reveal())
        wait_for(lambda: mender.keys("pushed-1") == {der(pem): "preauthorized"},
                 what="the pushed event applied")
    finally:
        requests.post(f"{sandbox.registry_url}/_sandbox/audit-endpoints", timeout=10,
                      json={"endpoints": []})
    output = server.output()
    assert SECRET not in output and sandbox.token.reveal() not in output
    assert "POST /pubsub 200" in output


def test_serve_refuses_to_start_without_a_webhook_secret(served: Served) -> None:
    sandbox = served.sandbox
    done = subprocess.run([sys.executable, "-m", "bridge", "serve", "--config",
                           str(sandbox.config_path), "--port", "0"],
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "WEBHOOK_SECRET" in done.stderr
