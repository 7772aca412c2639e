"""Mender's device list read with several pages in flight: deviceauth pages by number (an
offset), so once the first page says more follow and the count says how many, the pages up to
it are fetched side by side, and after them one at a time for as long as the server says
another follows (devices added meanwhile). Pages are handed on in order, a bounded number
ahead; a device that a shift between two pages lists twice is handed on once.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from bridge.model import MenderDevice

PARALLEL_PAGES = 8


@dataclass(frozen=True)
class Page:
    devices: list[MenderDevice]
    more: bool  # the server's `Link: rel="next"`


class RepeatedPage(Exception):
    """A full page of devices all listed before: the server ignores the page number."""


def devices(fetch: Callable[[int], Page], count: Callable[[], int], per_page: int,
            parallel: int = PARALLEL_PAGES) -> Iterator[MenderDevice]:
    """Every device of the pages `fetch(1)`, `fetch(2)`… once, until a page is empty or says
    no other follows. `count()` (the devices there are) is asked only if a second page is."""
    seen: set[str] = set()
    for page in _pages(fetch, count, per_page, parallel):
        fresh = [d for d in page.devices if d.id not in seen]
        if not fresh and len(page.devices) >= per_page:
            raise RepeatedPage
        seen.update(d.id for d in fresh)
        yield from fresh


def _pages(fetch: Callable[[int], Page], count: Callable[[], int], per_page: int,
           parallel: int) -> Iterator[Page]:
    page = fetch(1)
    yield page
    if not page.more or not page.devices:
        return  # an empty page ends the list, whatever its links say
    last = max(2, math.ceil(count() / per_page))
    pool = ThreadPoolExecutor(parallel, thread_name_prefix="mender-list")
    pending: deque[Future[Page]] = deque()
    number = 2
    try:
        while True:
            # Up to the count's last page, `parallel` ahead; past it, one after the other.
            while number <= last and len(pending) < parallel:
                pending.append(pool.submit(fetch, number))
                number += 1
            if not pending:
                pending.append(pool.submit(fetch, number))
                number += 1
            page = pending.popleft().result()
            yield page
            if not page.more or not page.devices:
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
