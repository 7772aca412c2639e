"""Shared set-up of the end-to-end attack tests (issue 13): a sandbox with a victim device
(registered in the registry, preauthorized and then accepted in Mender by its own key), the
registries an attacker may name, the real entry points as subprocesses in their own process
groups, and the final state of both services read back over their own APIs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from bridge.device import SimulatedDevice
from bridge.model import RegistryRef
from bridge.sandbox.launcher import LOCATION, PROJECT, REGISTRY, Sandbox
from tests.function.e2e_support import ROOT
from tests.function.helpers import audit_entry, push_body
from tests.support.function_proc import FunctionProcess
from tests.support.procs import run

SECRET = "attack-webhook-secret-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}
VICTIM = "victim-1"
HOME = RegistryRef(PROJECT, LOCATION, REGISTRY)  # configured
SECOND = RegistryRef(PROJECT, LOCATION, "fleet-b")  # configured too
OUTSIDE = RegistryRef(PROJECT, LOCATION, "outside-reg")  # same project and location, not configured
ELSEWHERE = (OUTSIDE, RegistryRef(PROJECT, "europe-west1", REGISTRY),
             RegistryRef("other-project-1", LOCATION, REGISTRY))
MANAGEMENT = "/api/management/v2/devauth/devices"
DEVICE_FIELDS = "name,credentials,blocked,metadata,config,logLevel,gatewayConfig,lastEventTime"
NO_SUCH_NUM_ID = "987654321987"  # 12 digits: the stand-in's numeric ids have 16


def ec_credential(pem: str) -> dict[str, Any]:
    return {"publicKey": {"format": "ES256_PEM", "key": pem}}


@dataclass(frozen=True)
class State:
    """Both services as their APIs show them: every Mender device (auth sets and statuses
    included) and every device of every registry the tests use (config version included)."""

    mender: tuple[str, ...]
    registry: tuple[str, ...]


@dataclass
class World:
    sandbox: Sandbox
    victim: SimulatedDevice
    work: Path
    env: dict[str, str] = field(default_factory=dict)

    def registry_call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.sandbox.registry_url}/v1/{path}", timeout=30,
                                **kwargs)

    def add_device(self, ref: RegistryRef, device_id: str,
                   credentials: list[dict[str, Any]]) -> dict[str, Any]:
        answer = self.registry_call("POST", f"{ref.path}/devices",
                                    json={"id": device_id, "credentials": credentials})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def delete_device(self, ref: RegistryRef, device_id: str) -> None:
        answer = self.registry_call("DELETE", f"{ref.path}/devices/{device_id}")
        assert answer.status_code == 200, answer.text

    def mender(self, method: str, path: str = "", **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.sandbox.token.reveal()}"}
        return requests.request(method, f"{self.sandbox.mender_url}{MANAGEMENT}{path}",
                                headers=headers, timeout=30, **kwargs)

    def mender_devices(self) -> list[dict[str, Any]]:
        answer = self.mender("GET", params={"per_page": 500})
        answer.raise_for_status()
        return list(answer.json())

    def auth_sets(self, device_id: str) -> list[tuple[str, str]]:
        """(key, status) of each auth set of the Mender devices with this device's identity."""
        return sorted((s["pubkey"], s["status"]) for d in self.mender_devices()
                      if d.get("identity_data") == {"google_iot_id": device_id}
                      for s in d.get("auth_sets") or [])

    def registry_devices(self) -> list[str]:
        found = []
        for ref in (HOME, SECOND, *ELSEWHERE):
            listed = self.registry_call("GET", f"{ref.path}/devices",
                                        params={"pageSize": 1000, "fieldMask": DEVICE_FIELDS})
            listed.raise_for_status()
            found += [json.dumps(d, sort_keys=True) for d in listed.json().get("devices", [])]
        return sorted(found)

    def state(self) -> State:
        mender = sorted(json.dumps(d, sort_keys=True) for d in self.mender_devices())
        return State(tuple(mender), tuple(self.registry_devices()))

    def mender_faults(self, **values: Any) -> None:
        requests.post(f"{self.sandbox.mender_url}/_sandbox/faults", json=values,
                      timeout=10).raise_for_status()

    def cli(self, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """`mender-bridge ARGS` in a session of its own, killed with its group at the end."""
        return run([sys.executable, "-m", "bridge", *args], env=env or self.env, cwd=ROOT,
                   timeout=120)


@contextmanager
def attack_world(work: Path) -> Iterator[World]:
    """The sandbox with every registry of the tests, the victim registered in HOME and, under
    the same id with another key, in each registry ELSEWHERE (the attacker's own devices),
    and the victim preauthorized in Mender then accepted by its own authentication."""
    with Sandbox(work / "sandbox", tls=False) as sandbox:
        world = World(sandbox, SimulatedDevice.generate(VICTIM), work)
        # Both configured registries served; notification on, so that a wrong admission
        # would also write the registry.
        world.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
            "MENDER_URL": sandbox.mender_url, "MENDER_TOKEN": sandbox.token.reveal(),
            "IOT_PROJECT": PROJECT, "IOT_LOCATION": LOCATION,
            "IOT_REGISTRIES": f"{HOME.registry},{SECOND.registry}",
            "IOT_ENDPOINT": sandbox.registry_url, "IOT_CREDENTIALS": "anonymous",
            "WEBHOOK_SECRET": SECRET, "NOTIFY_DEVICE": "true", "LOG_LEVEL": "INFO"}
        for ref in (SECOND, *ELSEWHERE):
            created = world.registry_call("POST", f"projects/{ref.project}/locations/"
                                          f"{ref.location}/registries", json={"id": ref.registry})
            assert created.status_code == 200, created.text
        world.add_device(HOME, VICTIM, [ec_credential(world.victim.public_pem)])
        for ref in ELSEWHERE:
            other = SimulatedDevice.generate(VICTIM)
            world.add_device(ref, VICTIM, [ec_credential(other.public_pem)])
        admitted = world.mender("POST", json={"identity_data": {"google_iot_id": VICTIM},
                                              "pubkey": world.victim.public_pem})
        assert admitted.status_code == 201, admitted.text
        assert world.victim.authenticate(sandbox.mender_url) is not None
        assert [s for _, s in world.auth_sets(VICTIM)] == ["accepted"]
        yield world


