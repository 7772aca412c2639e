"""`mender-bridge serve` over real HTTP against the sandbox: the provisioning webhook, and
Pub/Sub push delivery from the registry stand-in to /pubsub through a proxy that adds the
bearer header (the stand-in, like a push subscription without OIDC, sends none)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.function.e2e_support import MenderView, create_device, der, iot_client, wait_for
from tests.function.helpers import public_pem
from tests.serve.support import AUTH, SECRET, Serve, Stand, run_serve, sandbox_stand

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def stand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stand]:
    with sandbox_stand(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="module")
def served(stand: Stand, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(["--port", "0"], stand.env, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bearer_proxy(served: Serve) -> Iterator[str]:
    """A reverse proxy on loopback that forwards POSTs to serve with the bearer header."""

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = requests.post(served.url + self.path, data=body, timeout=30, headers={
                **AUTH, "Content-Type": self.headers.get("Content-Type", "")})
            self.send_response(answer.status_code)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_the_webhook_preauthorizes_a_registered_device(stand: Stand, served: Serve) -> None:
    sandbox, ref, pem = stand.sandbox, stand.ref, public_pem()
    create_device(iot_client(sandbox.registry_url), ref, "hooked-1", pem)
    url = f"{served.url}/provision"
    body = {"registry": ref.registry, "device_id": "hooked-1"}
    assert requests.post(url, json=body, timeout=30).status_code == 401
    answer = requests.post(url, json=body, timeout=30, headers=AUTH)
    assert answer.status_code == 200, answer.text
    mender = MenderView(sandbox.mender_url, sandbox.token.reveal())
    assert mender.keys("hooked-1") == {der(pem): "preauthorized"}
    bad = requests.post(url, json={"registry": ref.registry}, timeout=30, headers=AUTH)
    assert bad.status_code == 400


def test_audit_events_pushed_to_pubsub_route_are_applied(
        stand: Stand, served: Serve, bearer_proxy: str) -> None:
    sandbox, ref, pem = stand.sandbox, stand.ref, public_pem()
    endpoints = f"{sandbox.registry_url}/_sandbox/audit-endpoints"
    requests.post(endpoints, json={"endpoints": [f"{bearer_proxy}/pubsub"]},
                  timeout=10).raise_for_status()
    try:
        create_device(iot_client(sandbox.registry_url), ref, "pushed-1", pem)
        mender = MenderView(sandbox.mender_url, sandbox.token.reveal())
        wait_for(lambda: mender.keys("pushed-1") == {der(pem): "preauthorized"},
                 what="the pushed event applied")
    finally:
        requests.post(endpoints, json={"endpoints": []}, timeout=10)
    output = served.output()
    assert SECRET not in output and sandbox.token.reveal() not in output
    assert "POST /pubsub 200" in output


def test_serve_refuses_to_start_without_a_webhook_secret(stand: Stand) -> None:
    env = {k: v for k, v in stand.env.items() if k != "WEBHOOK_SECRET"}
    done = run_serve(["--port", "0"], env)
    assert done.returncode == 2
    assert "WEBHOOK_SECRET" in done.stderr.splitlines()[-1]
