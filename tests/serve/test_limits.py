"""`serve` under hostile load, over real sockets: oversized bodies are refused before they are
read (the server's memory stays flat), slow clients neither hold it nor starve `/healthz`, and
requests that trickle in are cut off."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.serve.support import AUTH, Serve, offline_env, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MIB = 1 << 20
# Memory the server may gain while a client pushes an oversized body at it: far below the
# body (300 MB) and the socket buffers the kernel keeps outside the process anyway.
RSS_SLACK_KIB = 6 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    log = tmp_path_factory.mktemp("serve-limits") / "serve.log"
    server = Serve(["--port", "0", "--threads", "2", "--header-timeout", "4",
                    "--body-timeout", "4"], offline_env(), log)
    try:
        yield server
    finally:
        server.stop()


def push_until_refused(sock: socket.socket, chunk: bytes, limit: int) -> int:
    """Send `chunk` until the server stops taking it or `limit` bytes went; bytes sent."""
    sent = 0
    try:
        while sent < limit:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def send_oversized(served: Serve, head: bytes, chunk: bytes) -> tuple[int, int, bytes]:
    """Send `head`, then `chunk` after chunk (64 MiB at most) while the server takes them,
    reading its RSS after each MiB: (bytes sent, RSS growth in KiB, its answer)."""
    baseline = peak = served.rss_kib()
    sent = 0
    with served.connect() as sock:
        sock.sendall(head + b"Authorization: " + AUTH["Authorization"].encode() + b"\r\n\r\n")
        for _ in range(64):
            step = push_until_refused(sock, chunk, MIB)
            sent += step
            peak = max(peak, served.rss_kib())
            if step < MIB:
                break
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    return sent, peak - baseline, answer


def test_a_body_announced_at_300_mb_is_refused_before_it_is_read(served: Serve) -> None:
    assert requests.get(f"{served.url}/healthz", timeout=10).status_code == 200
    sent, growth, answer = send_oversized(
        served, b"POST /provision HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n", b"{" * (64 * 1024))
    assert sent < 64 * MIB, "the server kept reading the oversized body"
    assert growth < RSS_SLACK_KIB
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert requests.get(f"{served.url}/healthz", timeout=10).status_code == 200


def test_a_chunked_body_is_refused_once_it_passes_the_limit(served: Serve) -> None:
    sent, growth, answer = send_oversized(
        served, b"POST /provision HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n",
        b"10000\r\n" + b"[" * 0x10000 + b"\r\n")
    assert sent < 64 * MIB, "the server kept reading the chunked body"
    assert growth < RSS_SLACK_KIB
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]


def test_a_hundred_slow_clients_do_not_stop_healthz(tmp_path: Path) -> None:
    # Two worker threads and the default header timeout (10 s): the clients below stay within
    # it, so they are still connected while /healthz is asked for.
    served = Serve(["--port", "0", "--threads", "2"], offline_env(), tmp_path / "serve.log")
    slow: list[socket.socket] = []
    try:
        slow += [served.connect() for _ in range(100)]
        line = b"GET /healthz HTTP/1.1\r\n"
        for position in range(3):  # one header byte per client per second
            for sock in slow:
                sock.sendall(line[position:position + 1])
            time.sleep(1)
            answer = requests.get(f"{served.url}/healthz", timeout=10)
            assert answer.status_code == 200
            assert answer.json()["status"] == "ok"
        # They were all still connected, and so held nothing the server needed.
        assert all(still_open(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()
        served.stop()


def still_open(sock: socket.socket, wait: float = 0.0) -> bool:
    """True unless the server closes `sock` within `wait` seconds (nothing to read yet)."""
    sock.settimeout(wait or None)
    if not wait:
        sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except (BlockingIOError, TimeoutError):
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.settimeout(10)


def test_headers_sent_one_byte_at_a_time_are_cut_off(served: Serve) -> None:
    sock = served.connect()
    with sock:
        request = iter(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"a" * 10_000)
        closed = wait_for(lambda: trickle(sock, bytes([next(request)])), 60,
                          "the server to close")
    assert closed
    output = served.output()
    assert "request headers not received in time" in output


def test_a_body_that_stops_coming_is_cut_off(served: Serve) -> None:
    sock = served.connect()
    with sock:
        sock.sendall(b"POST /provision HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n"
                     b"Authorization: " + AUTH["Authorization"].encode() + b"\r\n\r\n{\"re")
        closed = wait_for(lambda: not still_open(sock, 0.5), 60, "the server to close")
    assert closed
    assert "request body not received in time" in served.output()


def trickle(sock: socket.socket, byte: bytes) -> bool:
    """Send one more byte; True once the server has closed the connection."""
    try:
        sock.sendall(byte)
    except (BrokenPipeError, ConnectionResetError):
        return True
    return not still_open(sock, 0.3)


def test_a_body_just_under_the_limit_is_read_and_judged(served: Serve) -> None:
    body = b'{"registry": "fleet", "device_id": 7}'
    answer = requests.post(f"{served.url}/provision", headers=AUTH, timeout=10,
                           data=body + b" " * (MIB - len(body)))
    assert answer.status_code == 400
    assert "device_id must be a string" in answer.json()["error"]
