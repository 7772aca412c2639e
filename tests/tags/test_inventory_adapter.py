"""The inventory adapter at its HTTP edge (`responses`): what it sends (If-Match only with an
ETag, PATCH or PUT, the v2 search's filters and pages) and how it reads Mender's answers."""

from __future__ import annotations

import json

import pytest
import responses

from bridge.errors import NotFound, PermanentApiError
from bridge.mender import MenderClient
from bridge.mender.inventory import MenderInventory
from bridge.model import Secret
from bridge.tags import Tag

BASE = "https://mender.example"
DEVICE = f"{BASE}/api/management/v1/inventory/devices/d%2F1"
SEARCH = f"{BASE}/api/management/v2/inventory/filters/search"


def inventory(per_page: int = 500) -> MenderInventory:
    client = MenderClient(BASE, token=Secret("token-0123456789"), retries=0)
    return MenderInventory(client.transport, per_page=per_page)


def record(device_id: str, identity: dict[str, str], **tags: object) -> dict[str, object]:
    attributes = [{"name": k, "value": v, "scope": "identity"} for k, v in identity.items()]
    attributes += [{"name": k, "value": v, "scope": "tags", "description": "d"}
                   for k, v in tags.items()]
    attributes.append({"name": "created_ts", "value": "2026-01-01T00:00:00Z", "scope": "system"})
    return {"id": device_id, "attributes": attributes}


@responses.activate
def test_a_record_is_read_with_its_bare_etag_and_only_its_tags() -> None:
    responses.get(DEVICE, json=record("d/1", {"google_iot_id": "x", "status": "accepted"},
                                      site="lab"), headers={"ETag": "0f2a-uuid"})
    found = inventory().get("d/1")
    assert found.etag == "0f2a-uuid" and found.tags == {"site": Tag("site", "lab", "d")}
    assert found.identity == {"google_iot_id": "x", "status": "accepted"}


@responses.activate
def test_a_missing_record_is_not_found() -> None:
    responses.get(DEVICE, json={"error": "Device not found"}, status=404)
    with pytest.raises(NotFound):
        inventory().get("d/1")


@pytest.mark.parametrize(("etag", "replace", "method", "if_match"), [
    ("e-1", False, "PATCH", "e-1"),
    (None, False, "PATCH", None),
    ("e-2", True, "PUT", "e-2"),
])
@responses.activate
def test_writes_send_if_match_only_with_an_etag(etag: str | None, replace: bool, method: str,
                                                if_match: str | None) -> None:
    responses.add(method, DEVICE + "/tags", status=200)
    written = inventory().write_tags("d/1", [Tag("site", "lab"), Tag("o", 3, "x")], etag,
                                     replace=replace)
    sent = responses.calls[0].request
    assert written and sent.headers.get("If-Match") == if_match
    assert json.loads(sent.body or b"") == [{"name": "site", "value": "lab"},
                                            {"name": "o", "value": 3, "description": "x"}]


@responses.activate
def test_a_stale_etag_is_a_refused_write_not_an_error() -> None:
    responses.patch(DEVICE + "/tags", json={"error": "ETag does not match"}, status=412)
    assert inventory().write_tags("d/1", [Tag("site", "lab")], "old", replace=False) is False


@responses.activate
def test_find_keeps_only_the_exact_identity() -> None:
    responses.post(SEARCH, json=[
        record("a", {"google_iot_id": "x", "status": "preauthorized"}, site="lab"),
        record("b", {"google_iot_id": "x", "mac": "00:11", "status": "accepted"}),
    ])
    found = inventory().find({"google_iot_id": "x"})
    assert [r.id for r in found] == ["a"]
    body = json.loads(responses.calls[0].request.body or b"")
    assert body["filters"] == [{"scope": "identity", "attribute": "google_iot_id",
                                "type": "$eq", "value": "x"}]


@responses.activate
def test_every_record_is_listed_page_by_page_each_once() -> None:
    pages = [[record("a", {"k": "1"}), record("b", {"k": "2"})],
             [record("b", {"k": "2"}), record("c", {"k": "3"})],  # a shift repeats b
             [record("d", {"k": "4"})]]
    for page in pages:
        responses.post(SEARCH, json=page, headers={"X-Total-Count": "5"})
    listed = [r.id for r in inventory(per_page=2).iter_records("k")]
    assert listed == ["a", "b", "c", "d"]
    bodies = [json.loads(c.request.body or b"") for c in responses.calls]
    assert [b["page"] for b in bodies] == [1, 2, 3]
    assert bodies[0]["filters"] == [{"scope": "identity", "attribute": "k", "type": "$exists",
                                     "value": True}]


@responses.activate
def test_a_body_of_the_wrong_shape_is_a_permanent_error() -> None:
    responses.post(SEARCH, json={"devices": []})
    with pytest.raises(PermanentApiError, match="not a JSON array"):
        inventory().find({"google_iot_id": "x"})
