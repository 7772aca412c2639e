"""The Google adapter's device list, parsed from REST JSON without protobuf: what it asks for,
what it reads, and every malformed page refused whole (a 502, transient) — never a device
without credentials. Whatever protobuf's JSON parser (the library's way) refuses, it refuses
too. `responses` at the HTTP edge."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from bridge.errors import NotFound, TransientApiError
from bridge.model import CredentialFormat, RegistryDevice, RegistryRef
from bridge.registry import GoogleRegistry

REF = RegistryRef("proj-1", "us-central1", "reg0")
BASE = "https://cloudiot.test"
LIST_URL = re.compile(rf"{BASE}/v1/{REF.path}/devices\?.*")
KEY = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
GOOD = {"id": "dev0", "numId": "12", "blocked": False, "metadata": {"site": "lab"},
        "credentials": [{"publicKey": {"format": 2, "key": KEY},
                         "expirationTime": "1970-01-01T00:00:00Z"}]}


def device(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def credential(**changes: Any) -> dict[str, Any]:
    return {**GOOD["credentials"][0], **changes}


def page(*devices: Any, **fields: Any) -> str:
    return json.dumps({"devices": list(devices), **fields})


# Pages protobuf's JSON parser refuses (the library's way of reading them) …
PROTOBUF_REFUSES = {
    "not json": "<html>sign in</html>",
    "not utf-8": b'{"devices": [{"id": "d\xff"}]}',
    "an array": json.dumps([GOOD]),
    "devices an object": json.dumps({"devices": GOOD}),
    "device null": page(None),
    "id a number": page(device(id=7)),
    "numId not a number": page(device(numId="12a")),
    "numId negative": page(device(numId=-1)),
    "numId above uint64": page(device(numId=str(2**64))),
    "credentials an object": page(device(credentials={"publicKey": {}})),
    "key a number": page(device(credentials=[credential(publicKey={"format": 2, "key": 5})])),
    "format an object": page(device(credentials=[credential(publicKey={"format": {},
                                                                        "key": KEY})])),
    "expirationTime prose": page(device(credentials=[credential(expirationTime="next tuesday")])),
    "expirationTime a date": page(device(credentials=[credential(expirationTime="2030-01-02")])),
    "expirationTime no zone": page(device(credentials=[credential(
        expirationTime="2030-01-02T03:04:05")])),
    "expirationTime month 13": page(device(credentials=[credential(
        expirationTime="2030-13-02T03:04:05Z")])),
    "expirationTime a number": page(device(credentials=[credential(expirationTime=12)])),
    "metadata a list": page(device(metadata=["a"])),
    "metadata value a number": page(device(metadata={"a": 1})),
    "blocked a string": page(device(blocked="false")),
    "token a number": page(GOOD, nextPageToken=5),
    "a repeated key": '{"devices": [{"id": "dev0", "id": "dev1"}]}',
}
# … and pages it takes that this parser refuses as well: protobuf reads a string where an
# object belongs as an empty object (a credential without a key, which would make the bridge
# revoke the device's keys) and takes the last of a field's two names.
ALSO_REFUSED = {
    "device a string": page("dev0"),
    "credential a string": page(device(credentials=["junk"])),
    "publicKey a string": page(device(credentials=[credential(publicKey="K")])),
    "both names": page(device(num_id="13")),
    "id missing": page(device(id=None)),
    "id empty": page(device(id="")),
    "format true": page(device(credentials=[credential(publicKey={"format": True, "key": KEY})])),
    "numId a float": page(device(numId=12.0)),
}


def protobuf_refuses(body: str | bytes) -> bool:
    from google.cloud import iot_v1
    from google.protobuf import json_format

    try:
        json_format.Parse(body, iot_v1.ListDevicesResponse.pb(iot_v1.ListDevicesResponse()),
                          ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError):
        return True
    return False


@pytest.fixture
def google() -> GoogleRegistry:
    return GoogleRegistry(endpoint=BASE, credentials="anonymous", timeout=2, retry_deadline=5,
                          page_size=2)


def listed(google: GoogleRegistry, found: list[RegistryDevice]) -> None:
    for item in google.iter_devices(REF):
        found.append(item)


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


@responses.activate
def test_pages_are_read_in_turn_with_the_fields_the_bridge_uses(google: GoogleRegistry) -> None:
    second = device(id="dev1", numId=13, blocked=True, metadata={}, credentials=[
        credential(publicKey={"format": "RSA_PEM", "key": KEY},
                   expirationTime="2030-01-02T03:04:05.123456789+02:00"),
        {"publicKey": {"format": 99, "key": KEY}}, {}])
    responses.get(LIST_URL, body=page(GOOD, second, nextPageToken="t/2+", extra={"x": 1}))
    responses.get(LIST_URL, body=page({"id": "dev2", "num_id": "14", "credentials": [
        {"public_key": {"format": 4, "key": KEY}, "expiration_time": None}]}))
    found = list(google.iter_devices(REF))
    assert [(d.id, d.num_id, d.blocked, d.metadata) for d in found] == [
        ("dev0", "12", False, {"site": "lab"}), ("dev1", "13", True, {}), ("dev2", "14", False, {})]
    assert [(c.format, c.key, c.expires_at) for c in found[1].credentials] == [
        (CredentialFormat.RSA_PEM, KEY, datetime(2030, 1, 2, 1, 4, 5, 123456, tzinfo=UTC)),
        (None, KEY, None), (None, "", None)]
    assert found[0].credentials[0].format is CredentialFormat.ES256_PEM
    assert found[0].credentials[0].expires_at is None  # the 1970 "unset" value
    assert found[2].credentials[0].format is CredentialFormat.ES256_X509_PEM
    first, then = (query(c) for c in responses.calls)
    assert first["fieldMask"] == ["credentials,metadata,blocked"] and first["pageSize"] == ["2"]
    assert "pageToken" not in first and then["pageToken"] == ["t/2+"]
    assert first["$alt"] == ["json;enum-encoding=int"]


@pytest.mark.parametrize("body", [*PROTOBUF_REFUSES.values(), *ALSO_REFUSED.values()],
                         ids=[*PROTOBUF_REFUSES, *ALSO_REFUSED])
@responses.activate
def test_a_malformed_page_is_an_error_and_yields_no_device(google: GoogleRegistry,
                                                           body: str | bytes) -> None:
    responses.get(LIST_URL, body=page(GOOD, nextPageToken="next"))
    responses.get(LIST_URL, body=body)
    found: list[RegistryDevice] = []
    with pytest.raises(TransientApiError) as caught:
        listed(google, found)
    assert [d.id for d in found] == ["dev0"]  # the good first page, nothing of the bad one
    assert caught.value.status == 502 and "malformed" in str(caught.value)
    assert len(responses.calls) == 2  # a malformed answer is not asked again at once


@pytest.mark.parametrize("body", PROTOBUF_REFUSES.values(), ids=PROTOBUF_REFUSES)
def test_the_oracle_refuses_these_pages_too(body: str | bytes) -> None:
    assert protobuf_refuses(body)


@responses.activate
def test_listing_errors_are_retried_or_mapped(google: GoogleRegistry) -> None:
    busy = {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
    responses.get(LIST_URL, json=busy, status=503)
    responses.get(LIST_URL, body=page(GOOD))
    assert [d.id for d in google.iter_devices(REF)] == ["dev0"]
    responses.reset()
    gone = {"error": {"code": 404, "message": "no registry", "status": "NOT_FOUND"}}
    responses.get(LIST_URL, json=gone, status=404)
    with pytest.raises(NotFound) as caught:
        list(google.iter_devices(REF))
    assert "no registry" in str(caught.value) and len(responses.calls) == 1


@responses.activate
def test_the_next_page_is_asked_for_while_this_one_is_read(google: GoogleRegistry) -> None:
    asked = threading.Event()

    def second(request: Any) -> tuple[int, dict[str, str], str]:
        asked.set()
        return 200, {}, page(device(id="dev2"))

    responses.get(LIST_URL, body=page(GOOD, device(id="dev1"), nextPageToken="p2"))
    responses.add_callback(responses.GET, LIST_URL, callback=second)
    listing = google.iter_devices(REF)
    assert next(listing).id == "dev0"
    assert asked.wait(10), "page 2 was not asked for before page 1 was read to its end"
    assert [d.id for d in listing] == ["dev1", "dev2"]
    assert len(responses.calls) == 2
