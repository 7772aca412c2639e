"""ClearBlade IoT Core routes of the stand-in: registry credentials and the webhook device API.

Admin calls use the service account's systemKey and token; `getRegistryCredentials` hands out a
regional systemKey and token per registry, which the `cloudiot_devices` calls must carry.
ClearBlade emits no audit-log events, so changes made here are not delivered as events.
Its published quotas hold (docs/cloud-iot.md#quotas): list pages of at most 500 (a larger
page size is clamped), device-manager reads and creates/deletes per project and minute (429).
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, jsonify, request

from bridge.sandbox.registry import resources as res
from bridge.sandbox.registry.resources import ApiFailure
from bridge.sandbox.registry.service import Reg, Service, reg_path

_DEVICE = re.compile(r"projects/([^/]+)/locations/([^/]+)/registries/([^/]+)/devices/([^/]+)")
_PARENT = re.compile(r"projects/([^/]+)/locations/([^/]+)(?:/registries/([^/]+))?")
MAX_PAGE = 500  # "Maximum page size for list request"


@dataclass
class Quotas:
    """Device-manager calls per project and minute (ClearBlade's quota page: 30,000 reads;
    3,000 creates and deletes, the unit cut off in the copy read, a minute here). A call over
    quota is answered 429 with the seconds left in the minute as Retry-After *(inference:
    the page names no header)*."""

    reads: int = 30_000
    writes: int = 3_000
    window_s: float = 60.0
    _used: dict[tuple[str, str, int], int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, project: str, kind: str) -> None:
        limit = self.reads if kind == "reads" else self.writes
        now = time.time()
        window = int(now // self.window_s)
        with self._lock:
            key = (project, kind, window)
            used = self._used[key] = self._used.get(key, 0) + 1
            if len(self._used) > 64:  # forget past windows
                self._used = {k: v for k, v in self._used.items() if k[2] == window}
        if used > limit:
            left = math.ceil((window + 1) * self.window_s - now)
            raise QuotaExceeded(f"Quota exceeded for device manager {kind} in project "
                                f"{project}", max(1, left))


class QuotaExceeded(ApiFailure):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(429, message)
        self.retry_after = retry_after


def _page(size: str | None) -> str | None:
    """The page size asked for, at most MAX_PAGE."""
    if size is None or not size.strip().isdigit():
        return size
    return str(min(int(size), MAX_PAGE))


def _host() -> str:
    return request.host_url.rstrip("/")


def _json(resource: dict[str, Any], mask: list[str] | None = None) -> dict[str, Any]:
    return res.render(resource, int_enums=False, mask=mask, always=("id", "numId", "name"))


def blueprint(service: Service, admin_key: str, admin_token: str, project: str,
              quotas: Quotas | None = None) -> Blueprint:
    bp = Blueprint("clearblade", __name__, url_prefix="/api/v")
    quota = quotas or Quotas()

    @bp.errorhandler(QuotaExceeded)
    def _over_quota(exc: QuotaExceeded) -> tuple[Response, int, dict[str, str]]:
        return jsonify(exc.body()), exc.status, {"Retry-After": str(exc.retry_after)}

    def admin_auth(system_key: str) -> None:
        if system_key != admin_key or request.headers.get("ClearBlade-UserToken") != admin_token:
            raise ApiFailure(401, "Invalid ClearBlade system key or user token")

    def regional_auth(system_key: str) -> Reg:
        found = service.store.clearblade_registry(system_key)
        if found is None or request.headers.get("ClearBlade-UserToken") != found[0]:
            raise ApiFailure(401, "Invalid ClearBlade system key or user token")
        return found[1]

    def device_key(reg: Reg, name: str | None) -> str:
        match = _DEVICE.fullmatch(name or "")
        if not match or tuple(match.groups()[:3]) != reg:
            raise ApiFailure(400, f"The name {name!r} is not a device of {reg_path(reg)}")
        return match.group(4)

    @bp.route("/1/code/<system_key>/getRegistryCredentials", methods=["POST"])
    def registry_credentials(system_key: str) -> Response:
        admin_auth(system_key)
        body = request.get_json(silent=True, force=True)
        if not isinstance(body, dict) or not all(
                isinstance(body.get(k), str) for k in ("region", "registry", "project")):
            raise res.bad("The body must hold region, registry and project")
        reg: Reg = (body["project"], body["region"], body["registry"])
        service.registry(reg)
        key, token = service.store.clearblade_key(*reg)
        return jsonify({"systemKey": key, "serviceAccountToken": token, "url": _host()})

    @bp.route("/4/webhook/execute/<system_key>/cloudiot", methods=["GET"])
    def cloudiot(system_key: str) -> Response:
        if system_key == admin_key:
            admin_auth(system_key)
            match = _PARENT.fullmatch(request.args.get("parent", ""))
            if not match:
                raise res.bad("parent=projects/P/locations/L is required")
            quota.take(match.group(1), "reads")
            found, token = service.list_registries(
                match.group(1), match.group(2), _page(request.args.get("page_size")),
                request.args.get("page_token"))
            out: dict[str, Any] = {"deviceRegistries": [_json(r) for r in found]}
            if token:
                out["nextPageToken"] = token
            return jsonify(out)
        reg = regional_auth(system_key)
        quota.take(reg[0], "reads")
        return jsonify(_json(service.registry(reg)))

    @bp.route("/4/webhook/execute/<system_key>/cloudiot_devices",
              methods=["GET", "POST", "PATCH", "DELETE"])
    def devices(system_key: str) -> Response:
        reg = regional_auth(system_key)
        args = request.args
        body = request.get_json(silent=True, force=True)
        if request.method == "GET":
            quota.take(reg[0], "reads")
        elif request.method == "DELETE" or (request.method == "POST" and "method" not in args):
            quota.take(reg[0], "writes")
        if request.method == "POST" and args.get("method") == "modifyCloudToDeviceConfig":
            return jsonify(service.modify_config(reg, device_key(reg, args.get("name")), body))
        if request.method == "POST":
            return jsonify(_json(service.create_device(reg, body, audit=False)))
        if request.method == "PATCH":
            mask = res.parse_mask(args.get("updateMask"))
            key = device_key(reg, args.get("name"))
            return jsonify(_json(service.patch_device(reg, key, body, mask, audit=False)))
        if request.method == "DELETE":
            service.delete_device(reg, device_key(reg, args.get("name")), audit=False)
            return jsonify({})
        if "name" in args:
            mask = res.parse_mask(args.get("fieldMask"))
            return jsonify(_json(service.device(reg, device_key(reg, args["name"])), mask or None))
        match = _PARENT.fullmatch(args.get("parent", ""))
        if not match or tuple(match.groups()) != reg:
            raise res.bad(f"parent must be {reg_path(reg)}")
        found, token = service.list_devices(reg, _page(args.get("pageSize")),
                                            args.get("pageToken"), args.getlist("deviceIds"),
                                            args.getlist("deviceNumIds"))
        mask = res.parse_mask(args.get("fieldMask")) or ["id"]
        out = {"devices": [res.render(d, int_enums=False, mask=mask, always=("id", "numId"))
                           for d in found]}
        if token:
            out["nextPageToken"] = token  # type: ignore[assignment]
        return jsonify(out)

    return bp
