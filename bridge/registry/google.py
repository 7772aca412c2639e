"""Registry adapter for Google Cloud IoT Core on the `google-cloud-iot` client (REST transport).

Google libraries are imported when the adapter is built, never at module import, so the Cloud
Function's cold start does not pay for them before its first event. Device lists are read on
the client's own session and parsed straight into RegistryDevice (convert.device_page): through
protobuf and proto-plus they cost several times the rest of a re-check. Every name is validated
and every path segment escaped before the client puts it in its path template (which inserts
it verbatim); the client's session refuses redirects and follows bridge.httpclient's retry
bounds; every library failure is mapped once into bridge.errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from bridge.errors import ApiError, ConfigError, PermanentApiError, TransientApiError, from_status
from bridge.httpclient import (
    BoundedRetry,
    Closing,
    RetryNotice,
    host_of,
    refuse_redirects,
    request_error,
)
from bridge.model import REGISTRY_SERVICE, RegistryDevice, RegistryRef
from bridge.registry.convert import (
    DEVICE_FIELDS,
    PAGE_SIZE,
    credential,
    device_name,
    device_page,
    escaped,
    location_path,
    malformed,
    registries,
    registry_path,
    the_device,
)

T = TypeVar("T")
# What google-cloud-iot asks a list for: enums as numbers, and only the fields the bridge reads.
_LIST_QUERY = {"$alt": "json;enum-encoding=int", "fieldMask": ",".join(DEVICE_FIELDS)}


class UnreadableAnswer(requests.RequestException):
    """An error answer whose body is not Google's error JSON (a proxy or a load balancer in
    front of the API): google-api-core cannot read it, so it never gets to see it."""


def _google_message(response: requests.Response) -> str | None:
    """The message of a Google error body; None when the body does not have that shape."""
    try:
        payload = response.json()
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    message, errors, details = (error.get("message", ""), error.get("errors", []),
                                error.get("details", []))
    if not (isinstance(message, str) and isinstance(errors, list) and isinstance(details, list)
            and all(isinstance(d, dict) for d in details)):
        return None
    return message


def _screen(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code >= 400 and _google_message(response) is None:
        raise UnreadableAnswer(response=response, request=response.request)


def _transient(status: int | None) -> bool:
    return status is not None and isinstance(from_status(status, "", service=""),
                                              TransientApiError)


def build_client(endpoint: str | None, credentials: str, notice: RetryNotice) -> Any:
    """A DeviceManagerClient over REST (ADC by default; `anonymous` for the sandbox) whose
    session refuses redirects, screens error bodies and bounds connection retries."""
    from google.api_core.client_options import ClientOptions
    from google.auth import exceptions as auth_errors
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import iot_v1

    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    creds = AnonymousCredentials() if credentials == "anonymous" else None  # type: ignore[no-untyped-call]
    try:
        client = iot_v1.DeviceManagerClient(credentials=creds, transport="rest",
                                            client_options=options)
    except auth_errors.DefaultCredentialsError as exc:
        raise ConfigError(f"Google Application Default Credentials not found: {exc}") from None
    # The REST transport offers no public way to its requests session (an AuthorizedSession).
    session: requests.Session = client.transport._session  # type: ignore[attr-defined]
    refuse_redirects(session)
    session.hooks["response"].append(_screen)
    # Connection failures are retried here, within bridge.httpclient's bounds; api-core's
    # Retry below only retries answers (429, 5xx).
    retry = BoundedRetry(total=4, connect=4, read=4, status=0, other=0, backoff_factor=0.2,
                         notice=notice)
    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(max_retries=retry))
    return client


class GoogleRegistry(Closing):
    """`bridge.ports.Registry` on Cloud IoT Core v1."""

    def __init__(self, *, endpoint: str | None = None, credentials: str = "adc",
                 timeout: float = 30.0, retry_deadline: float = 60.0,
                 page_size: int = PAGE_SIZE) -> None:
        from google.api_core import exceptions, retry
        from google.auth import exceptions as auth_errors
        from google.cloud import iot_v1
        from google.protobuf import json_format

        self._iot = iot_v1
        self._errors = exceptions
        self._auth_errors = auth_errors
        self._parse_error = json_format.ParseError
        self._notice = RetryNotice(REGISTRY_SERVICE, (timeout, timeout))
        self._client = build_client(endpoint, credentials, self._notice)
        # The REST transport's scheme://host:port, and the session build_client set up.
        self._host: str = self._client.transport._host
        self._session: requests.Session = self._client.transport._session
        self._timeout = timeout
        self._deadline = retry_deadline
        self._page_size = page_size
        self._retry = retry.Retry(predicate=lambda exc: _transient(self._status(exc)),
                                  on_error=self._on_error, initial=0.2, maximum=5.0,
                                  multiplier=2.0, timeout=retry_deadline)

    def get_device(self, ref: RegistryRef, device_id: str) -> RegistryDevice:
        name = device_name(ref, device_id)
        found = self._call("get device", "GET", name, lambda: self._client.get_device(
            request={"name": escaped(name)}, retry=self._retry, timeout=self._timeout))
        return the_device(self._device(ref, found), device_id)

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        parent = registry_path(ref)
        url = f"{self._host}/v1/{escaped(parent)}/devices"
        query: dict[str, str] = {**_LIST_QUERY, "pageSize": str(self._page_size)}
        fetch = partial(self._call, "list devices", "GET", parent)
        ahead = ThreadPoolExecutor(1, thread_name_prefix="registry-page")
        try:
            page = device_page(ref, fetch(partial(self._get, url, query)))
            while True:
                # The next page is asked for while this one's devices are read: a token-paged
                # list waits for each round trip, and need not wait for the reading too.
                later = ahead.submit(fetch, partial(self._get, url, {
                    **query, "pageToken": page.token})) if page.token else None
                yield from page.devices()
                if later is None:
                    return
                page = device_page(ref, later.result())
        finally:
            ahead.shutdown(wait=False, cancel_futures=True)

    def list_registries(self, project: str, location: str) -> list[RegistryRef]:
        parent = location_path(project, location)
        out: list[RegistryRef] = []
        token = ""
        while True:
            request = self._iot.ListDeviceRegistriesRequest(parent=escaped(parent),
                                                            page_size=1000, page_token=token)
            page = self._call("list registries", "GET", parent, self._pager(
                self._client.list_device_registries, request))
            out.extend(registries(project, location, (r.id for r in page.device_registries)))
            token = page.next_page_token
            if not token:
                return out

    def set_device_config(self, ref: RegistryRef, device_id: str, data: bytes) -> None:
        name = device_name(ref, device_id)
        self._call("modify device config", "POST", name, lambda: self._client
                   .modify_cloud_to_device_config(request={"name": escaped(name),
                                                           "binary_data": data},
                                                  retry=self._retry, timeout=self._timeout))

    def close(self) -> None:
        self._client.transport.close()

    def _get(self, url: str, query: Mapping[str, str]) -> bytes:
        """One GET, retried as the library retries its calls; an error answer raised as the
        library raises it, so that `_call` maps both paths the same way."""
        def attempt() -> bytes:
            response = self._session.get(url, params=query, timeout=self._timeout,
                                         headers={"Accept": "application/json"})
            if response.status_code >= 400:
                raise self._errors.from_http_response(response)
            return response.content

        body: bytes = self._retry(attempt)()
        return body

    def _pager(self, method: Callable[..., Any], request: Any) -> Callable[[], Any]:
        # The pager's attributes are those of the first response, fetched by this call.
        return lambda: method(request=request, retry=self._retry, timeout=self._timeout)

    def _device(self, ref: RegistryRef, device: Any) -> RegistryDevice:
        if not device.id:  # what the REST client makes of `{}`, `[…]` or a foreign object
            raise malformed("read device", ref.path, "the answer names no device id")
        return RegistryDevice(
            ref=ref, id=device.id, num_id=str(device.num_id),
            credentials=tuple(credential(c.public_key.format, c.public_key.key,
                                         c.expiration_time) for c in device.credentials),
            metadata=dict(device.metadata), blocked=bool(device.blocked))

    def _status(self, exc: BaseException) -> int | None:
        if isinstance(exc, UnreadableAnswer) and exc.response is not None:
            return exc.response.status_code
        if isinstance(exc, self._errors.GoogleAPICallError) and isinstance(exc.code, int):
            return exc.code
        return None

    def _on_error(self, exc: BaseException) -> None:
        status = self._status(exc)
        response = getattr(exc, "response", None)
        if status is not None and isinstance(response, requests.Response):
            self._notice.answered(status, host_of(response.url))

    def _call(self, operation: str, method: str, path: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors.RetryError as exc:
            tried = f"{operation} (gave up retrying after {self._deadline:g}s)"
            cause = exc.cause if isinstance(exc.cause, Exception) else exc
            raise self._error(cause, tried, method, path) from None
        except (self._errors.GoogleAPICallError, requests.RequestException,
                self._auth_errors.GoogleAuthError, self._parse_error) as exc:
            raise self._error(exc, operation, method, path) from None

    def _error(self, exc: Exception, operation: str, method: str, path: str) -> ApiError:
        """One library failure → the error tree (the message never holds a URL's query)."""
        where: dict[str, Any] = {"service": REGISTRY_SERVICE, "method": method, "path": path}
        status = self._status(exc)
        if isinstance(exc, UnreadableAnswer) and exc.response is not None:
            text = " ".join(exc.response.text.split())[:200]
            return from_status(status, f"{operation} failed", detail=text, **where)
        if isinstance(exc, requests.RequestException):
            return request_error(exc, operation, timeout=(self._timeout, self._timeout),
                                 **where)
        if isinstance(exc, self._errors.GoogleAPICallError):
            response = exc.response if isinstance(exc.response, requests.Response) else None
            detail = (_google_message(response) if response is not None else None) or ""
            return from_status(status, f"{operation} failed", detail=detail[:200], **where)
        if isinstance(exc, self._auth_errors.TransportError):
            return from_status(None, f"{operation} failed: no answer while getting a Google "
                               "access token", detail=str(exc)[:200], **where)
        if isinstance(exc, self._auth_errors.GoogleAuthError):
            return PermanentApiError(f"{operation} failed: Google authentication failed",
                                     detail=str(exc)[:200], **where)
        if isinstance(exc, self._parse_error):
            return malformed(operation, path, "the answer is not what the API documents",
                             method)
        return from_status(None, f"{operation} failed", detail=type(exc).__name__, **where)
