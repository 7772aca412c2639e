"""Benchmark of the event path through Google's Pub/Sub emulator (DESIGN.md §7): CreateDevice
events from the registry stand-in's Logging sink, Mender answering each request after 50 ms.

- push: a push subscription to functions/main.py `on_push` (a real functions-framework), the
  devices written at 20 per second: time from the registry write to the device in Mender.
- listen ×1 and ×3: a burst of N events queued on the pull subscription, then the workers
  started: throughput against the latency-bound ideal (N × 50 ms / (workers × CONCURRENCY)),
  from the first device admitted to the last; then, for ×1, devices written at 20 per second
  with the worker running: time from the registry write to the device in Mender.

    python bench/events.py --json [--events N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.pubsub.emulator import Emulator
from bridge.pubsub.topology import DeliveryPolicy
from bridge.sandbox.faults import Faults
from bridge.sandbox.launcher import Sandbox

ROOT = Path(__file__).resolve().parents[1]
LATENCY_MS = 50
RATE = 20.0  # events per second of the paced runs
CONCURRENCY = 16
DEVICES = "/v1/projects/sandbox-project/locations/us-central1/registries/sandbox-registry/devices"
POLICY = DeliveryPolicy(max_delivery_attempts=10, minimum_backoff_s=1.0, maximum_backoff_s=10.0)


def pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Writer:
    """Creates devices over the registry stand-in's REST API; remembers when each was written."""

    def __init__(self, registry_url: str) -> None:
        self.url, self._local = registry_url + DEVICES, threading.local()
        self.written: dict[str, float] = {}

    def create(self, device_id: str, key: str) -> None:
        session = getattr(self._local, "session", None) or requests.Session()
        self._local.session = session
        answer = session.post(self.url, timeout=30, json={"id": device_id, "credentials": [
            {"publicKey": {"format": "ES256_PEM", "key": key}}]})
        answer.raise_for_status()
        self.written[device_id] = time.time()

    def burst(self, ids: list[str]) -> None:
        keys = [pem() for _ in ids]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self.create, ids, keys))

    def paced(self, ids: list[str], rate: float) -> None:
        keys = [pem() for _ in ids]
        start = time.monotonic()
        for i, (device_id, key) in enumerate(zip(ids, keys, strict=True)):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            self.create(device_id, key)


