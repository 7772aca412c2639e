"""No HTTP client of the bridge follows a redirect, so no credential crosses to another host:
over real loopback HTTP, a server answers 302 or 307 pointing at a second server (another
origin: another host name and port) that records every request it gets. The second server is
never called, and the error is permanent and names the host the redirect pointed at."""

from __future__ import annotations

import importlib
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bridge.errors import PermanentApiError
from bridge.mender import MenderClient
from bridge.model import RegistryRef, Secret
from bridge.registry import ClearBladeRegistry, GoogleRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # google-api-core's Python-version notice
    importlib.import_module("google.api_core")

REF = RegistryRef("proj-1", "us-central1", "reg0")
TOKEN = "mender-token-0123456789"
ADMIN_TOKEN = "clearblade-admin-token-0123"
REGIONAL_TOKEN = "clearblade-regional-token-0123"
Answer = Callable[[str, str], tuple[int, dict[str, str], bytes]]


@dataclass
class Server:
    """A loopback HTTP server answering with `answer(method, path)` and recording requests."""

    answer: Answer
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.calls.append((self.command, self.path, dict(self.headers)))
                status, headers, body = server.answer(self.command, self.path)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def servers() -> Iterator[Callable[[Answer], Server]]:
    started: list[Server] = []

    def start(answer: Answer) -> Server:
        started.append(Server(answer))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _json(body: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _redirect(status: int, target: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Location": target}, b""


def _mender(url: str) -> object:
    with MenderClient(url, token=Secret(TOKEN), retries=1, backoff=0.0) as client:
        return client.get_device("d1")


def _google(url: str) -> object:
    with GoogleRegistry(endpoint=url, credentials="anonymous", timeout=5.0) as registry:
        return registry.get_device(REF, "dev-1")


def _clearblade(url: str) -> object:
    account = {"systemKey": "admin-key", "token": ADMIN_TOKEN, "url": url, "project": "proj-1"}
    with ClearBladeRegistry(account, retries=1, backoff=0.0) as registry:
        return registry.get_device(REF, "dev-1")


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("call", [_mender, _google, _clearblade], ids=["mender", "google",
                                                                       "clearblade"])
def test_a_redirect_to_another_host_is_an_error_naming_it(
        servers: Callable[[Answer], Server], call: Callable[[str], object], status: int) -> None:
    other = servers(lambda method, path: _json({"id": "dev-1", "numId": "1"}))
    target = f"{other.url('localhost')}/stolen"
    first = servers(lambda method, path: _redirect(status, target))
    with pytest.raises(PermanentApiError) as caught:
        call(first.url())
    assert caught.value.status == status
    assert f"redirected to localhost:{other.port}" in str(caught.value)
    assert len(first.calls) == 1 and other.calls == []


def test_clearblade_never_sends_its_regional_token_to_a_redirect(
        servers: Callable[[Answer], Server]) -> None:
    other = servers(lambda method, path: _json({"id": "dev-1"}))

    def clearblade(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/getRegistryCredentials"):
            return _json({"url": first.url(), "systemKey": "regional-key",
                          "serviceAccountToken": REGIONAL_TOKEN})
        return _redirect(302, f"{other.url('localhost')}{path}")

    first = servers(clearblade)
    with pytest.raises(PermanentApiError, match=f"localhost:{other.port}"):
        _clearblade(first.url())
    assert [headers.get("ClearBlade-UserToken") for _, _, headers in first.calls] == [
        ADMIN_TOKEN, REGIONAL_TOKEN]
    assert other.calls == []


def test_a_redirect_on_the_same_host_is_refused_too(servers: Callable[[Answer], Server]) -> None:
    server = servers(lambda method, path: _redirect(301, "/elsewhere") if path != "/elsewhere"
                     else _json({"count": 1}))
    with pytest.raises(PermanentApiError, match=f"redirected to 127.0.0.1:{server.port}"):
        _mender(server.url())
    assert [path for _, path, _ in server.calls] == ["/api/management/v2/devauth/devices/d1"]
