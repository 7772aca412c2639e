"""SIGTERM while a request is running: `serve` stops accepting, finishes that request (the
client gets its whole answer), then exits 0."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.function.e2e_support import create_device, iot_client
from tests.function.helpers import public_pem
from tests.serve.support import AUTH, Serve, Stand, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_drains_a_slow_request_then_exits_0(stand: Stand, tmp_path: Path) -> None:
    create_device(iot_client(stand.sandbox.registry_url), stand.ref, "drained-1", public_pem())
    server = Serve(["--port", "0"], stand.env, tmp_path / "serve.log")
    answers: list[Any] = []
    try:
        stand.mender_faults(latency_ms=2000)
        client = threading.Thread(target=lambda: answers.append(requests.post(
            f"{server.url}/provision", headers=AUTH, timeout=60,
            json={"registry": stand.ref.registry, "device_id": "drained-1"})))
        client.start()
        wait_for(lambda: "provision " in server.output(), 30, "the request to be running")
        server.terminate()
        wait_for(lambda: refuses_connections(server.port), 30, "serve to stop accepting")
        client.join(60)
        assert server.proc.wait(60) == 0
    finally:
        stand.mender_faults(latency_ms=0)
        server.stop()
    output = server.output()
    assert output.index("SIGTERM: draining") < output.index("POST /provision 200")
    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["failed"] is False
    [device] = [d for d in stand.mender_devices()
                if d.get("identity_data") == {"google_iot_id": "drained-1"}]
    assert [s["status"] for s in device["auth_sets"]] == ["preauthorized"]
