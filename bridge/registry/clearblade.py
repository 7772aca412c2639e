"""Registry adapter for ClearBlade IoT Core, on its documented REST API with `requests`.

Reads the same service-account JSON as ClearBlade's SDK (`systemKey`, `token`, `url`,
`project`), asks `getRegistryCredentials` once per registry and caches the regional key and
token (the SDK asks again on every call), and keeps timeouts, retries and TLS verification in
our hands (the SDK hard-codes port 443, has no read timeout and returns errors as values).
Names travel as query parameters (`name`, `parent`), validated by Cloud IoT's rules first;
redirects are refused (the token header would follow them to any host).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from bridge.errors import ApiError, ConfigError, from_status
from bridge.httpclient import BoundedRetry, Closing, RetryNotice, refuse_redirects, request_error
from bridge.model import REGISTRY_SERVICE, RegistryDevice, RegistryRef, Secret
from bridge.registry.convert import (
    DEVICE_FIELDS,
    PAGE_SIZE,
    device_from_json,
    device_name,
    location_path,
    malformed,
    registries,
    registry_path,
    the_device,
)
from bridge.urls import check_url

_TRANSIENT = (429, 500, 502, 503, 504)


def _account(configuration: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(configuration, Mapping):
        data: object = dict(configuration)
    else:
        try:
            data = json.loads(Path(configuration).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"CLEARBLADE_CONFIGURATION: cannot read {configuration}: {exc}"
                              ) from None
    missing = [k for k in ("systemKey", "token", "url", "project")
               if not isinstance(data, dict) or not isinstance(data.get(k), str)]
    if missing or not isinstance(data, dict):
        raise ConfigError(f"CLEARBLADE_CONFIGURATION lacks {', '.join(missing)}")
    check_url("ClearBlade url", data["url"])
    return data


class ClearBladeRegistry(Closing):
    """`bridge.ports.Registry` on ClearBlade IoT Core."""

    def __init__(self, configuration: str | Path | Mapping[str, Any], *, timeout: float = 30.0,
                 retries: int = 4, backoff: float = 0.2, page_size: int = PAGE_SIZE,
                 session: requests.Session | None = None) -> None:
        account = _account(configuration)
        self.project: str = account["project"]
        self._url = account["url"].rstrip("/")
        self._system_key = account["systemKey"]
        self._token = Secret(account["token"])
        self._timeout = (min(timeout, 10.0), timeout)
        self._page_size = page_size
        self._regional: dict[RegistryRef, tuple[str, str, Secret]] = {}
        self._lock = threading.Lock()
        self._session = session or requests.Session()
        refuse_redirects(self._session)
        retry = BoundedRetry(total=retries, connect=retries, read=retries, status=retries,
                             other=0, backoff_factor=backoff, status_forcelist=_TRANSIENT,
                             allowed_methods=None, respect_retry_after_header=True,
                             raise_on_status=False,
                             notice=RetryNotice(REGISTRY_SERVICE, self._timeout))
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=32)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def get_device(self, ref: RegistryRef, device_id: str) -> RegistryDevice:
        name = device_name(ref, device_id)
        data = self._regional_call(ref, "GET", "cloudiot_devices", "get device", {"name": name})
        return the_device(device_from_json(ref, data), device_id)

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        token = ""
        while True:
            params = {"parent": registry_path(ref), "pageSize": str(self._page_size),
                      "fieldMask": ",".join(DEVICE_FIELDS)}
            if token:
                params["pageToken"] = token
            page = self._regional_call(ref, "GET", "cloudiot_devices", "list devices", params)
            devices = page.get("devices") or []
            if not isinstance(devices, list):
                raise malformed("list devices", ref.path, "`devices` is not a list")
            for device in devices:
                yield device_from_json(ref, device)
            token = str(page.get("nextPageToken") or "")
            if not token:
                return

    def list_registries(self, project: str, location: str) -> list[RegistryRef]:
        out: list[RegistryRef] = []
        token = ""
        parent = location_path(project, location)
        while True:
            params = {"parent": parent, "page_size": "1000"}
            if token:
                params["page_token"] = token
            page = self._request("GET", f"{self._url}/api/v/4/webhook/execute/"
                                 f"{self._system_key}/cloudiot", self._token,
                                 "list registries", params=params, shown=parent)
            out.extend(registries(project, location, (
                r.get("id") for r in page.get("deviceRegistries") or [] if isinstance(r, dict))))
            token = str(page.get("nextPageToken") or "")
            if not token:
                return out

    def set_device_config(self, ref: RegistryRef, device_id: str, data: bytes) -> None:
        params = {"name": device_name(ref, device_id),
                  "method": "modifyCloudToDeviceConfig"}
        body = {"binaryData": base64.b64encode(data).decode(), "versionToUpdate": 0}
        self._regional_call(ref, "POST", "cloudiot_devices", "modify device config", params, body)

    def close(self) -> None:
        self._session.close()

    def _credentials(self, ref: RegistryRef) -> tuple[str, str, Secret]:
        path = registry_path(ref)
        with self._lock:
            cached = self._regional.get(ref)
        if cached:
            return cached
        found = self._request(
            "POST", f"{self._url}/api/v/1/code/{self._system_key}/getRegistryCredentials",
            self._token, "get registry credentials", shown=path,
            body={"region": ref.location, "registry": ref.registry, "project": ref.project})
        try:
            url, key = str(found["url"]).rstrip("/"), str(found["systemKey"])
            regional = (url, key, Secret(str(found["serviceAccountToken"])))
        except KeyError as exc:
            raise malformed("get registry credentials", path, f"the answer lacks {exc}",
                            "POST") from None
        check_url("ClearBlade regional url", url)
        with self._lock:
            self._regional[ref] = regional
        return regional

    def _regional_call(self, ref: RegistryRef, method: str, api: str, operation: str,
                       params: dict[str, str], body: object = None) -> dict[str, Any]:
        for attempt in (1, 2):
            url, key, token = self._credentials(ref)
            try:
                return self._request(method, f"{url}/api/v/4/webhook/execute/{key}/{api}", token,
                                     operation, params=params, body=body,
                                     shown=params.get("name") or params.get("parent") or api)
            except ApiError as exc:
                # A rotated regional token: forget it and ask for a fresh one, once.
                if exc.status not in (401, 403) or attempt == 2:
                    raise
                with self._lock:
                    self._regional.pop(ref, None)
        raise AssertionError("unreachable")

    def _request(self, method: str, url: str, token: Secret, operation: str, *, shown: str,
                 params: dict[str, str] | None = None, body: object = None) -> dict[str, Any]:
        # The URL's path holds a system key: errors name the resource (`shown`) instead.
        where: dict[str, Any] = {"service": REGISTRY_SERVICE, "method": method, "path": shown}
        try:
            answer = self._session.request(
                method, url, params=params, json=body, timeout=self._timeout,
                headers={"ClearBlade-UserToken": token.reveal(), "Accept": "application/json"})
        except requests.RequestException as exc:
            raise request_error(exc, operation, timeout=self._timeout, **where) from None
        if answer.status_code >= 300:
            raise from_status(answer.status_code, f"{operation} failed",
                              detail=_error_text(answer), **where)
        try:
            data = answer.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise malformed(operation, shown, "the answer is not a JSON object", method)
        return data


def _error_text(answer: requests.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return " ".join(answer.text.split())[:200]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))[:200]
    return str(error or data)[:200]
