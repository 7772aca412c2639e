"""Conversions shared by the registry adapters: credential formats, expiry times, REST JSON
devices, and the mapping of HTTP statuses onto the bridge's error tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from bridge.errors import ApiError, Conflict, NotFound, PermanentApiError, TransientApiError
from bridge.model import REGISTRY_SERVICE, Credential, CredentialFormat, RegistryDevice, RegistryRef

DEVICE_FIELDS = ("credentials", "metadata", "blocked")
PAGE_SIZE = 1000
# PublicKeyFormat numbers of the v1 API (google-cloud-iot sends and reads integers).
_FORMAT_NUMBERS = {1: CredentialFormat.RSA_X509_PEM, 2: CredentialFormat.ES256_PEM,
                   3: CredentialFormat.RSA_PEM, 4: CredentialFormat.ES256_X509_PEM}


def credential_format(value: object) -> CredentialFormat | None:
    """An enum number, name, or enum member (Google: IntEnum, ClearBlade: str Enum) → format;
    None for UNSPECIFIED or anything unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _FORMAT_NUMBERS.get(int(value))
    name = getattr(value, "name", value)
    if isinstance(name, str):
        try:
            return CredentialFormat(name.strip().upper())
        except ValueError:
            return None
    return None


def expiry(value: object) -> datetime | None:
    """An expiration time (datetime or RFC 3339 text); None when absent or the 1970 epoch
    that the API returns for "no expiry"."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
    return None if stamp.timestamp() <= 0 else stamp


def credential(fmt: object, key: object, expires: object) -> Credential:
    return Credential(key=key if isinstance(key, str) else "", format=credential_format(fmt),
                      expires_at=expiry(expires))


def device_name(ref: RegistryRef, device_id: str, operation: str, method: str) -> str:
    """The resource name of a device (string or numeric id); a 400 error for a malformed id."""
    if not device_id or "/" in device_id or len(device_id) > 256:
        raise api_error(400, operation, method=method, path=ref.path,
                        detail=f"invalid device id {device_id[:80]!r}")
    return f"{ref.path}/devices/{device_id}"


def device_from_json(ref: RegistryRef, data: object) -> RegistryDevice:
    """A Device in REST JSON (camelCase; enums as names or numbers) → RegistryDevice.

    A malformed answer is an error, not an empty device (read as "no credentials", it would
    make the bridge revoke the device's keys); a credential of an unknown kind is skipped."""
    if not isinstance(data, Mapping):
        raise api_error(502, "read device", path=ref.path, detail="the answer is not an object")
    raw_creds, metadata = data.get("credentials") or [], data.get("metadata") or {}
    if not isinstance(raw_creds, list) or not isinstance(metadata, Mapping):
        raise api_error(502, "read device", path=ref.path,
                        detail="credentials or metadata of the answer are malformed")
    creds = []
    for item in raw_creds:
        public = item.get("publicKey") if isinstance(item, Mapping) else None
        if isinstance(public, Mapping):
            creds.append(credential(public.get("format"), public.get("key"),
                                    item.get("expirationTime")))
    return RegistryDevice(
        ref=ref, id=str(data.get("id", "")), num_id=str(data.get("numId", "")),
        credentials=tuple(creds),
        metadata={str(k): str(v) for k, v in metadata.items()},
        blocked=bool(data.get("blocked", False)))


def api_error(status: int | None, message: str, *, method: str = "", path: str = "",
              detail: str = "", retry_after: float | None = None) -> ApiError:
    """The one place an HTTP status becomes an error class of bridge.errors."""
    kind: type[ApiError]
    if status is None or status == 429 or status >= 500 or status == 408:
        kind = TransientApiError
    elif status == 404:
        kind = NotFound
    elif status == 409:
        kind = Conflict
    else:
        kind = PermanentApiError
    return kind(message, service=REGISTRY_SERVICE, method=method, path=path, status=status,
                detail=detail[:300], retry_after=retry_after)
