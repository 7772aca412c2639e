"""Mender's inventory read over its own API (never through the bridge), as a person or a
dynamic group sees it: a device's tags and their ETag by identity, a person's own tag written
with If-Match, and the devices a tag filter selects."""

from __future__ import annotations

from typing import Any

import requests

INVENTORY = "/api/management/v1/inventory/devices"
SEARCH = "/api/management/v2/inventory/filters/search"


class InventoryView:
    def __init__(self, url: str, token: str, ca_bundle: str | None) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle or True
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _search(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self.session.post(self.url + SEARCH, timeout=10, json={
            "page": 1, "per_page": 500, "filters": filters})
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return found

    def mender_id(self, device_id: str) -> str | None:
        found = self._search([{"scope": "identity", "attribute": "google_iot_id",
                               "type": "$eq", "value": device_id}])
        return found[0]["id"] if found else None

    def record(self, device_id: str) -> tuple[dict[str, Any], str | None]:
        """(tag name → value, the tags' ETag) of the device with this google_iot_id; ({},
        None) while inventory has no record of it."""
        mender_id = self.mender_id(device_id)
        if mender_id is None:
            return {}, None
        answer = self.session.get(f"{self.url}{INVENTORY}/{mender_id}", timeout=10)
        answer.raise_for_status()
        tags = {a["name"]: a["value"] for a in answer.json()["attributes"]
                if a["scope"] == "tags"}
        return tags, answer.headers.get("ETag")

    def tags(self, device_id: str) -> dict[str, Any]:
        return self.record(device_id)[0]

    def person_tags(self, device_id: str, **values: str) -> None:
        """A person's PATCH of their own tags, guarded by the current ETag."""
        mender_id = self.mender_id(device_id)
        assert mender_id is not None, device_id
        _, etag = self.record(device_id)
        answer = self.session.patch(
            f"{self.url}{INVENTORY}/{mender_id}/tags", timeout=10,
            headers={"If-Match": etag} if etag else {},
            json=[{"name": n, "value": v} for n, v in values.items()])
        answer.raise_for_status()

    def selected(self, **tags: str) -> set[str]:
        """The google_iot_ids a dynamic group on these tags would hold."""
        found = self._search([{"scope": "tags", "attribute": n, "type": "$eq", "value": v}
                              for n, v in tags.items()])
        return {a["value"] for d in found for a in d["attributes"]
                if (a["scope"], a["name"]) == ("identity", "google_iot_id")}
