"""A backfill against the Mender stand-in limiting requests as Mender does (a token bucket per
JWT subject), over real HTTP: every device admitted, none failed, few 429s — the client paces
itself to the rate it learns; two runs at once on one client share that pace.

The limiter's own answers (429 at the quota boundary, `Retry-After` in whole seconds, the JSON
body) are tested in tests/sandbox_mender/test_sbm_ratelimit.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from bridge.config import Settings
from bridge.factory import build_service
from bridge.report import Report
from bridge.sandbox.launcher import Sandbox
from tests.core.credentials import credential

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REGISTRIES = "/v1/projects/sandbox-project/locations/us-central1/registries"
QUOTA = 30  # requests per second, and the burst
DEVICES = 300  # 10 s at the limit
# Paced: the requests in flight when the first 429s come (8 workers, twice), and little more.
# A client that only waits out each Retry-After, without learning the rate, sees about 50.
FEW = 25


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "limited", tls=False) as sandbox:
        yield sandbox


def create(sandbox: Sandbox, registry: str, prefix: str, count: int) -> set[str]:
    session = requests.Session()
    session.post(f"{sandbox.registry_url}{REGISTRIES}", json={"id": registry}, timeout=10)
    ids = {f"{prefix}-{i:04d}" for i in range(count)}
    for i, device_id in enumerate(sorted(ids)):
        cred = credential("ec", i % 8)
        session.post(f"{sandbox.registry_url}{REGISTRIES}/{registry}/devices", timeout=10,
                     json={"id": device_id, "credentials": [
                         {"publicKey": {"format": str(cred.format), "key": cred.key}}]},
                     ).raise_for_status()
    return ids


def limit(sandbox: Sandbox, quota: int) -> None:
    requests.post(f"{sandbox.mender_url}/_sandbox/faults", timeout=10, json={
        "rate_limit_quota": quota, "rate_limit_interval_s": 1.0,
        "rate_limit_algorithm": "token_bucket"}).raise_for_status()


def admitted(sandbox: Sandbox) -> dict[str, str]:
    """identity → status of every Mender device, read back with the limit lifted."""
    limit(sandbox, 0)
    found: dict[str, str] = {}
    page = 1
    while True:
        answer = requests.get(f"{sandbox.mender_url}/api/management/v2/devauth/devices",
                              params={"per_page": 500, "page": page}, timeout=10,
                              headers={"Authorization": f"Bearer {sandbox.token.reveal()}"})
        answer.raise_for_status()
        found.update({d["identity_data"]["google_iot_id"]: d["status"] for d in answer.json()})
        if 'rel="next"' not in answer.headers.get("Link", ""):
            return found
        page += 1


def test_a_backfill_under_the_limit_admits_every_device_with_few_429s(
        running: Sandbox) -> None:
    ids = create(running, "sandbox-registry", "paced", DEVICES)
    limit(running, QUOTA)
    with build_service(Settings.from_toml(running.config_path, {}), concurrency=8) as service:
        report = service.backfill()
    assert report.summary()["failed"] == 0 and report.summary()["done"] == DEVICES
    assert admitted(running) == dict.fromkeys(ids, "preauthorized")
    assert 0 < report.stats["mender_429"] <= FEW
    assert report.stats["mender_rate_limit"] > 0  # the rate it settled on, in the report


def test_two_runs_at_once_on_one_client_share_its_pace(running: Sandbox) -> None:
    first = create(running, "north", "n", DEVICES // 2)
    second = create(running, "south", "s", DEVICES // 2)
    limit(running, QUOTA)
    settings = replace(Settings.from_toml(running.config_path, {}),
                       iot_registries=("north", "south"))
    reports: list[Report] = []
    with build_service(settings, concurrency=8) as service:
        runs = [threading.Thread(target=lambda r=r: reports.append(service.backfill([r])))
                for r in ("north", "south")]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        pace = service.targets[0][0].mender.pace()
    assert [r.summary()["failed"] for r in reports] == [0, 0]
    assert admitted(running) == dict.fromkeys(first | second, "preauthorized")
    # One pace for both runs: twice the workers in flight at the first 429s, then paced.
    assert pace.rate is not None and pace.limited <= 2 * FEW
