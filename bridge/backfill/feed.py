"""The registries listed in a thread of their own, so their pages arrive while Mender is being
listed: a registry lists one token-paged page after another and is the longer of the two.
What is read ahead is bounded (AHEAD batches of BATCH devices); the thread stops when the
feed is closed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from bridge.model import RegistryDevice, RegistryRef
from bridge.ports import Registry

BATCH = 256
AHEAD = 128  # batches: at most ~33,000 devices read ahead


@dataclass(frozen=True)
class Listed:
    """Devices of `ref` in listing order; `end`: the last of them; `error`: why the listing
    of `ref` stopped before its end (an ApiError, or anything else, raised again)."""

    ref: RegistryRef
    devices: list[RegistryDevice]
    end: bool = False
    error: BaseException | None = None


class Feed:
    """Lists `refs` in turn in a background thread; iterate it for the batches, in order."""

    def __init__(self, registry: Registry, refs: Sequence[RegistryRef], *, batch: int = BATCH,
                 ahead: int = AHEAD) -> None:
        self._registry, self._refs, self._batch = registry, list(refs), batch
        self._queue: queue.Queue[Listed] = queue.Queue(maxsize=ahead)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._list, name="registry-list", daemon=True)
        self.listed = 0  # devices listed so far (read by the progress line)
        self.finished = False  # every registry listed: `listed` is the total

    def __enter__(self) -> Feed:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)  # unblocks a put that waits for room

    def __iter__(self) -> Iterator[Listed]:
        ended = 0
        while ended < len(self._refs):
            item = self._queue.get()
            ended += item.end or item.error is not None
            yield item

    def _list(self) -> None:
        for ref in self._refs:
            batch: list[RegistryDevice] = []
            try:
                for device in self._registry.iter_devices(ref):
                    batch.append(device)
                    self.listed += 1
                    if len(batch) >= self._batch:
                        if not self._put(Listed(ref, batch)):
                            return
                        batch = []
            except BaseException as exc:  # handed to the reading thread, raised there
                if not self._put(Listed(ref, batch, error=exc)):
                    return
                continue
            if not self._put(Listed(ref, batch, end=True)):
                return
        self.finished = True

    def _put(self, item: Listed) -> bool:
        """Queue `item` when there is room; False once the feed is closed."""
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False
