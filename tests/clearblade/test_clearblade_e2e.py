"""ClearBlade end to end, with no audit event at all: `serve --reconcile-every 2s` against the
ClearBlade stand-in admits the devices registered through ClearBlade's REST API and, with
RECONCILE_PRUNE=on (this Mender serves these registries only), decommissions the deleted ones;
/healthz shows the last successful run and what a run cost. Read back over both stand-ins'
own APIs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox
from tests.clearblade.cb_support import ClearBladeRest
from tests.core.credentials import credential, mender_pem
from tests.function.e2e_support import env_from_config, wait_for
from tests.support.procs import Spawned
from tests.targets.mender_read import MenderRead

pytestmark = pytest.mark.e2e
SECRET = "clearblade-serve-secret-1234"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, ClearBladeRest, dict[str, str]]]:
    with Sandbox(tmp_path / "sandbox", tls=True) as sandbox:
        # Were the ClearBlade routes to emit audit events, they would queue for this endpoint.
        requests.post(f"{sandbox.registry_url}/_sandbox/audit-endpoints", timeout=10,
                      json={"endpoints": ["http://127.0.0.1:9/nobody"]}).raise_for_status()
        account = requests.get(f"{sandbox.registry_url}/_sandbox/clearblade-service-account",
                               timeout=10).json()
        account_file = tmp_path / "clearblade.json"
        account_file.write_text(json.dumps(account))
        env = env_from_config(Path(sandbox.config_path), REGISTRY_BACKEND="clearblade",
                              CLEARBLADE_CONFIGURATION=str(account_file),
                              RECONCILE_PRUNE="on", WEBHOOK_SECRET=SECRET, LOG_LEVEL="INFO")
        del env["IOT_ENDPOINT"]
        rest = ClearBladeRest(sandbox.registry_url, account, PROJECT, LOCATION, REGISTRY)
        yield sandbox, rest, env


def health(url: str) -> dict[str, Any]:
    answer = requests.get(url + "/healthz", timeout=10)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_serve_reconciles_clearblade_on_a_schedule(
        world: tuple[Sandbox, ClearBladeRest, dict[str, str]], tmp_path: Path) -> None:
    sandbox, rest, env = world
    mender = MenderRead(sandbox)
    for seed, device_id in enumerate(["cb-1", "cb-2", "cb-3"]):
        assert rest.create(device_id, (credential("ec", seed),)).status_code == 200
    argv = [sys.executable, "-m", "bridge", "serve", "--port", "0", "--reconcile-every", "2s"]
    with Spawned(argv, env=env, log=tmp_path / "serve.log") as serve:
        port = serve.wait_for(r"serving on http://[\d.]+:(\d+), reconciling every 2s",
                              timeout=60).group(1)
        url = f"http://127.0.0.1:{port}"
        wanted = {f"cb-{i + 1}": {mender_pem("ec", i)} for i in range(3)}
        wait_for(lambda: mender.admitted() == wanted, 60, "the three devices admitted")
        assert rest.create("cb-4", (credential("ec", 3),)).status_code == 200
        assert rest.delete("cb-2").status_code == 200
        wanted = {"cb-1": wanted["cb-1"], "cb-3": wanted["cb-3"], "cb-4": {mender_pem("ec", 3)}}
        wait_for(lambda: mender.admitted() == wanted, 60, "cb-4 admitted and cb-2 decommissioned")
        # Once in sync, a run is list calls only: one page of Mender devices, nothing written.
        quiet = wait_for(lambda: (h := health(url)["last_successful_reconcile"]) and
                         h["writes"] == 0 and h, 60, "a run with nothing to change")
        assert quiet["mender_requests"] == 1 and quiet["outcome"] == "done"
        assert quiet["devices"]["unchanged"] == 3
        serve.proc.terminate()
        assert serve.wait(60) == 0
    audit = requests.get(f"{sandbox.registry_url}/_sandbox/audit-status", timeout=10).json()
    assert (audit["pending"], audit["delivered"], audit["dead"]) == (0, 0, 0)
    log = (tmp_path / "serve.log").read_text()
    assert '"message": "reconcile finished"' in log and '"kind": "create"' not in log
