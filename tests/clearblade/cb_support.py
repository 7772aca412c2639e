"""ClearBlade's REST API as a person or a provisioning script calls it: the service account,
the regional key and token from getRegistryCredentials, then devices created, listed and
deleted with the `ClearBlade-UserToken` header (docs/cloud-iot.md#clearblade)."""

from __future__ import annotations

from typing import Any

import requests

from bridge.model import Credential


class ClearBladeRest:
    def __init__(self, base: str, account: dict[str, str], project: str, region: str,
                 registry: str) -> None:
        self.base, self.account = base.rstrip("/"), account
        self.project, self.region, self.registry = project, region, registry
        self.http = requests.Session()
        answer = self.http.post(
            f"{self.base}/api/v/1/code/{account['systemKey']}/getRegistryCredentials",
            json={"region": region, "registry": registry, "project": project},
            headers={"ClearBlade-UserToken": account["token"]}, timeout=10)
        answer.raise_for_status()
        found = answer.json()
        self.key, self.token = found["systemKey"], found["serviceAccountToken"]

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/registries/{self.registry}"

    def _call(self, method: str, params: dict[str, Any], body: object = None
              ) -> requests.Response:
        url = f"{self.base}/api/v/4/webhook/execute/{self.key}/cloudiot_devices"
        return self.http.request(method, url, params=params, json=body, timeout=10,
                                 headers={"ClearBlade-UserToken": self.token})

    def create(self, device_id: str, credentials: tuple[Credential, ...] = (),
               metadata: dict[str, str] | None = None) -> requests.Response:
        body = {"id": device_id, "metadata": metadata or {}, "credentials": [
            {"publicKey": {"format": str(c.format), "key": c.key}} for c in credentials]}
        return self._call("POST", {"parent": self.parent}, body)

    def delete(self, device_id: str) -> requests.Response:
        return self._call("DELETE", {"name": f"{self.parent}/devices/{device_id}"})

    def list(self, page_size: int, token: str = "") -> requests.Response:
        params: dict[str, Any] = {"parent": self.parent, "pageSize": page_size}
        if token:
            params["pageToken"] = token
        return self._call("GET", params)
