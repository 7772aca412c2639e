"""Mender's inventory, for the tags the bridge writes (bridge.ports.Inventory): a device's record
with its tags' ETag, a PATCH of only the bridge's own tags (a PUT when one must go) guarded by
`If-Match`, and the records of many devices at once through the v2 search, a page at a time.

It sends through the Mender client's transport, so it shares its token, pace and retries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import requests

from bridge.mender import parse
from bridge.ports import InventoryRecord
from bridge.tags import Tag

DEVICES = "/api/management/v1/inventory/devices"
SEARCH = "/api/management/v2/inventory/filters/search"
PER_PAGE = 500  # the search's maximum page (docs/mender-api.md#listing)
FIND_PER_PAGE = 20
PRECONDITION_FAILED = 412  # a stale If-Match: someone wrote the tags since they were read


class Requester(Protocol):
    def request(self, op: str, method: str, path: str, *, url: str | None = None,
                params: Mapping[str, Any] | None = None, json: object = None,
                allow: Collection[int] = (), headers: Mapping[str, str] | None = None
                ) -> tuple[requests.Response, str]: ...


class MenderInventory:
    """`bridge.ports.Inventory` over the Mender management API."""

    def __init__(self, transport: Requester, *, per_page: int = PER_PAGE) -> None:
        self._http = transport
        self.per_page = per_page

    def find(self, identity: Mapping[str, str]) -> list[InventoryRecord]:
        filters: list[dict[str, object]] = [
            {"scope": "identity", "attribute": k, "type": "$eq", "value": v}
            for k, v in sorted(identity.items())]
        found = self._search("find inventory record", filters, 1, FIND_PER_PAGE)[0]
        # `$eq` on these attributes also matches devices whose identity has more of them;
        # inventory keeps deviceauth's `status` among the identity attributes.
        return [r for r in found if r.device_identity == dict(identity)]

    def get(self, device_id: str) -> InventoryRecord:
        path = f"{DEVICES}/{quote(device_id, safe='')}"
        response, rid = self._http.request(f"get inventory record {device_id}", "GET", path)
        record = parse.decode(response.text, _record, method="GET", path=path,
                              status=response.status_code, request_id=rid)
        # inventory sends the ETag bare (a UUID, unquoted); it is sent back as it came.
        etag = response.headers.get("ETag") or None
        return InventoryRecord(record.id, record.identity, record.tags, etag)

    def write_tags(self, device_id: str, tags: Sequence[Tag], etag: str | None, *,
                   replace: bool) -> bool:
        path = f"{DEVICES}/{quote(device_id, safe='')}/tags"
        body = [_tag_json(t) for t in tags]
        method = "PUT" if replace else "PATCH"
        response, _ = self._http.request(
            f"{'replace' if replace else 'write'} tags of device {device_id}", method, path,
            json=body, allow=(PRECONDITION_FAILED,),
            headers={"If-Match": etag} if etag else None)
        return response.status_code != PRECONDITION_FAILED

    def iter_records(self, attribute: str) -> Iterator[InventoryRecord]:
        filters = [{"scope": "identity", "attribute": attribute, "type": "$exists",
                    "value": True}]
        seen: set[str] = set()
        page = 1
        while True:
            records, total = self._search("list inventory", filters, page, self.per_page)
            # Paging is by offset: a record that a shift lists twice is handed on once.
            yield from (r for r in records if r.id not in seen)
            seen.update(r.id for r in records)
            if len(records) < self.per_page or (total is not None and
                                                page * self.per_page >= total):
                return
            page += 1

    def _search(self, op: str, filters: list[dict[str, object]], page: int,
                per_page: int) -> tuple[list[InventoryRecord], int | None]:
        body = {"page": page, "per_page": per_page, "filters": filters}
        response, rid = self._http.request(op, "POST", SEARCH, json=body)
        records = parse.decode(response.text, _records, method="POST", path=SEARCH,
                               status=response.status_code, request_id=rid)
        total = response.headers.get("X-Total-Count", "")
        return records, int(total) if total.isdigit() else None


def _tag_json(tag: Tag) -> dict[str, object]:
    out: dict[str, object] = {"name": tag.name, "value": tag.value}
    if tag.description is not None:
        out["description"] = tag.description
    return out


def _records(value: object) -> list[InventoryRecord]:
    if not isinstance(value, list):
        raise parse.BodyError("inventory search result is not a JSON array")
    return [_record(item) for item in value]


def _record(value: object) -> InventoryRecord:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise parse.BodyError("inventory device has no string 'id'")
    attributes = value.get("attributes") or []
    if not isinstance(attributes, list):
        raise parse.BodyError("inventory device attributes is not a JSON array")
    identity: dict[str, object] = {}
    tags: dict[str, Tag] = {}
    for attr in attributes:
        if not isinstance(attr, dict) or not isinstance(attr.get("name"), str):
            raise parse.BodyError("inventory attribute has no string 'name'")
        description = attr.get("description")
        if attr.get("scope") == "identity":
            identity[attr["name"]] = attr.get("value")
        elif attr.get("scope") == "tags":
            tags[attr["name"]] = Tag(attr["name"], attr.get("value"),
                                     description if isinstance(description, str) else None)
    return InventoryRecord(value["id"], identity, tags)
