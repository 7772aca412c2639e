"""Conversions shared by the registry adapters: resource names (validated by Cloud IoT's rules,
and escaped segment by segment for a URL path), credential formats, expiry times, REST JSON
devices, and Google's device list pages read as strictly as protobuf's JSON parser reads them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bridge import names
from bridge.errors import ApiError, InputError, from_status
from bridge.logs import emit, get_logger
from bridge.model import REGISTRY_SERVICE, Credential, CredentialFormat, RegistryDevice, RegistryRef

DEVICE_FIELDS = ("credentials", "metadata", "blocked")
PAGE_SIZE = 1000
_LOG = get_logger("registry")
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


def location_path(project: str, location: str) -> str:
    """`projects/P/locations/L`, each part valid by Cloud IoT's rules (InputError otherwise)."""
    return f"projects/{names.project_id(project)}/locations/{names.location(location)}"


def registry_path(ref: RegistryRef) -> str:
    """The registry's resource name, each part valid (InputError otherwise)."""
    return names.registry_ref(ref.project, ref.location, ref.registry).path


def device_name(ref: RegistryRef, device_id: str) -> str:
    """The resource name of a device (string or numeric id), each part valid (InputError
    otherwise): a hostile id never reaches a request."""
    return f"{registry_path(ref)}/devices/{names.device_id(device_id)}"


def escaped(name: str) -> str:
    """A resource name for a URL path: every segment percent-escaped. Valid ids may hold `%`
    and `+`, which must reach the server as themselves (`a%2Fb` is an id, not `a/b`)."""
    return "/".join(quote(segment, safe="") for segment in name.split("/"))


def registries(project: str, location: str, ids: Iterable[object]) -> list[RegistryRef]:
    """The registries of a listing; an id that breaks Cloud IoT's rules is skipped with a
    warning, so it never reaches a request."""
    out = []
    for registry in ids:
        try:
            out.append(names.registry_ref(project, location, registry))
        except InputError as exc:
            emit(_LOG, logging.WARNING, f"{REGISTRY_SERVICE}: skipped a listed registry: {exc}")
    return out


def malformed(operation: str, path: str, detail: str, method: str = "GET") -> ApiError:
    """An answer of the wrong shape, as if a gateway had failed (502): transient."""
    return from_status(502, f"{operation} failed: malformed answer", service=REGISTRY_SERVICE,
                       method=method, path=path, detail=detail)


def the_device(device: RegistryDevice, device_id: str) -> RegistryDevice:
    """`device`, if it is the one asked for by string or numeric id: an answer about another
    device, or about none (an empty object reads as "no credentials"), is an error."""
    if device_id not in (device.id, device.num_id):
        raise malformed("get device", device.ref.path,
                        f"the answer is about device {device.id[:80]!r}, not {device_id!r}")
    return device


def device_from_json(ref: RegistryRef, data: object) -> RegistryDevice:
    """A Device in REST JSON (camelCase; enums as names or numbers) → RegistryDevice.

    A malformed answer is an error, not an empty device (read as "no credentials", it would
    make the bridge revoke the device's keys); a credential of an unknown kind is skipped."""
    if not isinstance(data, Mapping):
        raise malformed("read device", ref.path, "the answer is not an object")
    raw_creds, metadata = data.get("credentials") or [], data.get("metadata") or {}
    if not isinstance(raw_creds, list) or not isinstance(metadata, Mapping):
        raise malformed("read device", ref.path,
                        "credentials or metadata of the answer are malformed")
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise malformed("read device", ref.path, "the answer names no device id")
    creds = []
    for item in raw_creds:
        public = item.get("publicKey") if isinstance(item, Mapping) else None
        if isinstance(public, Mapping):
            creds.append(credential(public.get("format"), public.get("key"),
                                    item.get("expirationTime")))
    return RegistryDevice(
        ref=ref, id=data["id"], num_id=str(data.get("numId", "")),
        credentials=tuple(creds),
        metadata={str(k): str(v) for k, v in metadata.items()},
        blocked=bool(data.get("blocked", False)))



class Malformed(ValueError):
    """A part of a list page that protobuf's JSON parser would refuse (its text says which)."""


