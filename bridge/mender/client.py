"""The Mender operations the bridge needs (bridge.ports.Mender), returning bridge.model objects:
preauthorize, read, list (several pages in flight) and find devices, change or delete auth
sets, decommission; every request paced to the server's rate limit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import quote

import requests

from bridge.errors import IdentityError, NotFound, PermanentApiError
from bridge.identity import describe, identity_hash
from bridge.keys import KeyPolicy, normalize
from bridge.mender import pages, parse
from bridge.mender.pacer import Pacer
from bridge.mender.transport import Stats, Transport, api_error
from bridge.model import (
    MENDER_SERVICE,
    AlreadyExists,
    AuthStatus,
    MenderDevice,
    Preauthorized,
    PreauthResult,
    Secret,
)
from bridge.ports import Pace

DEVICES = "/api/management/v2/devauth/devices"
INVENTORY_SEARCH = "/api/management/v2/inventory/filters/search"
PER_PAGE = 500  # the server's maximum (docs/mender-api.md#listing)
FIND_PER_PAGE = 20
SETTABLE = frozenset({AuthStatus.ACCEPTED, AuthStatus.REJECTED, AuthStatus.PENDING})
# Only to put a key in Mender's normal form; what may be sent is the core's key policy. The core
# passes normalized keys already; normalizing again (~20-50 µs, under 2% of the 3 ms CPU budget
# per device) keeps the port safe for any caller: Mender refuses a PKCS#1 `RSA PUBLIC KEY` with
# 400, and a key it cannot parse is refused here as InvalidKeyError before any request.
_ANY_KEY = KeyPolicy(min_rsa_bits=1024)


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _describe(identity: Mapping[str, str]) -> str:
    return describe(identity, 120)


class MenderClient:
    """Client of the Mender management API (hosted or self-hosted; base URL is configuration)."""

    def __init__(self, base_url: str, *, token: Secret | None = None,
                 username: str | None = None, password: Secret | None = None,
                 ca_bundle: str | None = None, timeout: float = 10.0, pool_size: int = 32,
                 retries: int = 5, backoff: float = 0.2, connect_timeout: float | None = None,
                 max_retry_after: float = 60.0, pacer: Pacer | None = None,
                 parallel_pages: int = pages.PARALLEL_PAGES) -> None:
        """`pacer`: one per JWT subject (the server limits each caller); a new one by default."""
        self._http = Transport(base_url, token=token, username=username, password=password,
                               ca_bundle=ca_bundle, timeout=timeout,
                               connect_timeout=connect_timeout, pool_size=pool_size,
                               retries=retries, backoff=backoff, max_retry_after=max_retry_after,
                               pacer=pacer)
        self.base_url = self._http.base_url
        self.parallel_pages = max(1, parallel_pages)

    @property
    def stats(self) -> Stats:
        return self._http.stats

    def pace(self) -> Pace:
        return self._http.pacer.report()

    @property
    def session(self) -> requests.Session:
        return self._http.session

    @property
    def transport(self) -> Transport:
        """The client's transport (token, pace, retries), for the inventory adapter."""
        return self._http

    def __repr__(self) -> str:
        return f"MenderClient({self.base_url!r}, auth={self._http.auth_kind})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def preauthorize(self, identity: Mapping[str, str], pubkey: str, *,
                     force: bool = False) -> PreauthResult:
        """201 → Preauthorized; 409 → AlreadyExists with the device the server names."""
        body = {"identity_data": dict(identity), "pubkey": normalize(pubkey, policy=_ANY_KEY).pem,
                "force": force}
        op = f"preauthorize {_describe(identity)}"
        response, rid = self._http.request(op, "POST", DEVICES, json=body, allow=(409,))
        if response.status_code != 409:
            return Preauthorized(parse.location_id(response.headers.get("Location")))
        # The 409 body is the existing Device, not an error (docs/mender-api.md#preauthorize).
        try:
            return AlreadyExists(parse.device(parse.json_body(response.text)))
        except parse.BodyError:
            raise api_error(op, "POST", DEVICES, response, rid) from None

    def get_device(self, device_id: str) -> MenderDevice:
        path = f"{DEVICES}/{_q(device_id)}"
        response, rid = self._http.request(f"get device {device_id}", "GET", path)
        return parse.decode(response.text, parse.device, method="GET", path=path,
                            status=response.status_code, request_id=rid)

    def iter_devices(self, status: AuthStatus | None = None) -> Iterator[MenderDevice]:
        """Every device with its auth sets, once: the first page, then (if more follow) the
        count and up to `parallel_pages` pages in flight (bridge.mender.pages)."""
        try:
            yield from pages.devices(lambda number: self._page(number, status),
                                     lambda: self.count(status), PER_PAGE, self.parallel_pages)
        except pages.RepeatedPage:
            raise PermanentApiError("list devices: a page repeats devices already listed (the "
                                    "server ignores the page number?)", service=MENDER_SERVICE,
                                    method="GET", path=DEVICES) from None

    def _page(self, number: int, status: AuthStatus | None) -> pages.Page:
        params: dict[str, str | int] = {"per_page": PER_PAGE, "page": number}
        if status is not None:
            params["status"] = AuthStatus(status).value
        path = f"{DEVICES}?page={number}"
        response, rid = self._http.request("list devices", "GET", DEVICES, params=params)
        found = parse.decode(response.text, parse.device_list, method="GET", path=path,
                             status=response.status_code, request_id=rid)
        return pages.Page(found, "next" in response.links)

    def count(self, status: AuthStatus | None = None) -> int:
        path = f"{DEVICES}/count"
        params = {"status": AuthStatus(status).value} if status is not None else None
        response, rid = self._http.request("count devices", "GET", path, params=params)
        return parse.decode(response.text, parse.count, method="GET", path=path,
                            status=response.status_code, request_id=rid)

    def find_by_identity(self, identity: Mapping[str, str]) -> MenderDevice | None:
        """Inventory search on the identity scope (eventually consistent: a device
        preauthorized a moment ago may not be found yet), then the exact match from deviceauth."""
        if not identity:
            raise IdentityError("find_by_identity needs at least one identity attribute")
        filters = [{"scope": "identity", "attribute": k, "type": "$eq", "value": v}
                   for k, v in sorted(identity.items())]
        body = {"page": 1, "per_page": FIND_PER_PAGE, "filters": filters}
        response, rid = self._http.request(f"find device {_describe(identity)}", "POST",
                                           INVENTORY_SEARCH, json=body)
        ids = parse.decode(response.text, parse.inventory_ids, method="POST",
                           path=INVENTORY_SEARCH, status=response.status_code, request_id=rid)
        wanted = identity_hash(identity)
        for device_id in ids:
            # `$eq` on our attributes also matches devices with extra identity attributes.
            try:
                device = self.get_device(device_id)
            except NotFound:
                continue  # decommissioned since inventory indexed it
            if identity_hash(device.identity_data) == wanted:
                return device
        return None

    def set_auth_status(self, device_id: str, auth_id: str, status: AuthStatus) -> None:
        status = AuthStatus(status)
        if status not in SETTABLE:
            # The server answers 400 "incorrect device status" (docs/mender-api.md#auth-sets).
            raise PermanentApiError(f"an auth set cannot be set to {status.value!r} (only "
                                    "accepted, rejected or pending)", service=MENDER_SERVICE)
        path = f"{DEVICES}/{_q(device_id)}/auth/{_q(auth_id)}/status"
        self._http.request(f"set auth set {auth_id} of device {device_id} to {status.value}",
                           "PUT", path, json={"status": status.value})

    def delete_auth_set(self, device_id: str, auth_id: str) -> None:
        path = f"{DEVICES}/{_q(device_id)}/auth/{_q(auth_id)}"
        self._delete(f"delete auth set {auth_id} of device {device_id}", path)

    def decommission(self, device_id: str) -> None:
        """Asynchronous on the server: the device may still be listed, `decommissioning`."""
        self._delete(f"decommission device {device_id}", f"{DEVICES}/{_q(device_id)}")

    def _delete(self, op: str, path: str) -> None:
        response, rid = self._http.request(op, "DELETE", path, allow=(404,))
        if response.status_code == 404 and response.content:
            # The 404 here is empty-bodied (docs/mender-api.md#errors); a non-JSON 404 page is from
            # something else (a wrong base URL), which must not pass for "already gone".
            try:
                parse.json_body(response.text)
            except parse.BodyError:
                raise api_error(op, "DELETE", path, response, rid) from None


if TYPE_CHECKING:
    from bridge.ports import Mender

    def _implements_the_port(client: MenderClient) -> Mender:
        return client  # mypy checks MenderClient against the port here