def admitted(box: Sandbox) -> dict[str, list[float]]:
    """Identity → created_ts (epoch seconds) of each Mender device that has it."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {box.token.reveal()}"
    found: dict[str, list[float]] = {}
    page = 1
    while True:
        answer = session.get(f"{box.mender_url}/api/management/v2/devauth/devices",
                             params={"page": page, "per_page": 500}, timeout=30)
        answer.raise_for_status()
        for device in answer.json():
            stamp = datetime.fromisoformat(device["created_ts"].replace("Z", "+00:00"))
            found.setdefault(device["identity_data"]["google_iot_id"], []).append(
                stamp.timestamp())
        if len(answer.json()) < 500:
            return found
        page += 1


def wait_admitted(box: Sandbox, ids: list[str], timeout: float) -> dict[str, list[float]]:
    deadline = time.monotonic() + timeout
    while True:
        found = admitted(box)
        if all(i in found for i in ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 3), "p90": round(cuts[89], 3), "p99": round(cuts[98], 3)}


class Tally:
    """Lost (never admitted) and duplicate (a second Mender device for one identity)."""

    def __init__(self) -> None:
        self.lost = self.duplicates = 0

    def add(self, ids: list[str], found: dict[str, list[float]]) -> list[float]:
        self.lost += sum(1 for i in ids if i not in found)
        self.duplicates += sum(len(found[i]) - 1 for i in ids if i in found)
        return [min(found[i]) for i in ids if i in found]


@contextmanager
def processes(argvs: list[list[str]], env: dict[str, str], logs: Path) -> Iterator[list[Any]]:
    """Children in their own process groups, killed (group and all) on the way out."""
    started = []
    try:
        for n, argv in enumerate(argvs):
            with (logs / f"child{n}-{time.monotonic_ns()}.log").open("wb") as out:
                started.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out,
                                                stderr=subprocess.STDOUT,
                                                start_new_session=True))
        yield started
    finally:
        for child in started:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)


def sandbox(emulator: Emulator, work: Path, name: str, push: tuple[str, ...] = ()) -> Sandbox:
    return Sandbox(work / name, tls=False, pubsub="emulator",
                   pubsub_emulator_host=emulator.host_port, pubsub_project=f"bench-{name}",
                   pubsub_policy=POLICY, audit_endpoints=push,
                   mender_faults=Faults(latency_ms=LATENCY_MS)).start()


def child_env(box: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
    env.update(PYTHONUNBUFFERED="1", CONCURRENCY=str(CONCURRENCY), LOG_LEVEL="WARNING")
    for key, value in tomllib.loads(box.config_path.read_text()).items():
        env[key.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    return env


def run_push(emulator: Emulator, work: Path, events: int, tally: Tally) -> dict[str, float]:
    port = free_port()
    box = sandbox(emulator, work, "push", (f"http://127.0.0.1:{port}/",))
    try:
        binary = str(Path(sys.executable).parent / "functions-framework")
        argv = [binary, "--target", "on_push", "--source", str(ROOT / "functions/main.py"),
                "--host", "127.0.0.1", "--port", str(port)]
        with processes([argv], child_env(box), work):
            wait_http(f"http://127.0.0.1:{port}/")
            writer, ids = Writer(box.registry_url), [f"push-{i:05d}" for i in range(events)]
            writer.paced(ids, RATE)
            found = wait_admitted(box, ids, 120)
        times = tally.add(ids, found)
        delays = [t - writer.written[i] for i, t in zip(ids, times, strict=False)
                  if i in found]
        return {f"push_{k}_s": v for k, v in percentiles(delays).items()}
    finally:
        box.stop()


def run_listen(emulator: Emulator, work: Path, events: int, workers: int, tally: Tally,
               paced: int) -> dict[str, float]:
    box = sandbox(emulator, work, f"listen{workers}")
    try:
        ids = [f"burst-{i:05d}" for i in range(events)]
        Writer(box.registry_url).burst(ids)
        status = f"{box.registry_url}/_sandbox/audit-status"
        while requests.get(status, timeout=10).json()["delivered"] < events:
            time.sleep(0.2)  # every event is on the topic before a worker starts
        argv = [sys.executable, "-W", "ignore", "-m", "bridge", "listen", "--config",
                str(box.config_path)]
        with processes([argv] * workers, child_env(box), work):
            found = wait_admitted(box, ids, 300)
            firsts = sorted(tally.add(ids, found))
            took = firsts[-1] - firsts[0] + LATENCY_MS / 1000
            ideal = events * LATENCY_MS / 1000 / (workers * CONCURRENCY)
            result = {f"listen{workers}_throughput_ratio": round(ideal / took, 3),
                      f"listen{workers}_events_per_s": round(events / took, 1),
                      f"listen{workers}_ideal_s": round(ideal, 3),
                      f"listen{workers}_s": round(took, 3)}
            if paced:
                writer, late = Writer(box.registry_url), [f"paced-{i:05d}" for i in range(paced)]
                writer.paced(late, RATE)
                found = wait_admitted(box, late, 120)
                delays = [t - writer.written[i] for i, t in zip(
                    [i for i in late if i in found], tally.add(late, found), strict=True)]
                result.update({f"listen{workers}_{k}_s": v
                               for k, v in percentiles(delays).items()})
        return result
    finally:
        box.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str) -> None:
    for _ in range(600):
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} does not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--paced", type=int, default=200,
                        help="events written at 20/s to the running listen worker")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with Emulator.start(work / "emulator.log") as emulator:
            result: dict[str, Any] = {"events": args.events, "mender_latency_ms": LATENCY_MS,
                                      "concurrency": CONCURRENCY, "push_rate_per_s": RATE}
            result.update(run_push(emulator, work, args.events, tally))
            result.update(run_listen(emulator, work, args.events, 1, tally, args.paced))
            result.update(run_listen(emulator, work, args.events, 3, tally, 0))
    result.update(lost=tally.lost, duplicates=tally.duplicates,
                  load_average_1m=[round(load_start, 2), round(os.getloadavg()[0], 2)],
                  cpus=os.cpu_count())
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
