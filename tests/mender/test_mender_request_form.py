"""What a request of the Mender client looks like on the wire (read by a loopback server): the
session's default headers with the call's own, the token, the query, the JSON body, and a cookie
the server set sent back, as requests' Session.request would send them."""

from __future__ import annotations

import json
from collections.abc import Callable

from mender_bodies import EC_PEM, TOKEN, device
from mender_support import ScriptedServer, http_answer

from bridge.mender import MenderClient

Start = Callable[..., ScriptedServer]


def head_and_body(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    first, *lines = head.decode().split("\r\n")
    return first, {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}, body


def test_requests_carry_the_session_headers_the_token_the_query_and_the_body(
        scripted: Start) -> None:
    listing = http_answer(200, [device("d1")], {"Set-Cookie": "lb=node-2; Path=/"})
    server = scripted([listing, http_answer(201, None, {"Location": "devices/new"})])
    with MenderClient(server.url, token=TOKEN, retries=0) as client:
        assert [d.id for d in client.iter_devices()] == ["d1"]
        client.preauthorize({"google_iot_id": "d2"}, EC_PEM)
    (line, listed, _), (post, sent, body) = (head_and_body(r) for r in server.requests)
    assert line.startswith("GET /api/management/v2/devauth/devices?")
    assert "per_page=" in line and "page=1" in line
    assert post.startswith("POST /api/management/v2/devauth/devices ")
    for headers in (listed, sent):
        assert headers["authorization"] == f"Bearer {TOKEN.reveal()}"
        assert headers["accept"] == "application/json"
        assert headers["user-agent"].startswith("python-requests/")
        assert "gzip" in headers["accept-encoding"]
        assert len(headers["x-men-requestid"]) == 36
    assert listed["x-men-requestid"] != sent["x-men-requestid"]
    assert "cookie" not in listed and sent["cookie"] == "lb=node-2"
    assert sent["content-type"] == "application/json"
    assert json.loads(body) == {"identity_data": {"google_iot_id": "d2"}, "pubkey": EC_PEM,
                                "force": False}
