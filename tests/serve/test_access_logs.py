"""`serve`'s access log over real sockets: one JSON line per request, the secret never in it
however a caller encodes or places it, and a malformed request logged, not fatal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests

from tests.serve.support import SECRET, Serve, http_exchange, offline_env, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARTLY = "%" + SECRET[0].encode().hex() + SECRET[1:]  # the first character percent-encoded
FULLY = "".join(f"%{b:02X}" for b in SECRET.encode())
TARGETS = [
    f"/healthz?token={SECRET}",
    f"/healthz?a=1&token={PARTLY}",
    f"/healthz?a=1&token={FULLY}&b=2",
    f"/healthz?token={FULLY.lower()}",
    f"/healthz?{SECRET}",
    f"/healthz?x={quote(SECRET)}#frag",
    f"/provision?token={SECRET}",
    f"/{SECRET}",
    f"/{PARTLY}",
    f"/{FULLY}",
    "/" + quote(PARTLY),  # encoded twice
    f"/a/{SECRET}/b?c={SECRET}",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    log = tmp_path_factory.mktemp("serve-logs") / "serve.log"
    server = Serve(["--port", "0"], offline_env(), log)
    try:
        yield server
    finally:
        server.stop()


def records(server: Serve) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def access_lines(server: Serve) -> list[dict[str, Any]]:
    return [r for r in records(server) if "httpRequest" in r]


@pytest.mark.parametrize("target", TARGETS)
def test_a_secret_in_the_url_never_reaches_the_log(served: Serve, target: str) -> None:
    before = len(access_lines(served))
    with served.connect() as sock:
        answer = http_exchange(sock, f"GET {target} HTTP/1.1\r\nHost: test\r\n"
                                     "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 ")
    wait_for(lambda: len(access_lines(served)) > before, 10, "the access-log line")
    output = served.output()
    assert SECRET not in output
    assert SECRET not in unquote(unquote(output))
    assert SECRET.lower() not in unquote(unquote(output)).lower()


def test_each_request_is_one_structured_line_without_its_query(served: Serve) -> None:
    requests.get(f"{served.url}/healthz?token=abc&x=1", timeout=10)
    requests.post(f"{served.url}/provision", timeout=10, json={})
    line = wait_for(lambda: [r for r in access_lines(served)
                             if r["httpRequest"]["requestMethod"] == "POST"], 10, "the line")[-1]
    assert line["message"] == "POST /provision 401"
    assert line["httpRequest"]["status"] == 401
    assert line["severity"] == "INFO"
    healthz = [r for r in access_lines(served) if r["httpRequest"]["requestUrl"].startswith(
        "/healthz?")]
    assert healthz and all("abc" not in r["message"] for r in healthz)


@pytest.mark.parametrize("first_line", [
    b"garbage",
    b"get / HTTP/1.1",
    b"GET /? HTTP/1.1 trailing words",
    b"\x00\xff\xfe binary HTTP/1.1",
    f"get /?token={SECRET} HTTP/1.1".encode(),
])
def test_a_malformed_request_line_is_logged_and_the_server_keeps_serving(
        served: Serve, first_line: bytes) -> None:
    before = len(access_lines(served))
    with served.connect() as sock:
        answer = http_exchange(sock, first_line + b"\r\nHost: test\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 400 ") or answer.startswith(b"HTTP/1.1 400 ")
    new = wait_for(lambda: access_lines(served)[before:], 10, "the access-log line")
    assert new[0]["httpRequest"]["status"] == 400
    assert "Bad Request" in new[0]["message"]
    assert SECRET not in served.output()
    assert requests.get(f"{served.url}/healthz", timeout=10).status_code == 200
    assert served.proc.poll() is None