# RFC 3339 as protobuf reads a Timestamp: date, `T`, time, up to 9 fraction digits, a zone.
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")
_UINT64 = re.compile(r"[0-9]{1,20}")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise Malformed("an object repeats a key")
    return found


def _field(obj: Mapping[str, Any], name: str, proto_name: str) -> Any:
    """A field under its JSON or its proto name (protobuf takes either, never both)."""
    if proto_name in obj:
        if name in obj:
            raise Malformed(f"both {name} and {proto_name}")
        return obj[proto_name]
    return obj.get(name)


_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "true or false"}


def _typed(value: Any, kind: type[Any], what: str) -> Any:
    """`value` if of `kind`; None (JSON null or absent) as the field's default, `kind()`."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise Malformed(f"{what} is not {_KINDS[kind]}")
    return value


def _num_id(value: Any) -> str:
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and _UINT64.fullmatch(value):
        number = int(value)
    if value is None:
        number = 0
    if number is None or not 0 <= number < 2**64:
        raise Malformed("numId is not a uint64")
    return str(number)


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "1970-01-01T00:00:00Z":  # "no expiry", as most keys have
        return None
    found = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise Malformed("expirationTime is not an RFC 3339 timestamp")
    stamp, fraction, zone = found.groups()
    try:  # datetime keeps microseconds: nanoseconds are cut, as protobuf-python does
        parsed = datetime.fromisoformat(f"{stamp}.{(fraction or '').ljust(6, '0')[:6]}"
                                        f"{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        raise Malformed("expirationTime is not a valid time") from None
    return expiry(parsed)


def _credential(item: Any) -> Credential:
    item = _typed(item, dict, "a credential")
    public = _typed(_field(item, "publicKey", "public_key"), dict, "publicKey")
    fmt = public.get("format")
    if fmt is not None and (isinstance(fmt, bool) or not isinstance(fmt, int | str)):
        raise Malformed("publicKey.format is not an enum")
    key = _typed(public.get("key"), str, "publicKey.key")
    return credential(fmt, key, _timestamp(_field(item, "expirationTime", "expiration_time")))


def _listed_device(ref: RegistryRef, item: Any) -> RegistryDevice:
    item = _typed(item, dict, "a device")
    metadata = _typed(item.get("metadata"), dict, "metadata")
    if not all(isinstance(v, str) for v in metadata.values()):
        raise Malformed("a metadata value is not a string")
    device_id = _typed(item.get("id"), str, "id")
    if not device_id:
        raise Malformed("a device names no id")
    return RegistryDevice(
        ref=ref, id=device_id, num_id=_num_id(_field(item, "numId", "num_id")),
        credentials=tuple(_credential(c) for c in _typed(item.get("credentials"), list,
                                                          "credentials")),
        metadata=metadata, blocked=_typed(item.get("blocked"), bool, "blocked"))


@contextmanager
def _refused(ref: RegistryRef) -> Iterator[None]:
    try:
        yield
    except (Malformed, ValueError, RecursionError) as exc:
        detail = str(exc)[:80] if isinstance(exc, Malformed) else "the answer is not JSON"
        raise malformed("list devices", ref.path, detail) from None


class DevicePage:
    """A ListDevicesResponse in REST JSON, read in two steps: `device_page` reads the JSON and
    the next page token (so that the next page can be asked for at once), `devices()` the
    devices. Both as strictly as protobuf's JSON parser (which google-cloud-iot uses) reads the
    fields the bridge uses, or more: a value of the wrong type, a repeated key or a malformed
    time makes the whole page an error, never a device without credentials; unknown fields
    are ignored."""

    def __init__(self, ref: RegistryRef, items: list[Any], token: str) -> None:
        self.ref, self.items, self.token = ref, items, token  # token "": the last page

    def devices(self) -> list[RegistryDevice]:
        with _refused(self.ref):
            return [_listed_device(self.ref, item) for item in self.items]


def device_page(ref: RegistryRef, body: bytes) -> DevicePage:
    with _refused(ref):
        page = _typed(json.loads(body, object_pairs_hook=_unique), dict, "the answer")
        return DevicePage(ref, _typed(page.get("devices"), list, "devices"), _typed(
            _field(page, "nextPageToken", "next_page_token"), str, "nextPageToken"))
