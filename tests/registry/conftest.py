"""Fixtures: the registry sandbox served over real HTTP, and the real google-cloud-iot client."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_support import LOCATION, PROJECT, REGISTRY, Sandbox, StartSandbox

from bridge.sandbox.faults import Faults
from bridge.sandbox.registry import create_app
from bridge.sandbox.server import serve


def _starter(tmp_path: Path, started: list[Sandbox]) -> StartSandbox:
    def start(data_dir: Path | None = None, **options: Any) -> Sandbox:
        faults = Faults()
        options.setdefault("registries", [REGISTRY])
        options.setdefault("audit_backoff", (0.05, 0.2))
        app = create_app(data_dir or tmp_path / "sandbox", faults=faults, project=PROJECT,
                         location=LOCATION, **options)
        server = serve(app)
        box = Sandbox(server.url, data_dir or tmp_path / "sandbox", faults, server, app)
        started.append(box)
        return box

    return start


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[StartSandbox]:
    started: list[Sandbox] = []
    yield _starter(tmp_path, started)
    for box in started:
        box.stop()


@pytest.fixture
def sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return start_sandbox()


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox for a whole module, for tests that only add uniquely named devices (each
    server stop costs the serving thread's half-second poll)."""
    started: list[Sandbox] = []
    yield _starter(tmp_path_factory.mktemp("shared"), started)()
    for box in started:
        box.stop()


@pytest.fixture
def iot_client(sandbox: Sandbox) -> Any:
    return client_for(sandbox)


@pytest.fixture(scope="module")
def shared_client(shared_sandbox: Sandbox) -> Any:
    return client_for(shared_sandbox)


def client_for(sandbox: Sandbox) -> Any:
    """The real google-cloud-iot client, REST transport, anonymous, pointed at the sandbox."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import iot_v1
    return iot_v1.DeviceManagerClient(
        credentials=AnonymousCredentials(), transport="rest",
        client_options=ClientOptions(api_endpoint=sandbox.url))
