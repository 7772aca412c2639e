"""Cloud IoT Core v1 REST routes of the stand-in, as the `google-cloud-iot` REST client calls
them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from bridge.sandbox.registry import resources as res
from bridge.sandbox.registry.service import Reg, Service

_ALWAYS = ("id", "numId")


def _int_enums() -> bool:
    # google-cloud-iot asks for `$alt=json;enum-encoding=int`; other clients get names.
    return "enum-encoding=int" in request.args.get("$alt", "")


def _body() -> Any:
    return request.get_json(silent=True, force=True)


def _device_json(device: dict[str, Any], mask: list[str] | None = None) -> dict[str, Any]:
    return res.render(device, int_enums=_int_enums(), mask=mask, always=(*_ALWAYS, "name"))


def blueprint(service: Service) -> Blueprint:
    prefix = "/v1/projects/<project>/locations/<location>"
    bp = Blueprint("cloudiot_v1", __name__, url_prefix=prefix)

    @bp.route("/registries", methods=["GET", "POST"])
    def registries(project: str, location: str) -> Response | tuple[Response, int]:
        if request.method == "POST":
            body = _body()
            if not isinstance(body, dict):
                raise res.bad("The request body must be a DeviceRegistry")
            created = service.create_registry(project, location, body)
            return jsonify(res.render(created, int_enums=_int_enums()))
        found, token = service.list_registries(project, location, request.args.get("pageSize"),
                                               request.args.get("pageToken"))
        out: dict[str, Any] = {"deviceRegistries": [res.render(r, int_enums=_int_enums())
                                                    for r in found]}
        if token:
            out["nextPageToken"] = token
        return jsonify(out)

    @bp.route("/registries/<registry>", methods=["GET", "DELETE"])
    def registry(project: str, location: str, registry: str) -> Response:
        reg: Reg = (project, location, registry)
        if request.method == "DELETE":
            service.delete_registry(reg)
            return jsonify({})
        return jsonify(res.render(service.registry(reg), int_enums=_int_enums()))

    @bp.route("/registries/<registry>/devices", methods=["GET", "POST"])
    def devices(project: str, location: str, registry: str) -> Response:
        reg: Reg = (project, location, registry)
        if request.method == "POST":
            return jsonify(_device_json(service.create_device(reg, _body(), audit=True)))
        found, token = service.list_devices(
            reg, request.args.get("pageSize"), request.args.get("pageToken"),
            request.args.getlist("deviceIds"), request.args.getlist("deviceNumIds"))
        mask = res.parse_mask(request.args.get("fieldMask"))
        out: dict[str, Any] = {"devices": [
            res.render(d, int_enums=_int_enums(), mask=mask or ["id"], always=_ALWAYS)
            for d in found]}
        if token:
            out["nextPageToken"] = token
        return jsonify(out)

    @bp.route("/registries/<registry>/devices/<device>", methods=["GET", "PATCH", "DELETE", "POST"])
    def device(project: str, location: str, registry: str, device: str) -> Response:
        reg: Reg = (project, location, registry)
        key, _, verb = device.partition(":")
        if request.method == "POST" and verb == "modifyCloudToDeviceConfig":
            config = service.modify_config(reg, key, _body())
            return jsonify(config)
        if request.method == "POST" and verb == "publishEvent":
            service.publish_event(reg, key, request.headers.get("Authorization"), _body())
            return jsonify({})
        if verb or request.method == "POST":
            raise res.ApiFailure(404, f"Unknown method {verb or 'POST'} on a device")
        if request.method == "PATCH":
            mask = res.parse_mask(request.args.get("updateMask"))
            updated = service.patch_device(reg, key, _body(), mask, audit=True)
            return jsonify(_device_json(updated))
        if request.method == "DELETE":
            service.delete_device(reg, key, audit=True)
            return jsonify({})
        mask = res.parse_mask(request.args.get("fieldMask"))
        return jsonify(_device_json(service.device(reg, key), mask or None))

    return bp
