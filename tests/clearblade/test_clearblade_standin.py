"""The ClearBlade stand-in keeps ClearBlade's published limits, over real HTTP: list pages of
at most 500 with `nextPageToken`, 409 for a device that exists, and the device-manager quotas
per project and minute (429 with Retry-After), which do not stop the bridge's adapter from
listing a registry in pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask, Response, jsonify

from bridge.model import RegistryRef
from bridge.registry import ClearBladeRegistry
from bridge.sandbox.registry import clearblade_routes, create_app
from bridge.sandbox.registry.audit import Deliverer
from bridge.sandbox.registry.resources import ApiFailure
from bridge.sandbox.registry.service import Service
from bridge.sandbox.registry.store import Store
from bridge.sandbox.server import RunningServer, serve
from tests.clearblade.cb_support import ClearBladeRest

pytestmark = pytest.mark.e2e
PROJECT, REGION, REGISTRY = "cb-project", "us-central1", "cb-fleet"


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    app = create_app(tmp_path, project=PROJECT, location=REGION, registries=[REGISTRY])
    server = serve(app)
    try:
        account = requests.get(f"{server.url}/_sandbox/clearblade-service-account",
                               timeout=5).json()
        yield server.url, account
    finally:
        server.stop()
        app.extensions["registry_sandbox"].close()


def test_pages_hold_at_most_500_and_the_token_leads_to_the_rest(
        standin: tuple[str, dict[str, str]]) -> None:
    url, account = standin
    rest = ClearBladeRest(url, account, PROJECT, REGION, REGISTRY)
    for i in range(501):
        assert rest.create(f"dev-{i:04d}").status_code == 200
    first = rest.list(10_000).json()
    assert len(first["devices"]) == 500 and first["nextPageToken"]
    second = rest.list(10_000, first["nextPageToken"]).json()
    assert [d["id"] for d in second["devices"]] == ["dev-0500"]
    assert "nextPageToken" not in second
    adapter = ClearBladeRegistry(account, page_size=10_000)
    listed = [d.id for d in adapter.iter_devices(RegistryRef(PROJECT, REGION, REGISTRY))]
    assert listed == [f"dev-{i:04d}" for i in range(501)]


def test_a_device_that_exists_is_a_conflict(standin: tuple[str, dict[str, str]]) -> None:
    url, account = standin
    rest = ClearBladeRest(url, account, PROJECT, REGION, REGISTRY)
    assert rest.create("dev-twice", metadata={"site": "lab"}).status_code == 200
    again = rest.create("dev-twice", metadata={"site": "field"})
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]
    kept = rest.list(10).json()["devices"]
    assert [d["id"] for d in kept] == ["dev-twice"]


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """The ClearBlade routes alone, with quotas small enough to reach."""
    store = Store(tmp_path / "registry.sqlite")
    service = Service(store, Deliverer(store, ()))
    service.create_registry(PROJECT, REGION, {"id": REGISTRY})
    app = Flask("clearblade-limited")
    app.register_blueprint(clearblade_routes.blueprint(
        service, "admin-key", "admin-token-0123", PROJECT,
        clearblade_routes.Quotas(reads=4, writes=2, window_s=3600)))

    @app.errorhandler(ApiFailure)
    def _failure(exc: ApiFailure) -> tuple[Response, int]:
        return jsonify(exc.body()), exc.status

    server = serve(app)
    try:
        yield server, {"systemKey": "admin-key", "token": "admin-token-0123"}
    finally:
        server.stop()
        service.close()


def test_calls_over_the_project_quota_are_answered_429(
        limited: tuple[RunningServer, dict[str, str]]) -> None:
    server, account = limited
    rest = ClearBladeRest(server.url, account, PROJECT, REGION, REGISTRY)
    created = [rest.create(f"dev-{i}").status_code for i in range(3)]
    assert created == [200, 200, 429]
    reads = [rest.list(10) for _ in range(5)]
    assert [r.status_code for r in reads] == [200, 200, 200, 200, 429]
    assert 0 < int(reads[-1].headers["Retry-After"]) <= 3600
    assert [d["id"] for d in reads[0].json()["devices"]] == ["dev-0", "dev-1"]