@contextmanager
def functions(env: dict[str, str], work: Path, *targets: str
              ) -> Iterator[dict[str, FunctionProcess]]:
    """The targets served, each killed with its process groups on the way out."""
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        yield {target: stack.enter_context(FunctionProcess(target, env, work / f"{target}.log"))
               for target in targets}


def ignored(function: FunctionProcess) -> int:
    """How many events `function` has logged as ignored so far."""
    return sum(1 for r in function.records() if r.get("outcome") == "ignored")


def entry(method: str, ref: RegistryRef, device_id: str, num_id: str = NO_SUCH_NUM_ID,
          **labels: str) -> dict[str, Any]:
    """A Cloud IoT audit entry; `labels` override its resource labels (an attacker's)."""
    made = audit_entry(method, ref, device_id, num_id,
                       "credentials" if method == "UpdateDevice" else None)
    made["resource"]["labels"].update(labels)
    return made


def push(url: str, log_entry: dict[str, Any], headers: dict[str, str] | None = None
         ) -> requests.Response:
    """The entry as a Pub/Sub push envelope."""
    return requests.post(url, data=push_body(log_entry), timeout=60,
                         headers={"Content-Type": "application/json", **(headers or {})})


def cloudevent(url: str, log_entry: dict[str, Any]) -> requests.Response:
    """The entry as Eventarc delivers a Pub/Sub message: a binary-mode CloudEvent."""
    data = {"message": {"data": base64.b64encode(json.dumps(log_entry).encode()).decode(),
                        "messageId": "2000"},
            "subscription": f"projects/{PROJECT}/subscriptions/eventarc"}
    headers = {"ce-id": "2000", "ce-specversion": "1.0", "Content-Type": "application/json",
               "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/iot",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished"}
    return requests.post(url, data=json.dumps(data), headers=headers, timeout=60)


Hold = Callable[[str, str], bool]


class Relay:
    """A loopback HTTP relay to `upstream` that records (method, path, status) of every request
    and keeps those `hold(method, path)` selects waiting until `release()`."""

    def __init__(self, upstream: str, hold: Hold | None = None) -> None:
        self.upstream, self.hold = upstream.rstrip("/"), hold
        self.calls: list[tuple[str, str, int]] = []
        self.released = threading.Event()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if relay.hold is not None and relay.hold(self.command, self.path):
                    relay.released.wait(60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                answer = requests.request(self.command, relay.upstream + self.path, data=body,
                                          headers=headers, timeout=60, allow_redirects=False)
                relay.calls.append((self.command, self.path, answer.status_code))
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding",
                                            "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
