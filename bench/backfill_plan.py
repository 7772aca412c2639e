"""The dry-run plan figures of bench/backfill.py: a backfill over fakes (no HTTP) of a fleet made
on the fly, half of it already in Mender, in a child process whose peak RSS is the figure.

The registry fake yields devices as it is read and keeps none; the Mender fake yields each
device with a distinct pubkey string, as parsed JSON would, so no PEM is shared by chance.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.model import (
    AuthSet,
    AuthStatus,
    Credential,
    CredentialFormat,
    MenderDevice,
    RegistryDevice,
    RegistryRef,
)
from bridge.ports import Pace

KEYS_EC, KEYS_RSA = 64, 16


class Registry:
    """Yields devices made on the fly, so the registry side holds nothing."""

    def __init__(self, count: int, keys: list[tuple[CredentialFormat, str]]) -> None:
        self.count, self.keys = count, keys

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        for i in range(self.count):
            fmt, key = self.keys[i % len(self.keys)]
            yield RegistryDevice(ref, f"dev{i:07d}", str(10**15 + i), (Credential(key, fmt),))


class Mender:
    """Every other device of the fleet already in Mender, each pubkey a distinct string."""

    def __init__(self, count: int, keys: list[tuple[CredentialFormat, str]]) -> None:
        self.count, self.keys = count, keys

    def pace(self) -> Pace:
        return Pace(None, 0, 0)

    def iter_devices(self, status: AuthStatus | None = None) -> Iterator[MenderDevice]:
        for i in range(0, self.count, 2):
            key = (self.keys[i % len(self.keys)][1] + "\n")[:-1]
            yield MenderDevice(f"{i:024x}", {"google_iot_id": f"dev{i:07d}"},
                               AuthStatus.ACCEPTED, False,
                               (AuthSet(f"a{i:023x}", key, AuthStatus.ACCEPTED),))


def peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries it over an exec from
    the forking parent, whose peak it may be."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(count: int) -> None:
    """Plan `count` devices (dry run) and print the figures as JSON."""
    from backfill_stands import pem

    from bridge.reconcile import Policy
    from bridge.sync import Bridge

    keys = [(CredentialFormat.ES256_PEM, pem(ec.generate_private_key(ec.SECP256R1())))
            for _ in range(KEYS_EC)]
    keys += [(CredentialFormat.RSA_PEM, pem(rsa.generate_private_key(
        public_exponent=65537, key_size=2048))) for _ in range(KEYS_RSA)]
    baseline = peak_rss_mb()
    bridge = Bridge(Registry(count, keys), Mender(count, keys), Policy())  # type: ignore[arg-type]
    start, cpu = time.perf_counter(), time.process_time()
    report = bridge.backfill([RegistryRef("bench-project", "europe-west1", "bench")],
                             dry_run=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = peak_rss_mb()
    print(json.dumps({"devices": count, "seconds": round(seconds, 2),
                      "cpu_us_per_device": round(cpu * 1e6 / count, 1),
                      "peak_rss_mb": peak, "baseline_rss_mb": baseline,
                      "planned": report.summary()["planned"],
                      "unchanged": report.summary()["unchanged"]}))


def figures(count: int, prefix: str) -> dict[str, object]:
    """The figures of a plan of `count` devices, measured in a child process."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("backfill.py")), "--plan-child",
         str(count)], capture_output=True, text=True, check=True, start_new_session=True)
    found = json.loads(done.stdout)
    return {f"{prefix}_{key}": value for key, value in found.items()}
