"""Operations of the registry stand-in, shared by its Cloud IoT v1 and ClearBlade-style routes.

Resources are stored as REST JSON with enum names; callers render them for their wire format.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from bridge.sandbox.registry import resources as res
from bridge.sandbox.registry.audit import Deliverer, log_entry
from bridge.sandbox.registry.auth import verify_device_jwt
from bridge.sandbox.registry.resources import ApiFailure, bad
from bridge.sandbox.registry.store import Store

Reg = tuple[str, str, str]
DEFAULT_PAGE, MAX_PAGE = 100, 10000
_AT = "type.googleapis.com/google.cloud.iot.v1."


def reg_path(reg: Reg) -> str:
    return f"projects/{reg[0]}/locations/{reg[1]}/registries/{reg[2]}"


def page_args(size: object, token: object) -> tuple[int, int]:
    try:
        limit = int(str(size or 0))
        after = int(str(token or 0))
    except ValueError:
        raise bad("Invalid pageSize or pageToken") from None
    if limit < 0 or after < 0:
        raise bad("Invalid pageSize or pageToken")
    return min(limit or DEFAULT_PAGE, MAX_PAGE), after


def _audit_device(device: dict[str, Any]) -> dict[str, Any]:
    # Trimmed as in the captured entry: the key material is not echoed into the log.
    keep = ("id", "name", "blocked", "logLevel", "gatewayConfig")
    return {k: device[k] for k in keep if k in device}


class Service:
    def __init__(self, store: Store, deliverer: Deliverer) -> None:
        self.store = store
        self.deliverer = deliverer

    def close(self) -> None:
        """Stop the delivery thread, then close the database."""
        self.deliverer.close()
        self.store.close()

    # registries
    def create_registry(self, project: str, location: str, body: dict[str, Any]
                        ) -> dict[str, Any]:
        rid = body.get("id")
        if not isinstance(rid, str) or not res.REGISTRY_ID.fullmatch(rid):
            raise bad(f"Invalid registry id {rid!r}")
        registry = res.normalize_enums(dict(body), False)
        registry["credentials"] = res.check_registry_credentials(body.get("credentials", []))
        registry["name"] = reg_path((project, location, rid))
        registry.setdefault("mqttConfig", {"mqttEnabledState": "MQTT_ENABLED"})
        registry.setdefault("httpConfig", {"httpEnabledState": "HTTP_ENABLED"})
        if not self.store.add_registry(project, location, registry):
            raise ApiFailure(409, f"Registry {registry['name']} already exists.")
        return registry

    def registry(self, reg: Reg) -> dict[str, Any]:
        found = self.store.registry(*reg)
        if found is None:
            raise ApiFailure(404, f"The registry {reg_path(reg)} does not exist.")
        return found

    def list_registries(self, project: str, location: str, size: object, token: object
                        ) -> tuple[list[dict[str, Any]], str]:
        limit, _ = page_args(size, None)
        after = str(token or "")
        found = self.store.registries(project, location, after, limit + 1)
        more = len(found) > limit
        found = found[:limit]
        return found, (found[-1]["id"] if more else "")

    def delete_registry(self, reg: Reg) -> None:
        self.registry(reg)
        if self.store.count_devices(reg):
            raise ApiFailure(412, f"The registry {reg_path(reg)} is not empty.")
        self.store.delete_registry(*reg)

    # devices
    def device(self, reg: Reg, key: str) -> dict[str, Any]:
        self.registry(reg)
        found = self.store.device(reg, key)
        if found is None:
            raise ApiFailure(404, f"The device {reg_path(reg)}/devices/{key} does not exist.")
        return found

    def create_device(self, reg: Reg, body: object, *, audit: bool) -> dict[str, Any]:
        registry = self.registry(reg)
        if not isinstance(body, dict):
            raise bad("The request body must be a Device")
        did = body.get("id")
        if not isinstance(did, str) or not res.DEVICE_ID.fullmatch(did):
            raise bad(f"Invalid device id {did!r}: [a-zA-Z][a-zA-Z0-9-_.+~%]{{2,255}}")
        fields = {"credentials", "metadata", "blocked", "log_level", "gateway_config"}
        device: dict[str, Any] = {"id": did, **res.device_fields(body, fields)}
        res.check_signed_by_registry(device["credentials"], registry)
        num_id = self.store.fresh_num_id()
        now = res.now_rfc3339()
        device["numId"] = num_id
        device["name"] = f"{reg_path(reg)}/devices/{num_id}"
        device.setdefault("gatewayConfig", {"gatewayType": "NON_GATEWAY"})
        device["config"] = {"version": "1", "cloudUpdateTime": now}
        deliveries = []
        if audit:
            request = {"@type": _AT + "CreateDeviceRequest", "parent": reg_path(reg),
                       "device": _audit_device({k: v for k, v in device.items()
                                                if k not in ("name", "numId")})}
            response = {"@type": _AT + "Device", **_audit_device(device)}
            deliveries = self.deliverer.deliveries(
                log_entry("CreateDevice", reg, device, did, request, response, now), reg[0])
        if not self.store.insert_device(reg, device, deliveries):
            raise ApiFailure(409, f"The device {reg_path(reg)}/devices/{did} already exists.")
        self.deliverer.notify()
        return device

    def list_devices(self, reg: Reg, size: object, token: object, ids: list[str],
                     num_ids: list[str]) -> tuple[list[dict[str, Any]], str]:
        self.registry(reg)
        limit, after = page_args(size, token)
        rows = self.store.devices(reg, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        found = [d for _, d in rows if (not ids or d["id"] in ids)
                 and (not num_ids or d["numId"] in num_ids)]
        return found, (str(rows[-1][0]) if more else "")

    def patch_device(self, reg: Reg, key: str, body: object, mask: list[str], *, audit: bool
                     ) -> dict[str, Any]:
        device = self.device(reg, key)
        if not isinstance(body, dict):
            raise bad("The request body must be a Device")
        if not mask:
            raise bad("The update mask must not be empty.")
        wrong = sorted(set(mask) - res.MUTABLE_DEVICE_FIELDS)
        if wrong:
            raise bad(f"The update mask names fields that cannot be updated: {', '.join(wrong)}")
        changes = res.device_fields(body, set(mask))
        if "credentials" in changes:
            res.check_signed_by_registry(changes["credentials"], self.registry(reg))
        for field in mask:
            name = res.camel(field)
            if name in changes:
                device[name] = changes[name]
            else:
                device.pop(name, None)
        deliveries = []
        if audit:
            requested = {res.camel(f): changes[res.camel(f)] for f in mask
                         if res.camel(f) in changes and f != "credentials"}
            request = {"@type": _AT + "UpdateDeviceRequest",
                       "device": {"id": device["id"], "name": f"{reg_path(reg)}/devices/{key}",
                                  **requested},
                       "updateMask": ",".join(res.camel(f) for f in mask)}
            response = {"@type": _AT + "Device", **_audit_device(device)}
            entry = log_entry("UpdateDevice", reg, device, key, request, response,
                              res.now_rfc3339())
            deliveries = self.deliverer.deliveries(entry, reg[0])
        self.store.update_device(device, deliveries)
        self.deliverer.notify()
        return device

    def delete_device(self, reg: Reg, key: str, *, audit: bool) -> None:
        device = self.device(reg, key)
        deliveries = []
        if audit:
            request = {"@type": _AT + "DeleteDeviceRequest",
                       "name": f"{reg_path(reg)}/devices/{key}"}
            response = {"@type": "type.googleapis.com/google.protobuf.Empty"}
            entry = log_entry("DeleteDevice", reg, device, key, request, response,
                              res.now_rfc3339())
            deliveries = self.deliverer.deliveries(entry, reg[0])
        self.store.delete_device(device["numId"], deliveries)
        self.deliverer.notify()

    def modify_config(self, reg: Reg, key: str, body: object) -> dict[str, Any]:
        device = self.device(reg, key)
        if not isinstance(body, dict):
            raise bad("The request body must be a ModifyCloudToDeviceConfigRequest")
        data = _base64(body.get("binaryData", ""), "binaryData")
        if len(data) > 64 * 1024:
            raise bad("The configuration must be at most 64 KB")
        current = int(device.get("config", {}).get("version", "0"))
        try:
            wanted = int(str(body.get("versionToUpdate") or 0))
        except ValueError:
            raise bad("Invalid value at 'versionToUpdate'") from None
        if wanted and wanted != current:
            raise ApiFailure(412, f"The config version is {current}, not {wanted}.")
        device["config"] = {"version": str(current + 1), "cloudUpdateTime": res.now_rfc3339(),
                            "binaryData": base64.b64encode(data).decode()}
        self.store.update_device(device)
        return dict(device["config"])

    def publish_event(self, reg: Reg, key: str, authorization: str | None, body: object) -> None:
        device = self.device(reg, key)
        verify_device_jwt(authorization, device, reg[0])
        if not isinstance(body, dict):
            raise bad("The request body must be a PublishDeviceEventRequest")
        _base64(body.get("binaryData", ""), "binaryData")
        device["lastEventTime"] = res.now_rfc3339()
        self.store.update_device(device)


def _base64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise bad(f"Invalid value at '{field}': expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"Invalid value at '{field}': not base64") from None
