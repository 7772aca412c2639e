"""Issue 13 through `serve` against the sandbox: an authenticated request that would admit a
device if it were read whole (a body over 1 MiB, a body that stops coming) is refused and the
device stays out of Mender; slow clients holding every connection they can do not stop a
legitimate request from admitting it. The server-side limits themselves (memory, deadlines,
logs, the secret only as a bearer header): tests/serve/."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from bridge.device import SimulatedDevice
from tests.security.attack_support import AUTH, HOME, VICTIM, World, attack_world, ec_credential
from tests.serve.support import Serve
from tests.serve.test_limits import still_open

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NEWCOMER = "newcomer-2"
REQUEST = json.dumps({"registry": HOME.registry, "device_id": NEWCOMER}).encode()
MIB = 1 << 20


@dataclass
class Stack:
    world: World
    serve: Serve


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("attacks-serve")
    with attack_world(work) as world:
        world.add_device(HOME, NEWCOMER, [ec_credential(
            SimulatedDevice.generate(NEWCOMER).public_pem)])
        serve = Serve(["--port", "0", "--threads", "2", "--body-timeout", "2"], world.env,
                      work / "serve.log")
        try:
            yield Stack(world, serve)
        finally:
            serve.stop()


def head(length: int) -> bytes:
    return (b"POST /provision HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n"
            b"Authorization: " + AUTH["Authorization"].encode()
            + b"\r\nContent-Length: %d\r\n\r\n" % length)


def answer_of(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096)
    except ConnectionResetError:
        return b""


def test_a_request_padded_past_the_limit_is_refused_and_admits_nothing(stack: Stack) -> None:
    before = stack.world.state()
    # Valid JSON if read whole (whitespace may trail): the newcomer would be admitted.
    body = REQUEST + b" " * (2 * MIB)
    with stack.serve.connect() as sock:
        try:
            sock.sendall(head(len(body)))
            for start in range(0, len(body), 64 * 1024):
                sock.sendall(body[start:start + 64 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert stack.world.state() == before
    assert stack.world.auth_sets(NEWCOMER) == []


def test_a_request_whose_body_stops_coming_is_cut_off_and_admits_nothing(
        stack: Stack) -> None:
    before = stack.world.state()
    with stack.serve.connect() as sock:
        sock.sendall(head(len(REQUEST)) + REQUEST[:-1])  # all but the closing brace
        sock.settimeout(30)
        answer = answer_of(sock)
        assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert not still_open(sock, 1.0)
    assert stack.world.state() == before
    assert stack.world.auth_sets(NEWCOMER) == []


def test_slow_clients_do_not_keep_a_legitimate_request_from_admitting(stack: Stack) -> None:
    victim = stack.world.auth_sets(VICTIM)
    slow = [stack.serve.connect() for _ in range(100)]
    try:
        for sock in slow:
            sock.sendall(b"POST /provision HTTP/1.1\r\nHost: b")  # and nothing more
        answer = requests.post(f"{stack.serve.url}/provision", headers=AUTH, data=REQUEST,
                               timeout=30)
        assert answer.status_code == 200, answer.text
        assert [s for _, s in stack.world.auth_sets(NEWCOMER)] == ["preauthorized"]
        assert stack.world.auth_sets(VICTIM) == victim
    finally:
        for sock in slow:
            sock.close()
