"""Device listing: per_page=500, the first page, then the count and several pages in flight,
then one page at a time while the server says another follows; each device once, even when
devices are added or removed while the list is read (`responses` interleaves the changes)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from mender_bodies import BASE, DEVICES, TOKEN, device

from bridge.errors import PermanentApiError
from bridge.mender import MenderClient
from bridge.mender.pages import PARALLEL_PAGES

LIST_PATH = "/api/management/v2/devauth/devices"
Hook = Callable[["Fleet"], None]
COUNT = 0  # the hook key of the count request


class Fleet:
    """deviceauth's list over a changing set of devices: ordered by id (one status), paged by
    offset, `Link` with first, prev and next (only when another page exists), the count. A
    hook (a change while listing) runs when its page is asked for, before it is answered, or
    for COUNT right after the count is taken."""

    def __init__(self, total: int, hooks: dict[int, Hook] | None = None,
                 link_host: str = "") -> None:
        self.ids = [f"dev-{i:06d}" for i in range(total)]
        self.hooks = dict(hooks or {})
        self.link_host = link_host
        self.asked: list[int | str] = []
        self.lock = threading.Lock()

    def install(self, api: responses.RequestsMock) -> None:
        api.add_callback("GET", f"{DEVICES}/count", callback=self.count)
        api.add_callback("GET", DEVICES, callback=self.page)

    def count(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with self.lock:
            self.asked.append("count")
            body = json.dumps({"count": len(self.ids)})
            hook = self.hooks.pop(COUNT, None)
        if hook is not None:
            hook(self)
        return 200, {"Content-Type": "application/json"}, body

    def page(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(str(request.url)).query)
        number, per_page = int(query["page"][0]), int(query["per_page"][0])
        with self.lock:
            self.asked.append(number)
            hook = self.hooks.pop(number, None)
        if hook is not None:
            hook(self)
        with self.lock:
            start = (number - 1) * per_page
            ids = self.ids[start:start + per_page]
            more = start + per_page < len(self.ids)
        link = f"<{self.link_host}{LIST_PATH}?page={{}}&per_page={per_page}>; rel={{}}"
        links = [link.format(1, '"first"')]
        if number > 1:
            links.append(link.format(number - 1, '"prev"'))
        if more:
            links.append(link.format(number + 1, '"next"'))
        body = json.dumps([device(i) for i in ids])
        return 200, {"Link": ", ".join(links), "Content-Type": "application/json"}, body

    def change(self, add: list[str] = (), remove: list[str] = ()) -> None:  # type: ignore[assignment]
        with self.lock:
            self.ids = sorted(set(self.ids) - set(remove) | set(add))


def _listed(client: MenderClient) -> list[str]:
    return [d.id for d in client.iter_devices()]


def _client(parallel: int) -> MenderClient:
    return MenderClient(BASE, token=TOKEN, retries=0, backoff=0.0, parallel_pages=parallel)


def test_pages_are_fetched_side_by_side_and_handed_on_in_order(
        mender_api: responses.RequestsMock) -> None:
    together = threading.Barrier(4, timeout=10)  # broken unless 4 pages are asked at once
    fleet = Fleet(2501, {n: lambda _: together.wait() for n in (2, 3, 4, 5)})
    fleet.install(mender_api)
    with _client(PARALLEL_PAGES) as client:
        listed = _listed(client)
        assert client.stats.requests_by_method == {"GET": 7}
    assert listed == fleet.ids  # every device once, in the server's order
    assert fleet.asked[:2] == [1, "count"] and sorted(fleet.asked[2:]) == [2, 3, 4, 5, 6]
    for call in mender_api.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN.reveal()}"
        if urlsplit(str(call.request.url)).path == LIST_PATH:
            assert parse_qs(urlsplit(str(call.request.url)).query)["per_page"] == ["500"]


def test_a_bounded_number_of_pages_is_read_ahead(client: MenderClient,
                                                 mender_api: responses.RequestsMock) -> None:
    fleet = Fleet(20 * 500)
    fleet.install(mender_api)
    devices = client.iter_devices()
    assert fleet.asked == []  # a generator: nothing is asked before the first device is wanted
    for consumed, found in enumerate(devices):
        pages_handed_on = consumed // 500 + 1
        asked = [n for n in fleet.asked if n != "count"]
        assert len(asked) <= pages_handed_on + PARALLEL_PAGES, (consumed, asked)
        assert found.id == fleet.ids[consumed]
    assert len([n for n in fleet.asked if n != "count"]) == 20


def test_a_small_fleet_is_one_request_without_a_count(client: MenderClient,
                                                      mender_api: responses.RequestsMock) -> None:
    fleet = Fleet(500)
    fleet.install(mender_api)
    assert _listed(client) == fleet.ids
    assert fleet.asked == [1]


def test_an_empty_page_with_a_next_link_ends_the_listing(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    # A server (or a proxy) that always says another page follows must not be followed past an
    # empty page: that would ask for pages forever.
    mender_api.get(DEVICES, json=[], headers={
        "Link": f'<{LIST_PATH}?page=2&per_page=500>; rel="next"'})
    assert _listed(client) == []
    assert len(mender_api.calls) == 1


def test_devices_added_while_listing_are_listed_past_the_count(
        mender_api: responses.RequestsMock) -> None:
    results = []
    for parallel in (PARALLEL_PAGES, 1):  # side by side, then one page after the other
        late = [f"dev-9{i:05d}" for i in range(1200)]  # sorted after every other device
        fleet = Fleet(1700, {COUNT: lambda f, late=late: f.change(add=late)})
        fleet.install(mender_api)
        with _client(parallel) as client:
            results.append(_listed(client))
        mender_api.reset()
        assert results[-1] == fleet.ids  # the original 4 pages and the 3 more the count missed
    assert results[0] == results[1]


def test_devices_removed_at_the_end_while_listing_end_it_at_the_empty_page(
        mender_api: responses.RequestsMock) -> None:
    results = []
    for parallel in (PARALLEL_PAGES, 1):
        fleet = Fleet(2400)
        gone = fleet.ids[1400:]
        fleet.hooks = {COUNT: lambda f, gone=gone: f.change(remove=gone)}
        fleet.install(mender_api)
        with _client(parallel) as client:
            results.append(_listed(client))
        mender_api.reset()
        assert results[-1] == fleet.ids  # the survivors, each once; the empty pages end it
    assert results[0] == results[1]


def test_devices_added_in_front_while_listing_shift_the_pages_but_are_not_listed_twice(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    fleet = Fleet(2600)
    original = list(fleet.ids)
    early = [f"dev-0{i:05d}a" for i in range(0, 2600, 7)]  # sorted among the first pages
    fleet.hooks = {3: lambda f: f.change(add=early)}
    fleet.install(mender_api)
    listed = _listed(client)
    assert len(listed) == len(set(listed))  # the shift repeats devices; each is handed on once
    assert set(original) <= set(listed) <= set(original) | set(early)


def test_devices_removed_in_front_while_listing_leave_no_device_twice(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    # Offset paging: the devices the shift moves onto a page already read are missed, by any
    # listing, one page at a time or not; the backfill then meets one as a 409 and re-reads it.
    fleet = Fleet(2600)
    original = list(fleet.ids)
    fleet.hooks = {COUNT: lambda f: f.change(remove=original[:600])}
    fleet.install(mender_api)
    listed = _listed(client)
    assert len(listed) == len(set(listed)) and set(listed) <= set(original)
    # Page 1 was read before the change, pages 2… after it, from offset 500 of what is left.
    assert set(original[:500]) | set(original[1100:]) <= set(listed)


def test_pages_are_asked_by_number_of_the_configured_server_whatever_the_links_name(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    # A gateway may build links from its upstream's address; the token must not go there.
    fleet = Fleet(501, link_host="http://deviceauth:8080")
    fleet.install(mender_api)
    assert len(_listed(client)) == 501
    assert all(str(c.request.url).startswith(BASE + LIST_PATH) for c in mender_api.calls)


def test_a_server_that_ignores_the_page_number_is_an_error(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    page: list[dict[str, Any]] = [device(f"d{i:03d}") for i in range(500)]
    mender_api.get(DEVICES, json=page, headers={
        "Link": f'<{LIST_PATH}?per_page=500&page=2>; rel="next"'})
    mender_api.get(f"{DEVICES}/count", json={"count": 1500})
    with pytest.raises(PermanentApiError, match="repeats devices"):
        _listed(client)
    assert len(mender_api.calls) <= 2 + PARALLEL_PAGES
