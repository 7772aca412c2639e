"""The stand-ins for bench/backfill.py: both served by `Sandbox` in a child process (its own
GIL), optionally seeded first with an in-sync fleet written straight into their SQLite stores
(no HTTP, no audit events, no inventory jobs), and devices created over HTTP in a registry.

Seeding uses the stand-ins' own store classes and serializers: for the registry,
`bridge.sandbox.registry.store.Store.insert_device` with the body `Service.create_device`
would store (credentials through `resources.device_fields`); for Mender, one transaction of
`Tx.insert_device` + `Tx.insert_auth_set` (`preauthorized`, the identity hashed and
serialized by `bridge.sandbox.mender.canonical`), as deviceauth's preauthorize writes them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.model import RegistryRef

RSA_POOL = 32  # RSA generation is slow: a pool of distinct keys, reused round-robin
SEED_KEYS = 1000  # distinct EC keys for a seeded fleet, reused round-robin
PROJECT, LOCATION = "sandbox-project", "us-central1"


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_pems(count: int) -> Iterator[tuple[str, str]]:
    rsa_keys = [pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
                for _ in range(min(RSA_POOL, count))]
    for i in range(count):
        if i % 2:
            yield "RSA_PEM", rsa_keys[(i // 2) % len(rsa_keys)]
        else:
            yield "ES256_PEM", pem(ec.generate_private_key(ec.SECP256R1()))


def create_devices(registry_url: str, ref: RegistryRef, prefix: str, count: int) -> None:
    """`count` devices in `ref` over the registry stand-in's REST API (8 at a time)."""
    session = requests.Session()
    base = f"{registry_url}/v1/projects/{ref.project}/locations/{ref.location}/registries"
    session.post(base, json={"id": ref.registry}, timeout=30)  # 409 when it exists: fine

    def create(item: tuple[int, tuple[str, str]]) -> None:
        i, (fmt, key) = item
        body = {"id": f"{prefix}{i:06d}",
                "credentials": [{"publicKey": {"format": fmt, "key": key}}]}
        session.post(f"{base}/{ref.registry}/devices", json=body, timeout=30).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, enumerate(key_pems(count))))


def seed(data_dir: Path, registry: str, count: int) -> None:
    """`count` devices `seed000000`… in `registry`, each preauthorized in Mender with its key."""
    from bridge.sandbox.mender import canonical
    from bridge.sandbox.mender.store import Store as MenderStore
    from bridge.sandbox.registry.resources import device_fields
    from bridge.sandbox.registry.store import Store as RegistryStore

    keys = [pem(ec.generate_private_key(ec.SECP256R1())) for _ in range(SEED_KEYS)]
    reg = (PROJECT, LOCATION, registry)
    path = f"projects/{PROJECT}/locations/{LOCATION}/registries/{registry}"
    registries = RegistryStore(data_dir / "registry.sqlite")
    registries.add_registry(PROJECT, LOCATION, {
        "id": registry, "name": path, "credentials": [],
        "mqttConfig": {"mqttEnabledState": "MQTT_ENABLED"},
        "httpConfig": {"httpEnabledState": "HTTP_ENABLED"}})
    mender = MenderStore(data_dir / "mender.sqlite")
    with mender.tx() as tx:
        for i in range(count):
            device_id, key = f"seed{i:06d}", keys[i % SEED_KEYS]
            body = {"id": device_id, **device_fields(
                {"credentials": [{"publicKey": {"format": "ES256_PEM", "key": key}}]},
                {"credentials", "metadata", "blocked"})}
            num_id = str(10**15 + i)
            body.update(numId=num_id, name=f"{path}/devices/{num_id}",
                        gatewayConfig={"gatewayType": "NON_GATEWAY"},
                        config={"version": "1", "cloudUpdateTime": "2026-01-01T00:00:00Z"})
            registries.insert_device(reg, body, ())
            identity = {"google_iot_id": device_id}
            id_hash, mender_id = canonical.identity_hash(identity), f"m{i:023d}"
            tx.insert_device(mender_id, id_hash, canonical.dumps(identity), "preauthorized")
            tx.insert_auth_set(mender_id, id_hash, key, "preauthorized")
    registries.close()
    mender.close()


def child(data_dir: str, seed_registry: str, seed_count: int) -> None:
    """The child process: seed, serve both stand-ins, print where, stop at end of stdin."""
    from bridge.sandbox.launcher import Sandbox

    if seed_count:
        seed(Path(data_dir), seed_registry, seed_count)
    sandbox = Sandbox(Path(data_dir), tls=False).start()
    print(json.dumps({"config": str(sandbox.config_path), "mender": sandbox.mender_url,
                      "registry": sandbox.registry_url, "pid": os.getpid()}), flush=True)
    sys.stdin.read()
    sandbox.stop()


@contextmanager
def stand_ins(data_dir: Path, seed_registry: str = "", seed_count: int = 0
              ) -> Iterator[dict[str, Any]]:
    """Both stand-ins in a child process of their own (process group), seeded if asked."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("backfill.py")), "--stand-ins-child",
         str(data_dir), seed_registry, str(seed_count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def set_faults(url: str, **faults: object) -> None:
    requests.post(f"{url}/_sandbox/faults", json=faults, timeout=10).raise_for_status()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
