"""Throughput of the Mender stand-in: preauthorize requests per second, no injected latency.

The stand-in runs in its own process (so client and server do not share a GIL); the client is
several threads, each with a pooled requests.Session. Prints JSON with the 400 req/s target
of DESIGN.md §7, and the stand-in's own CPU time per request (its threads and asynchronous
workflow jobs included), a figure a busy machine disturbs less than the rate.
Usage: python bench/sandbox.py [--json] [--requests N] [--threads T] [--tls]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TARGET_RPS = 400.0
SETTLE_S = 0.5  # longer than the stand-in's default inventory propagation delay (50 ms)
PREAUTH = "/api/management/v2/devauth/devices"
LOGIN = "/api/management/v1/useradm/auth/login"


def _serve(data_dir: str, tls: bool, ready: Any, mark: Any, stop: Any, cpu: Any) -> None:
    import ssl

    from bridge.sandbox.mender import create_app
    from bridge.sandbox.mender.crypto import ensure_tls_certificate
    from bridge.sandbox.server import serve

    context = None
    if tls:
        cert, key = ensure_tls_certificate(Path(data_dir))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    server = serve(create_app(Path(data_dir)), ssl_context=context)
    ready.put(server.url)
    mark.wait()
    started = time.process_time()
    stop.wait()
    cpu.put(time.process_time() - started)
    server.stop()


def _pubkeys(count: int) -> list[str]:
    return [ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        for _ in range(count)]


def run(total: int, threads: int, tls: bool) -> dict[str, Any]:
    context = mp.get_context("spawn")
    ready, cpu, mark, stop = context.Queue(), context.Queue(), context.Event(), context.Event()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as data_dir:
        process = context.Process(target=_serve, args=(data_dir, tls, ready, mark, stop, cpu),
                                  daemon=True)
        process.start()
        try:
            url = ready.get(timeout=60)
            verify: str | bool = str(Path(data_dir) / "tls-cert.pem") if tls else True
            result = _measure(url, verify, total, threads, mark.set)
            time.sleep(SETTLE_S)  # the workflow jobs of the last requests, counted too
            stop.set()
            server_cpu = cpu.get(timeout=60)
            return result | {"tls": tls, "server_cpu_ms_per_request":
                             round(1000 * server_cpu / total, 3)}
        finally:
            stop.set()
            process.join(timeout=10)


def _measure(url: str, verify: str | bool, total: int, threads: int,
             started: Callable[[], None]) -> dict[str, Any]:
    from bridge.sandbox.mender import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD

    token = requests.post(url + LOGIN, auth=(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD),
                          verify=verify, timeout=30).text
    keys = _pubkeys(64)
    local = threading.local()
    failures: list[int] = []

    def one(index: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
        body = {"identity_data": {"google_iot_id": f"bench-{index}"},
                "pubkey": keys[index % len(keys)]}
        response = session.post(url + PREAUTH, json=body, timeout=30, verify=verify)
        if response.status_code != 201:
            failures.append(response.status_code)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(-200, 0)))  # warm-up: connections, caches
        time.sleep(SETTLE_S)
        started()
        start = time.perf_counter()
        list(pool.map(one, range(total)))
        elapsed = time.perf_counter() - start
    rate = total / elapsed
    return {"benchmark": "sandbox_preauthorize", "requests": total, "threads": threads,
            "seconds": round(elapsed, 3), "requests_per_s": round(rate, 1),
            "target_per_s": TARGET_RPS, "meets_target": rate >= TARGET_RPS,
            "failures": len(failures)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--requests", type=int, default=3000,
                        help="preauthorize requests timed, after 200 of warm-up (default 3000)")
    parser.add_argument("--threads", type=int, default=8,
                        help="client threads, each with its own connection (default 8)")
    parser.add_argument("--tls", action="store_true", help="measure over HTTPS")
    args = parser.parse_args()
    result = run(args.requests, args.threads, args.tls)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['requests_per_s']:.0f} preauthorize requests/s "
              f"({result['requests']} requests, {result['threads']} threads, "
              f"{'HTTPS' if args.tls else 'HTTP'}; target {TARGET_RPS:.0f}/s), "
              f"{result['failures']} failures; stand-in CPU "
              f"{result['server_cpu_ms_per_request']:.2f} ms per request")


if __name__ == "__main__":
    main()
