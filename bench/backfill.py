"""Benchmark of the backfill against the stand-ins (DESIGN.md §7), one JSON object of figures.

Parts (`--parts`, all by default): `backfill` — 2,000 new devices, Mender answering after 50 ms,
concurrency 16: wall time against the latency-bound ideal, the 2018 way (one device at a time,
a login each), CPU and Mender requests per device, a re-sync's writes; `ratelimited` — the same
under Mender's token bucket of 20 requests/s (burst 20); `resync` — a re-check of 100,000
in-sync devices, 50 ms on both services, the listings side by side and one after the other;
`plan` — dry-run plans over fakes (no HTTP) of 100,000 and 1,000,000 devices, peak RSS.

    python bench/backfill.py --json [--parts backfill,ratelimited,resync,plan] [--devices N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from backfill_plan import child as plan_child
from backfill_plan import figures as plan_figures
from backfill_resync import resync_figures
from backfill_stands import (
    PROJECT,
    child,
    create_devices,
    set_faults,
    stand_ins,
)

from bridge.config import Settings
from bridge.factory import build_service
from bridge.model import RegistryRef
from bridge.sync import Bridge

LATENCY_MS = 50
CONCURRENCY = 16
SAMPLE = 200
LIMIT_RPS, LIMIT_BURST = 20, 20
PARTS = ("backfill", "ratelimited", "resync", "plan")


def mender_requests(bridge: Bridge) -> dict[str, int]:
    return dict(bridge.mender.stats.requests_by_method)  # type: ignore[attr-defined]


def time_preauthorize(bridge: Bridge) -> list[float]:
    """Wraps the bridge's Mender client so each preauthorize's duration is recorded."""
    seconds: list[float] = []
    call = bridge.mender.preauthorize

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    bridge.mender.preauthorize = timed  # type: ignore[method-assign]
    return seconds


def reference_way(settings: Settings, ref: RegistryRef, count: int) -> float:
    """The 2018 function: per device, read the registry, log in anew, preauthorize."""
    from bridge.factory import registry as registry_of
    from bridge.identity import IdentityTemplate
    from bridge.keys import usable_keys
    from bridge.mender import MenderClient
    from bridge.model import Secret
    from bridge.sandbox.mender import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD

    registry = registry_of(settings)
    template = IdentityTemplate.parse(settings.identity_template)
    ids = [d.id for d in registry.iter_devices(ref)][:count]
    start = time.perf_counter()
    for device_id in ids:
        device = registry.get_device(ref, device_id)
        keys, _ = usable_keys(device.credentials)
        with MenderClient(settings.mender_url, username=DEFAULT_ADMIN_EMAIL,
                          password=Secret(DEFAULT_ADMIN_PASSWORD)) as client:
            client.preauthorize(template.render(device), keys[0].pem)
    return time.perf_counter() - start


def target(settings: Settings, registry: str) -> tuple[Settings, RegistryRef]:
    settings = replace(settings, iot_registries=(registry,))
    return settings, RegistryRef(settings.iot_project or PROJECT, settings.iot_location,
                                 registry)


def backfill_figures(devices: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp, \
            stand_ins(Path(tmp)) as info:
        settings = Settings.from_toml(info["config"], {})
        settings, fleet = target(settings, "bench")
        _, sample = target(settings, "bench-2018")
        create_devices(info["registry"], fleet, "dev", devices)
        create_devices(info["registry"], sample, "ref", SAMPLE)
        set_faults(info["mender"], latency_ms=LATENCY_MS)
        reference = reference_way(settings, sample, SAMPLE)
        bridge = build_service(settings, concurrency=CONCURRENCY).targets[0][0]
        latencies = time_preauthorize(bridge)
        before = sum(mender_requests(bridge).values())
        cpu, wall = time.process_time(), time.perf_counter()
        report = bridge.backfill([fleet])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        methods = mender_requests(bridge)
        resync = bridge.backfill([fleet])
        after = mender_requests(bridge)
    delta = {m: after.get(m, 0) - methods.get(m, 0) for m in after}
    ideal = devices * LATENCY_MS / 1000 / CONCURRENCY
    reference_full = reference / SAMPLE * devices
    return {
        "devices": devices,
        "backfill_seconds": round(wall, 3),
        "backfill_done": report.summary()["done"],
        "backfill_failed": report.summary()["failed"],
        "ideal_seconds": round(ideal, 3),
        "ratio_to_ideal": round(wall / ideal, 3),
        "mender_latency_ms": {"median": round(statistics.median(latencies) * 1000, 2),
                              "mean": round(statistics.fmean(latencies) * 1000, 2),
                              "p90": round(statistics.quantiles(latencies, n=10)[-1] * 1000, 2)},
        # The same bound with the latency each request actually took (stand-in, network and
        # client included): what is left is the backfill's own scheduling overhead.
        "ratio_to_observed_latency_bound": round(wall * CONCURRENCY / sum(latencies), 3),
        "cpu_ms_per_device": round(cpu * 1000 / devices, 3),
        "mender_requests_per_device": round((sum(methods.values()) - before) / devices, 4),
        "reference_sample_devices": SAMPLE,
        "reference_sample_seconds": round(reference, 3),
        "reference_extrapolated_seconds": round(reference_full, 2),
        "speedup_vs_reference": round(reference_full / wall, 1),
        "resync_changed": resync.changed,
        "resync_writes": sum(v for m, v in delta.items() if m != "GET"),
        "resync_mender_requests_by_method": delta,
    }


def ratelimited_figures(devices: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-limited-") as tmp, \
            stand_ins(Path(tmp)) as info:
        settings, fleet = target(Settings.from_toml(info["config"], {}), "limited")
        create_devices(info["registry"], fleet, "lim", devices)
        set_faults(info["mender"], latency_ms=LATENCY_MS, rate_limit_quota=LIMIT_RPS,
                   rate_limit_interval_s=LIMIT_BURST / LIMIT_RPS,
                   rate_limit_algorithm="token_bucket")
        bridge = build_service(settings, concurrency=CONCURRENCY).targets[0][0]
        wall = time.perf_counter()
        report = bridge.backfill([fleet])
        wall = time.perf_counter() - wall
        sent = sum(mender_requests(bridge).values())
    ideal = max(devices * LATENCY_MS / 1000 / CONCURRENCY, (devices - LIMIT_BURST) / LIMIT_RPS)
    return {
        "ratelimited_devices": devices,
        "ratelimited_seconds": round(wall, 2),
        "ratelimited_ideal_seconds": round(ideal, 2),
        "ratelimited_ratio_to_ideal": round(wall / ideal, 3),
        "ratelimited_429_share": round(report.stats["mender_429"] / sent, 4),
        "ratelimited_429": int(report.stats["mender_429"]),
        "ratelimited_requests": sent,
        "ratelimited_done": report.summary()["done"],
        "ratelimited_failed": report.summary()["failed"],
        "ratelimited_rate_settled": report.stats.get("mender_rate_limit"),
    }


def targets_met(f: dict[str, Any]) -> dict[str, bool]:
    checks: list[tuple[str, str, Callable[[Any], bool]]] = [
        ("ratio_to_ideal", "ratio_to_ideal<=1.15", lambda v: v <= 1.15),
        ("speedup_vs_reference", "speedup>=10", lambda v: v >= 10),
        ("cpu_ms_per_device", "cpu_ms_per_device<=3", lambda v: v <= 3),
        ("mender_requests_per_device", "requests_per_device<=1.01", lambda v: v <= 1.01),
        ("resync_writes", "resync_writes==0", lambda v: v == 0),
        ("plan_peak_rss_mb", "plan_peak_rss_mb<250", lambda v: v < 250),
        ("ratelimited_ratio_to_ideal", "ratelimited_ratio_to_ideal<=1.05", lambda v: v <= 1.05),
        ("ratelimited_429_share", "ratelimited_429_share<=0.02", lambda v: v <= 0.02),
        ("ratelimited_failed", "ratelimited_failed==0", lambda v: v == 0),
        ("resync_100k_ratio", "resync_100k_ratio<=1.3", lambda v: v <= 1.3),
        ("resync_100k_sequential_over_parallel", "resync_100k_sequential/parallel>=1.8",
         lambda v: v >= 1.8),
        ("plan_1m_peak_rss_mb", "plan_1m_peak_rss_mb<=400", lambda v: v <= 400),
    ]
    return {name: check(f[key]) for key, name, check in checks if key in f}


def main() -> None:
    warnings.filterwarnings("ignore", message="You are using a Python version",
                            category=FutureWarning)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--limited-devices", type=int, default=2000)
    parser.add_argument("--resync-devices", type=int, default=100_000)
    parser.add_argument("--plan-devices", type=int, default=100_000)
    parser.add_argument("--plan-1m-devices", type=int, default=1_000_000)
    parser.add_argument("--stand-ins-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--plan-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stand_ins_child:
        child(args.stand_ins_child[0], args.stand_ins_child[1], int(args.stand_ins_child[2]))
        return
    if args.plan_child is not None:
        plan_child(args.plan_child)
        return
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    figures: dict[str, Any] = {"load_average_1m_at_start": round(os.getloadavg()[0], 2),
                               "cpus": os.cpu_count(), "parts": parts}
    if "backfill" in parts:
        figures.update(backfill_figures(args.devices))
    if "ratelimited" in parts:
        figures.update(ratelimited_figures(args.limited_devices))
    if "resync" in parts:
        figures.update(resync_figures(args.resync_devices))
    if "plan" in parts:
        figures.update(plan_figures(args.plan_devices, "plan"))
        if args.plan_1m_devices > 0:  # 0: the million-device plan left out
            figures.update(plan_figures(args.plan_1m_devices, "plan_1m"))
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    figures["targets_met"] = targets_met(figures)
    print(json.dumps(figures, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
