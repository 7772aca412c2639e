"""Device listing: per_page=500, `Link: rel=next` followed lazily, never to another host."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from mender_bodies import BASE, DEVICES, TOKEN, device

from bridge.errors import PermanentApiError
from bridge.mender import MenderClient

LIST_PATH = "/api/management/v2/devauth/devices"


def _fleet_server(total: int, pages_served: list[int], link_host: str = "") -> Any:
    """Answers list pages as deviceauth does: `Link` with first, prev and next (only when
    another page exists), the path relative to the server (docs/mender-api.md#listing)."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(str(request.url)).query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        pages_served.append(page)
        start = (page - 1) * per_page
        ids = range(start, min(start + per_page, total))
        link = f"<{link_host}{LIST_PATH}?page={{}}&per_page={per_page}>; rel={{}}"
        links = [link.format(1, '"first"')]
        if page > 1:
            links.append(link.format(page - 1, '"prev"'))
        if start + per_page < total:
            links.append(link.format(page + 1, '"next"'))
        body = "[" + ",".join(_device_json(i) for i in ids) + "]"
        return 200, {"Link": ", ".join(links), "Content-Type": "application/json"}, body

    return answer


def _device_json(i: int) -> str:
    return json.dumps(device(f"dev-{i:06d}"))


def test_2501_devices_in_six_lazy_pages(client: MenderClient,
                                        mender_api: responses.RequestsMock) -> None:
    pages: list[int] = []
    mender_api.add_callback("GET", DEVICES, callback=_fleet_server(2501, pages))
    devices = client.iter_devices()
    assert pages == []  # a generator: nothing is asked before the first device is wanted
    first = list(itertools.islice(devices, 500))
    assert pages == [1]  # the whole first page consumed, the second not asked for yet
    assert first[0].id == "dev-000000" and first[-1].id == "dev-000499"
    assert next(devices).id == "dev-000500"
    assert pages == [1, 2]
    rest = list(devices)
    assert len(rest) == 2000 and rest[-1].id == "dev-002500"
    assert pages == [1, 2, 3, 4, 5, 6]
    assert client.stats.requests_by_method == {"GET": 6}
    for call in mender_api.calls:
        query = parse_qs(urlsplit(str(call.request.url)).query)
        assert query["per_page"] == ["500"]
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN.reveal()}"
        assert urlsplit(str(call.request.url)).path == LIST_PATH


def test_a_next_link_naming_another_host_stays_on_the_configured_server(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    pages: list[int] = []
    # A gateway may build links from its upstream's address; the token must not go there.
    mender_api.add_callback("GET", DEVICES,
                            callback=_fleet_server(501, pages, link_host="http://deviceauth:8080"))
    assert len(list(client.iter_devices())) == 501
    assert pages == [1, 2]
    assert all(str(c.request.url).startswith(BASE + LIST_PATH) for c in mender_api.calls)


def test_an_empty_fleet_is_one_request(client: MenderClient,
                                       mender_api: responses.RequestsMock) -> None:
    mender_api.get(DEVICES, json=[], headers={
        "Link": f'<{LIST_PATH}?page=1&per_page=500>; rel="first"'})
    assert list(client.iter_devices()) == []
    assert len(mender_api.calls) == 1


def test_a_next_link_to_the_same_page_is_an_error(
        client: MenderClient, mender_api: responses.RequestsMock) -> None:
    mender_api.get(DEVICES, json=[device("d1")], headers={
        "Link": f'<{LIST_PATH}?per_page=500&page=1>; rel="next"'})
    with pytest.raises(PermanentApiError, match="points to itself"):
        list(client.iter_devices())
    assert len(mender_api.calls) == 1
