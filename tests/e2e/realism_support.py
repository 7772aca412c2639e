"""The stack of the Mender-realism end-to-end tests: the sandbox over TLS (Mender stand-in and
registry stand-in, audit events pushed straight to the function), `on_push` served by
functions-framework in its own session, the real google-cloud-iot client for the registry, and
reads of the stand-ins over their own APIs (never through the bridge)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.model import RegistryRef
from bridge.sandbox.launcher import Sandbox
from tests.function.e2e_support import (
    MenderView,
    create_device,
    env_from_config,
    iot_client,
    iot_credential,
    wait_for,
)
from tests.support.function_proc import FunctionProcess
from tests.support.mender_daemon import MenderDaemon
from tests.support.procs import run

AUTH = "/api/devices/v1/authentication/auth_requests"
NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
DEVICE_INVENTORY = "/api/devices/v1/inventory/device/attributes"
DEVAUTH = "/api/management/v2/devauth/devices"
INVENTORY = "/api/management/v1/inventory/devices"
GONE = "gone"  # inventory_status of a device inventory has no record of


def device_key(path: Path) -> str:
    """An EC P-256 key as a device keeps it (SEC1 PEM) at `path`; its public PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass
class Stack:
    sandbox: Sandbox
    ref: RegistryRef
    iot: Any
    mender: MenderView
    function: FunctionProcess

    # -- the registry, through google-cloud-iot --------------------------------------------
    def create(self, device_id: str, pem: str) -> None:
        create_device(self.iot, self.ref, device_id, pem)

    def set_keys(self, device_id: str, *pems: str) -> None:
        self.iot.update_device(device={"name": self._name(device_id),
                                       "credentials": [iot_credential(p) for p in pems]},
                               update_mask={"paths": ["credentials"]})

    def delete(self, device_id: str) -> None:
        self.iot.delete_device(name=self._name(device_id))

    def _name(self, device_id: str) -> str:
        return f"{self.ref.path}/devices/{device_id}"

    # -- the Mender stand-in, over its own API ---------------------------------------------
    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.mender.session.request(method, self.sandbox.mender_url + path, timeout=10,
                                           **kwargs)

    def device(self, mender_id: str) -> dict[str, Any] | None:
        answer = self.call("GET", f"{DEVAUTH}/{mender_id}")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found

    def inventory_status(self, mender_id: str) -> str | None:
        """The identity-scope `status` of the device's inventory record; GONE without one."""
        answer = self.call("GET", f"{INVENTORY}/{mender_id}")
        if answer.status_code == 404:
            return GONE
        answer.raise_for_status()
        found = [a["value"] for a in answer.json()["attributes"]
                 if (a["scope"], a["name"]) == ("identity", "status")]
        return found[0] if found else None

    def inventory(self, mender_id: str, scope: str) -> dict[str, Any]:
        answer = self.call("GET", f"{INVENTORY}/{mender_id}")
        answer.raise_for_status()
        return {a["name"]: a["value"] for a in answer.json()["attributes"]
                if a["scope"] == scope}

    def device_calls(self, since: float) -> list[dict[str, Any]]:
        """The device API calls (auth requests included) that arrived at or after `since`."""
        answer = self.call("GET", "/_sandbox/device_log")
        answer.raise_for_status()
        return [e for e in answer.json() if e["time"] >= since]

    def set_faults(self, **values: Any) -> None:
        self.call("POST", "/_sandbox/faults", json=values).raise_for_status()

    def faults(self) -> dict[str, Any]:
        answer = self.call("GET", "/_sandbox/faults")
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found

    def audit_status(self) -> dict[str, Any]:
        answer = requests.get(f"{self.sandbox.registry_url}/_sandbox/audit-status", timeout=10)
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found

    # -- the function ----------------------------------------------------------------------
    def records(self, device_id: str) -> list[dict[str, Any]]:
        """The function's log lines about one registry device."""
        label = f"{self.ref.registry}/{device_id}"
        return [r for r in self.function.records() if r.get("device") == label]

    def daemon(self, key_path: Path, device_id: str, **kwargs: Any) -> MenderDaemon:
        return MenderDaemon(self.sandbox.mender_url, self.sandbox.ca_cert, key_path,
                            {"google_iot_id": device_id}, **kwargs)

    def wait_for_keys(self, device_id: str, wanted: dict[bytes, str], what: str) -> None:
        wait_for(lambda: self.mender.keys(device_id) == wanted, 60, what)


def start_stack(work: Path) -> Iterator[Stack]:
    """The stack, stopped whatever happens (a generator for a fixture)."""
    with Sandbox(work / "sandbox", tls=True) as sandbox:
        env = env_from_config(Path(sandbox.config_path), LOG_LEVEL="INFO")
        ref = RegistryRef(env["IOT_PROJECT"], env["IOT_LOCATION"],
                          env["IOT_REGISTRIES"].split(",")[0])
        with FunctionProcess("on_push", env, work / "on_push.log") as function:
            view = MenderView(sandbox.mender_url, sandbox.token.reveal())
            # The sandbox's own certificate, not REQUESTS_CA_BUNDLE's store.
            view.session.trust_env, view.session.verify = False, str(sandbox.ca_cert)
            stack = Stack(sandbox, ref, iot_client(sandbox.registry_url), view, function)
            answer = requests.post(f"{sandbox.registry_url}/_sandbox/audit-endpoints",
                                   json={"endpoints": [function.url]}, timeout=10)
            answer.raise_for_status()
            yield stack
        assert not function.process.leftovers(), function.process.leftovers()



def need_mender_cli() -> None:
    """Skip without Debian's `mender-cli`, or fail if REQUIRE_MENDER_CLIENT=1."""
    if shutil.which("mender-cli") is not None:
        return
    if os.environ.get("REQUIRE_MENDER_CLIENT") == "1":
        pytest.fail("mender-cli is required (REQUIRE_MENDER_CLIENT=1) but not installed")
    pytest.skip("mender-cli is not installed")


def mender_cli_devices(stack: Stack) -> dict[str, str]:
    """`mender-cli devices list --raw` against the stand-in: device id → status."""
    sandbox = stack.sandbox
    # Go reads extra roots from SSL_CERT_FILE: the sandbox's certificate, verified.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(sandbox.data_dir),
           "SSL_CERT_FILE": str(sandbox.ca_cert)}
    result = run(["mender-cli", "--server", sandbox.mender_url, "--token-value",
                  sandbox.token.reveal(), "devices", "list", "--raw"], env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    # It prints its results on stderr, after a line about its own config file.
    output = result.stdout + result.stderr
    listed = json.loads(output[output.index("["):])
    return {d["id"]: d["status"] for d in listed}
