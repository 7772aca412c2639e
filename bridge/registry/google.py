"""Registry adapter for Google Cloud IoT Core on the `google-cloud-iot` client (REST transport).

Google libraries are imported when the adapter is built, never at module import, so the Cloud
Function's cold start does not pay for them before its first event. Every call carries an
explicit bounded retry and timeout; every library error is mapped once into bridge.errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests

from bridge.errors import ConfigError, PermanentApiError, TransientApiError
from bridge.model import REGISTRY_SERVICE, RegistryDevice, RegistryRef
from bridge.registry.convert import (
    DEVICE_FIELDS,
    PAGE_SIZE,
    api_error,
    credential,
    device_name,
)

T = TypeVar("T")


def build_client(endpoint: str | None, credentials: str) -> Any:
    """A DeviceManagerClient over REST: ADC by default; `anonymous` for the sandbox."""
    from google.api_core.client_options import ClientOptions
    from google.auth import exceptions as auth_errors
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import iot_v1

    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    creds = AnonymousCredentials() if credentials == "anonymous" else None  # type: ignore[no-untyped-call]
    try:
        return iot_v1.DeviceManagerClient(credentials=creds, transport="rest",
                                          client_options=options)
    except auth_errors.DefaultCredentialsError as exc:
        raise ConfigError(f"Google Application Default Credentials not found: {exc}") from None


class GoogleRegistry:
    """`bridge.ports.Registry` on Cloud IoT Core v1."""

    def __init__(self, client: Any = None, *, endpoint: str | None = None,
                 credentials: str = "adc", timeout: float = 30.0,
                 retry_deadline: float = 60.0, page_size: int = PAGE_SIZE) -> None:
        from google.api_core import exceptions, retry
        from google.auth import exceptions as auth_errors
        from google.cloud import iot_v1
        from google.protobuf import field_mask_pb2

        self._iot = iot_v1
        self._errors = exceptions
        self._auth_errors = auth_errors
        self._client = client if client is not None else build_client(endpoint, credentials)
        self._timeout = timeout
        self._page_size = page_size
        self._mask = field_mask_pb2.FieldMask(paths=list(DEVICE_FIELDS))
        # The REST transport lets requests' ConnectionError through unwrapped: a reset or a
        # stale pooled connection (a warm function instance) is retried like a 503.
        self._retry = retry.Retry(
            predicate=retry.if_exception_type(
                exceptions.ServiceUnavailable, exceptions.DeadlineExceeded,
                exceptions.InternalServerError, exceptions.TooManyRequests,
                requests.ConnectionError),
            initial=0.2, maximum=5.0, multiplier=2.0, timeout=retry_deadline)

    def get_device(self, ref: RegistryRef, device_id: str) -> RegistryDevice:
        name = device_name(ref, device_id, "get device", "GET")
        found = self._call("get device", "GET", name, lambda: self._client.get_device(
            request={"name": name}, retry=self._retry, timeout=self._timeout))
        return self._device(ref, found)

    def iter_devices(self, ref: RegistryRef) -> Iterator[RegistryDevice]:
        token = ""
        while True:
            request = self._iot.ListDevicesRequest(
                parent=ref.path, field_mask=self._mask, page_size=self._page_size, page_token=token)
            # The pager would fetch later pages with the library's default retry and
            # timeout; one call per page keeps ours on every page.
            page = self._call("list devices", "GET", ref.path, self._pager(
                self._client.list_devices, request))
            for device in page.devices:
                yield self._device(ref, device)
            token = page.next_page_token
            if not token:
                return

    def list_registries(self, project: str, location: str) -> list[RegistryRef]:
        parent = f"projects/{project}/locations/{location}"
        out: list[RegistryRef] = []
        token = ""
        while True:
            request = self._iot.ListDeviceRegistriesRequest(parent=parent, page_size=1000,
                                                            page_token=token)
            page = self._call("list registries", "GET", parent, self._pager(
                self._client.list_device_registries, request))
            out.extend(RegistryRef(project, location, r.id) for r in page.device_registries)
            token = page.next_page_token
            if not token:
                return out

    def set_device_config(self, ref: RegistryRef, device_id: str, data: bytes) -> None:
        name = device_name(ref, device_id, "modify device config", "POST")
        self._call("modify device config", "POST", name, lambda: self._client
                   .modify_cloud_to_device_config(request={"name": name, "binary_data": data},
                                                  retry=self._retry, timeout=self._timeout))

    def close(self) -> None:
        self._client.transport.close()

    def _pager(self, method: Callable[..., Any], request: Any) -> Callable[[], Any]:
        # The pager's attributes are those of the first response, fetched by this call.
        return lambda: method(request=request, retry=self._retry, timeout=self._timeout)

    def _device(self, ref: RegistryRef, device: Any) -> RegistryDevice:
        return RegistryDevice(
            ref=ref, id=device.id, num_id=str(device.num_id),
            credentials=tuple(credential(c.public_key.format, c.public_key.key,
                                         c.expiration_time) for c in device.credentials),
            metadata=dict(device.metadata), blocked=bool(device.blocked))

    def _call(self, operation: str, method: str, path: str, fn: Callable[[], T]) -> T:
        where: dict[str, Any] = {"service": REGISTRY_SERVICE, "method": method, "path": path}
        try:
            return fn()
        except self._errors.RetryError as exc:
            cause = exc.cause
            detail = type(cause).__name__ if isinstance(cause, requests.RequestException) \
                else str(cause)
            raise TransientApiError(f"{operation}: gave up retrying", detail=detail[:300],
                                    **where) from None
        except self._errors.GoogleAPICallError as exc:
            status = exc.code if isinstance(exc.code, int) else None
            raise api_error(status, operation, method=method, path=path,
                            detail=exc.message or "") from None
        except requests.RequestException as exc:
            raise api_error(None, operation, method=method, path=path,
                            detail=type(exc).__name__) from None
        except self._auth_errors.TransportError as exc:
            raise api_error(None, operation, method=method, path=path,
                            detail=str(exc)[:200]) from None
        except self._auth_errors.GoogleAuthError as exc:
            raise PermanentApiError(f"{operation}: authentication failed",
                                    detail=str(exc)[:200], **where) from None
        except (AttributeError, TypeError) as exc:
            # google-api-core cannot read an error body that is JSON but not Google's
            # (`{"error": "text"}` from a proxy in front of the API) and fails this way.
            raise TransientApiError(f"{operation}: unreadable error response",
                                    detail=type(exc).__name__, **where) from None

