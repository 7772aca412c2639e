"""The re-check figures of bench/backfill.py: 100,000 in-sync devices seeded into both
stand-ins, 50 ms on each; re-checked with the listings side by side (as the backfill does),
then one after the other (Mender's list one page at a time, then the registry's: before
issue 18). The ideal is the registry's pages × 50 ms, Mender's listing hidden behind it.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from backfill_stands import cpu_seconds, set_faults, stand_ins

from bridge.config import Settings
from bridge.factory import build_service
from bridge.mender.pages import PARALLEL_PAGES
from bridge.model import AuthStatus, MenderDevice, RegistryDevice, RegistryRef
from bridge.sync import Bridge

LATENCY_MS = 50
CONCURRENCY = 16
REGISTRY_PAGE = 1000  # the Google adapter's page size (bridge.registry.convert.PAGE_SIZE)


class _Listed:
    """Sets `done` once the Mender list has been read to its end."""

    def __init__(self, mender: Any, done: threading.Event) -> None:
        self.mender, self.done = mender, done

    def __getattr__(self, name: str) -> Any:
        return getattr(self.mender, name)

    def iter_devices(self, status: AuthStatus | None = None) -> Iterator[MenderDevice]:
        yield from self.mender.iter_devices(status)
        self.done.set()


class _After:
    """Lists a registry only once `done` is set."""

    def __init__(self, registry: Any, done: threading.Event) -> None:
        self.registry, self.done = registry, done

    def __getattr__(self, name: str) -> Any:
        return getattr(self.registry, name)

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        self.done.wait()
        yield from self.registry.iter_devices(ref)


def one_after_the_other(bridge: Bridge) -> Bridge:
    """The listings as before issue 18: Mender's one page at a time, then the registry's."""
    done = threading.Event()
    bridge.mender.parallel_pages = 1  # type: ignore[attr-defined]
    bridge.mender = _Listed(bridge.mender, done)  # type: ignore[assignment]
    bridge.registry = _After(bridge.registry, done)  # type: ignore[assignment]
    return bridge


def _requests(bridge: Bridge) -> int:
    return int(bridge.mender.stats.requests)  # type: ignore[attr-defined]


def resync_run(bridge: Bridge, ref: RegistryRef, pid: int) -> dict[str, float]:
    """One re-check: its wall time, Mender requests, and the CPU of each side."""
    before, cpu, stand_cpu = _requests(bridge), time.process_time(), cpu_seconds(pid)
    wall = time.perf_counter()
    report = bridge.backfill([ref])
    wall = time.perf_counter() - wall
    assert not report.changed and not report.failed, report.summary()
    return {"seconds": wall, "mender_requests": _requests(bridge) - before,
            "bridge_cpu": time.process_time() - cpu,
            "stand_ins_cpu": cpu_seconds(pid) - stand_cpu}


def mender_listing(bridge: Bridge, parallel_pages: int) -> float:
    """Seconds to read Mender's whole list with `parallel_pages` pages in flight."""
    bridge.mender.parallel_pages = parallel_pages  # type: ignore[attr-defined]
    wall = time.perf_counter()
    for _ in bridge.mender.iter_devices():
        pass
    return time.perf_counter() - wall


def resync_figures(devices: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-resync-") as tmp, \
            stand_ins(Path(tmp), "resync", devices) as info:
        settings = replace(Settings.from_toml(info["config"], {}), iot_registries=("resync",))
        fleet = RegistryRef(settings.iot_project or "", settings.iot_location, "resync")
        for url in (info["mender"], info["registry"]):
            set_faults(url, latency_ms=LATENCY_MS)
        # Side by side first: the one after the other then reads stand-ins already warm.
        side_by_side = build_service(settings, concurrency=CONCURRENCY).targets[0][0]
        now = resync_run(side_by_side, fleet, info["pid"])
        before = one_after_the_other(build_service(settings,
                                                   concurrency=CONCURRENCY).targets[0][0])
        then = resync_run(before, fleet, info["pid"])
        listing = {n: mender_listing(side_by_side, n) for n in (PARALLEL_PAGES, 1)}
    pages = math.ceil(devices / REGISTRY_PAGE)
    ideal = pages * LATENCY_MS / 1000
    prefix = f"resync_{devices // 1000}k" if devices % 1000 == 0 else f"resync_{devices}"
    return {
        f"{prefix}_seconds": round(now["seconds"], 2),
        f"{prefix}_ideal_seconds": round(ideal, 2),
        f"{prefix}_ratio": round(now["seconds"] / ideal, 3),
        f"{prefix}_requests": int(now["mender_requests"]) + pages,
        f"{prefix}_mender_requests": int(now["mender_requests"]),
        f"{prefix}_registry_pages": pages,
        f"{prefix}_bridge_cpu_seconds": round(now["bridge_cpu"], 2),
        f"{prefix}_stand_ins_cpu_seconds": round(now["stand_ins_cpu"], 2),
        f"{prefix}_sequential_seconds": round(then["seconds"], 2),
        f"{prefix}_sequential_over_parallel": round(then["seconds"] / now["seconds"], 2),
        # Mender's list alone, read with 8 pages in flight, then one page at a time.
        f"{prefix}_mender_listing_seconds": round(listing[PARALLEL_PAGES], 2),
        f"{prefix}_mender_listing_sequential_seconds": round(listing[1], 2),
    }


