"""Fixtures for the Mender client tests: `responses` at the HTTP edge with every exchange checked
against the Mender OpenAPI spec, and a scripted loopback server for real connection faults."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from mender_bodies import BASE, TOKEN
from mender_support import Contract, FakeClock, ScriptedServer, load_openapi

from bridge.mender import MenderClient
from bridge.mender.pacer import Pacer


@pytest.fixture(scope="session")
def openapi() -> Any:
    return load_openapi()


@pytest.fixture
def contract(openapi: Any) -> Contract:
    return Contract(openapi)


@pytest.fixture
def mender_api(contract: Contract) -> Iterator[responses.RequestsMock]:
    """`responses` mock of the Mender server; every call the test made is validated after it."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        if contract.exempt_reason is None and contract.openapi is not None:
            for call in mock.calls:
                contract.check(call.request, call.response)
            to_spec_server = [c for c in mock.calls if str(c.request.url).startswith(BASE)]
            assert len(contract.checked) == len(to_spec_server)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Iterator[MenderClient]:
    """A client whose pacer waits on `clock` (what it waited is in `clock.slept`)."""
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    with MenderClient(BASE, token=TOKEN, retries=2, backoff=0.0, pacer=pacer) as c:
        yield c


Start = Callable[..., ScriptedServer]


@pytest.fixture
def scripted() -> Iterator[Start]:
    servers: list[ScriptedServer] = []

    def start(script: list[str | bytes], tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(script, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
