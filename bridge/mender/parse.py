"""Mender JSON bodies → bridge.model objects, strictly: a body of the wrong shape is an ApiError.

Shapes follow the server code rather than the spec where they differ (docs/mender-api.md#specs):
a 409 preauthorize body is a Device with `auth_sets: null`; auth sets carry no `device_id`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bridge.errors import PermanentApiError
from bridge.model import MENDER_SERVICE, AuthSet, AuthStatus, MenderDevice

T = TypeVar("T")


class BodyError(ValueError):
    """A response body that does not have the shape the server documents."""


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BodyError(f"{what} is not a JSON object")
    return value


def _str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise BodyError(f"{what} has no string {key!r}")
    return value


def _status(obj: Mapping[str, Any], what: str) -> AuthStatus:
    raw = _str(obj, "status", what)
    try:
        return AuthStatus(raw)
    except ValueError:
        raise BodyError(f"{what} has an unknown status {raw!r}") from None


def auth_set(value: object) -> AuthSet:
    obj = _obj(value, "auth set")
    return AuthSet(id=_str(obj, "id", "auth set"), pubkey=_str(obj, "pubkey", "auth set"),
                   status=_status(obj, "auth set"))


def device(value: object) -> MenderDevice:
    obj = _obj(value, "device")
    identity = _obj(obj.get("identity_data"), "device identity_data")
    raw_sets = obj.get("auth_sets")
    sets: tuple[AuthSet, ...] | None
    if raw_sets is None:
        sets = None
    elif isinstance(raw_sets, list):
        sets = tuple(auth_set(s) for s in raw_sets)
    else:
        raise BodyError("device auth_sets is neither an array nor null")
    return MenderDevice(
        id=_str(obj, "id", "device"),
        identity_data=dict(identity),
        status=_status(obj, "device"),
        decommissioning=bool(obj.get("decommissioning", False)),
        auth_sets=sets,
    )


def device_list(value: object) -> list[MenderDevice]:
    if not isinstance(value, list):
        raise BodyError("device list is not a JSON array")
    return [device(d) for d in value]


def inventory_ids(value: object) -> list[str]:
    if not isinstance(value, list):
        raise BodyError("inventory search result is not a JSON array")
    return [_str(_obj(d, "inventory device"), "id", "inventory device") for d in value]


def count(value: object) -> int:
    number = _obj(value, "count").get("count")
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise BodyError("count body has no non-negative integer 'count'")
    return number


def location_id(location: str | None) -> str | None:
    """The id in a preauthorize `Location`, which the server sends relative: `devices/<id>`."""
    if not location:
        return None
    tail = location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or None


def json_body(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        raise BodyError("response body is not JSON") from None


def decode(text: str, parser: Callable[[object], T], *, method: str, path: str, status: int,
           request_id: str) -> T:
    """Run `parser` over a JSON body; a malformed body becomes a PermanentApiError."""
    try:
        return parser(json_body(text))
    except BodyError as exc:
        raise PermanentApiError(f"unexpected response: {exc}", service=MENDER_SERVICE,
                                method=method, path=path, status=status,
                                request_id=request_id) from None
