"""`listen --reconcile-every` on ClearBlade: the pull worker (over Google's Pub/Sub emulator)
reconciles the ClearBlade stand-in on its schedule too, admitting a device registered over
ClearBlade's REST API, and its /healthz shows the last successful run; SIGTERM stops both."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
import requests

from bridge.pubsub.emulator import find
from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox
from tests.clearblade.cb_support import ClearBladeRest
from tests.core.credentials import credential, mender_pem
from tests.function.e2e_support import env_from_config, wait_for
from tests.support.procs import Spawned
from tests.targets.mender_read import MenderRead

pytestmark = pytest.mark.e2e


def test_listen_reconciles_clearblade_on_a_schedule(tmp_path: Path) -> None:
    if find() is None:
        pytest.skip("Google's Pub/Sub emulator is not installed")
    with Sandbox(tmp_path / "sandbox", tls=True, pubsub="emulator",
                 pubsub_project="t" + uuid.uuid4().hex[:12]) as sandbox:
        account = requests.get(f"{sandbox.registry_url}/_sandbox/clearblade-service-account",
                               timeout=10).json()
        (tmp_path / "clearblade.json").write_text(json.dumps(account))
        env = env_from_config(Path(sandbox.config_path), REGISTRY_BACKEND="clearblade",
                              CLEARBLADE_CONFIGURATION=str(tmp_path / "clearblade.json"),
                              LOG_LEVEL="INFO")
        rest = ClearBladeRest(sandbox.registry_url, account, PROJECT, LOCATION, REGISTRY)
        assert rest.create("cb-listen", (credential("ec", 0),)).status_code == 200
        argv = [sys.executable, "-m", "bridge", "listen", "--healthz-port", "0",
                "--reconcile-every", "2s"]
        with Spawned(argv, env=env, log=tmp_path / "listen.log") as listen:
            port = listen.wait_for(r"/healthz on port (\d+), reconciling every 2s",
                                   timeout=120).group(1)
            wait_for(lambda: MenderRead(sandbox).admitted() == {
                "cb-listen": {mender_pem("ec", 0)}}, 60, "the device admitted")
            health = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/healthz",
                                                   timeout=10).json().get(
                "last_successful_reconcile"), 60, "a successful run on /healthz")
            assert health["outcome"] == "done"
            listen.proc.terminate()
            assert listen.wait(60) == 0
