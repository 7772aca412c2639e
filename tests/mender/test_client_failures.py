"""Every outbound HTTP client of the bridge (the Mender transport, the Google and ClearBlade
registry adapters) names a failure as what it is, over real loopback sockets: a refused
connection, a name that does not resolve, an untrusted TLS certificate, a server that never
answers. Refused and unresolved calls give up after a few quick tries, not a minute of them;
a service that keeps failing is announced on the log while the call retries."""

from __future__ import annotations

import importlib
import logging
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mender_bodies import TOKEN, error
from mender_support import ScriptedServer, http_answer, self_signed

from bridge.errors import ApiError, PermanentApiError, TransientApiError
from bridge.mender import MenderClient
from bridge.model import RegistryRef
from bridge.registry import ClearBladeRegistry, GoogleRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # google-api-core's Python-version notice
    importlib.import_module("google.api_core")

Start = Callable[..., ScriptedServer]
REF = RegistryRef("proj-1", "us-central1", "reg0")
TIMEOUT = 0.5
Call = Callable[[str], object]


def _mender(url: str) -> object:
    with MenderClient(url, token=TOKEN, timeout=TIMEOUT, retries=5, backoff=0.0) as client:
        return client.count()


def _google(url: str) -> object:
    with GoogleRegistry(endpoint=url, credentials="anonymous", timeout=TIMEOUT,
                        retry_deadline=60.0) as registry:
        return registry.get_device(REF, "dev-1")


def _clearblade(url: str) -> object:
    account = {"systemKey": "admin-key", "token": "admin-token-0123456789", "url": url,
               "project": REF.project}
    with ClearBladeRegistry(account, timeout=TIMEOUT, retries=5, backoff=0.0) as registry:
        return registry.get_device(REF, "dev-1")


CLIENTS = [pytest.param(_mender, "mender", id="mender"),
           pytest.param(_google, "registry", id="google"),
           pytest.param(_clearblade, "registry", id="clearblade")]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def retries(self) -> int:
        """urllib3's own line for every retry it makes."""
        return sum(r.name.startswith("urllib3") and r.getMessage().startswith("Retrying")
                   for r in self.records)

    def notices(self) -> list[str]:
        return [r.getMessage() for r in self.records
                if r.name.startswith("mender_bridge") and r.levelno == logging.WARNING]


@pytest.fixture
def logs() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger("mender_bridge"), logging.getLogger("urllib3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _fails(call: Call, url: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(url)
    return caught.value


@pytest.mark.parametrize(("call", "service"), CLIENTS)
def test_a_refused_connection_is_named_and_not_retried_for_long(
        call: Call, service: str, logs: Records) -> None:
    port = _closed_port()
    error_ = _fails(call, f"http://127.0.0.1:{port}")
    assert type(error_) is TransientApiError and error_.service == service
    assert f"connection refused (127.0.0.1:{port})" in str(error_)
    assert "timed out" not in str(error_)
    assert logs.retries() <= 2  # was: 5 retries over ~7 s (Mender), a minute (Google)


@pytest.mark.parametrize(("call", "service"), CLIENTS)
def test_a_name_that_does_not_resolve_is_named(call: Call, service: str, logs: Records) -> None:
    error_ = _fails(call, "https://bridge-test.invalid")  # .invalid never resolves (RFC 6761)
    assert type(error_) is TransientApiError and error_.service == service
    assert "name not resolved (bridge-test.invalid)" in str(error_)
    assert logs.retries() <= 2


@pytest.mark.parametrize(("call", "service"), CLIENTS)
def test_an_untrusted_certificate_is_permanent_and_named(
        call: Call, service: str, scripted: Start, tmp_path: Path, logs: Records) -> None:
    context, _ = self_signed(tmp_path)
    server = scripted([http_answer(200, {})] * 3, context)
    error_ = _fails(call, server.url)
    assert type(error_) is PermanentApiError and error_.service == service
    assert "TLS certificate not trusted (self-signed certificate)" in str(error_)
    assert logs.retries() == 0


@pytest.mark.parametrize(("call", "service"), CLIENTS)
def test_a_server_that_never_answers_times_out_after_the_timeout(
        call: Call, service: str, scripted: Start, logs: Records) -> None:
    server = scripted(["hang"] * 6)
    error_ = _fails(call, server.url)
    assert type(error_) is TransientApiError and error_.service == service
    assert f"timed out after {TIMEOUT:g}s" in str(error_)
    assert len(server.requests) == 2  # the timeout is retried once, not five times
    host = f"127.0.0.1:{server.port}"
    assert logs.notices() == [f"{service}: timed out after {TIMEOUT:g}s ({host}); retrying"]


def _answers(call: Call, url: str) -> list[bytes]:
    """What each client reads as a success, after three 503s."""
    if call is _mender:
        return [http_answer(200, {"count": 4})]
    device = http_answer(200, {"id": "dev-1", "numId": "1"})
    if call is _google:
        return [device]
    credentials = {"url": url, "systemKey": "regional-key", "serviceAccountToken": "t-0123"}
    return [http_answer(200, credentials), device]


@pytest.mark.parametrize(("call", "service"), CLIENTS)
def test_a_failing_service_is_announced_once_while_retrying(
        call: Call, service: str, scripted: Start, logs: Records) -> None:
    server = scripted([http_answer(503, error("service unavailable"))] * 3)
    server.script += _answers(call, server.url)
    found = call(server.url)
    assert getattr(found, "id", found) == (4 if call is _mender else "dev-1")
    # Three retries within a moment: one notice, not three; never a credential.
    assert logs.notices() == [f"{service}: answered 503 (127.0.0.1:{server.port}); retrying"]
    assert not any(secret in r.getMessage() for r in logs.records
                   for secret in (TOKEN.reveal(), "admin-token", "t-0123"))
