"""Read one Cloud Audit LogEntry of Cloud IoT Core into a DeviceChange.

Labels `project_id`, `location`, `device_registry_id`, `device_num_id` name the device; the
string id comes from the request, the response or `resourceName`. `authorizationInfo.resource`
is never read: the real service writes it without its `registries/` segment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bridge.errors import EventError
from bridge.model import ChangeKind, DeviceChange, RegistryRef

METHOD_PREFIX = "google.cloud.iot.v1.DeviceManager."
MAX_TEXT = 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:~%+\-]{0,254}")
_NUM_ID = re.compile(r"[0-9]{1,20}")
_RESOURCE = re.compile(
    r"projects/([^/]+)/locations/([^/]+)/registries/([^/]+)(?:/groups/[^/]+)?/devices/([^/]+)")
_MASK_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


_KINDS = {"CreateDevice": ChangeKind.CREATE, "UpdateDevice": ChangeKind.UPDATE,
          "DeleteDevice": ChangeKind.DELETE}


def mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise EventError(f"{what} is {type(value).__name__}, expected a JSON object")
    return value


def text(value: object, what: str, pattern: re.Pattern[str] = _NAME) -> str:
    if not isinstance(value, str):
        raise EventError(f"{what} is {type(value).__name__}, expected a string")
    if len(value) > MAX_TEXT or not pattern.fullmatch(value):
        raise EventError(f"{what} is not a valid name: {value[:80]!r}")
    return value


def _optional(parent: Mapping[str, object], *path: str) -> object:
    node: object = parent
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _snake(path: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), path)


def _update_mask(raw: object) -> tuple[str, ...] | None:
    """A FieldMask in proto-JSON (`"a,b"`, camelCase) or as `{"paths": [...]}`."""
    if raw is None:
        return None
    paths: object = raw.get("paths") if isinstance(raw, Mapping) else raw
    if isinstance(paths, str):
        paths = [p.strip() for p in paths.split(",") if p.strip()]
    if not isinstance(paths, list) or len(paths) > 100:
        raise EventError("protoPayload.request.updateMask is not a field mask")
    out = []
    for path in paths:
        if not isinstance(path, str) or len(path) > 200 or not _MASK_PATH.fullmatch(path):
            raise EventError(f"protoPayload.request.updateMask has an invalid path {path!r:.80}")
        out.append(_snake(path))
    return tuple(out)


def _status_failed(payload: Mapping[str, object]) -> bool:
    code = _optional(payload, "status", "code")
    return isinstance(code, int) and not isinstance(code, bool) and code != 0


def decode_log_entry(entry: Mapping[str, object], message_id: str | None = None
                     ) -> DeviceChange:
    """The DeviceChange of a Cloud IoT audit LogEntry; EventError for anything else."""
    entry = mapping(entry, "the log entry")
    payload = mapping(entry.get("protoPayload"), "protoPayload")
    method = payload.get("methodName")
    if not isinstance(method, str) or not method.startswith(METHOD_PREFIX) \
            or method[len(METHOD_PREFIX):] not in _KINDS:
        raise EventError(f"not a Cloud IoT device change: methodName {str(method)[:120]!r}")
    kind = _KINDS[method[len(METHOD_PREFIX):]]
    if _status_failed(payload):
        raise EventError(f"{method} failed (status {_optional(payload, 'status', 'code')}); "
                         "nothing changed")
    labels = _optional(entry, "resource", "labels")
    resource_name = payload.get("resourceName")
    match = _RESOURCE.fullmatch(resource_name) if isinstance(resource_name, str) \
        and len(resource_name) <= MAX_TEXT else None
    if isinstance(labels, Mapping) and "device_registry_id" in labels:
        ref = RegistryRef(text(labels.get("project_id"), "label project_id"),
                          text(labels.get("location"), "label location"),
                          text(labels.get("device_registry_id"), "label device_registry_id"))
        raw_num = labels.get("device_num_id")
        num_id = text(raw_num, "label device_num_id", _NUM_ID) if raw_num is not None else None
    elif match:
        ref = RegistryRef(*(text(v, "protoPayload.resourceName") for v in match.groups()[:3]))
        num_id = None
    else:
        raise EventError("the entry names no registry (no resource.labels, no resourceName)")
    response_name = _optional(payload, "response", "name")
    named = _RESOURCE.fullmatch(response_name) if isinstance(response_name, str) \
        and len(response_name) <= MAX_TEXT else None
    device_id = None
    for candidate in (_optional(payload, "request", "device", "id"),
                      _optional(payload, "response", "id"),
                      match.group(4) if match else None,
                      named.group(4) if named else None):
        if not isinstance(candidate, str) or not candidate:
            continue
        value = text(candidate, "the device id")
        # Device ids start with a letter: an all-digit segment is the numeric id.
        if value.isdigit():
            num_id = num_id or text(value, "the device num id", _NUM_ID)
        elif device_id is None:
            device_id = value
    if device_id is None and num_id is None:
        raise EventError(f"{method}: the entry names no device (no id and no device_num_id)")
    mask = _update_mask(_optional(payload, "request", "updateMask")) \
        if kind is ChangeKind.UPDATE else None
    return DeviceChange(kind, ref, device_id, num_id, mask, message_id)
