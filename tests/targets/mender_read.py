"""A Mender stand-in read over its own management API (never through the bridge): the devices
it admitted with their keys, and its faults set."""

from __future__ import annotations

from typing import Any

import requests

from bridge.sandbox.launcher import Sandbox


class MenderRead:
    def __init__(self, sandbox: Sandbox) -> None:
        self.url = sandbox.mender_url
        self.session = requests.Session()
        self.session.verify, self.session.trust_env = str(sandbox.ca_cert), False
        self.session.headers["Authorization"] = f"Bearer {sandbox.token.reveal()}"

    def admitted(self) -> dict[str, set[str]]:
        """google_iot_id → public keys, devices being decommissioned left out."""
        answer = self.session.get(f"{self.url}/api/management/v2/devauth/devices", timeout=10,
                                  params={"per_page": 500})
        answer.raise_for_status()
        return {d["identity_data"]["google_iot_id"]: {s["pubkey"] for s in d["auth_sets"]}
                for d in answer.json() if not d["decommissioning"]}

    def faults(self, **values: Any) -> None:
        self.session.post(f"{self.url}/_sandbox/faults", json=values,
                          timeout=10).raise_for_status()
