"""Cloud IoT Core v1 resource rules of the stand-in: validation, enums, field masks, errors.

Devices are stored in REST JSON (camelCase, enum names) and rendered per request, with
integer enums when the client asks for `$alt=json;enum-encoding=int` (google-cloud-iot does).
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

UNSET_TIME = "1970-01-01T00:00:00Z"
DEVICE_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9\-_.+~%]{2,255}")
REGISTRY_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9\-_.+~%]{2,63}")
METADATA_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9\-_.+~%]+")
FORMATS = {0: "UNSPECIFIED_PUBLIC_KEY_FORMAT", 1: "RSA_X509_PEM", 2: "ES256_PEM",
           3: "RSA_PEM", 4: "ES256_X509_PEM"}
LOG_LEVELS = {0: "LOG_LEVEL_UNSPECIFIED", 10: "NONE", 20: "ERROR", 30: "INFO", 40: "DEBUG"}
GATEWAY_TYPES = {0: "GATEWAY_TYPE_UNSPECIFIED", 1: "GATEWAY", 2: "NON_GATEWAY"}
GATEWAY_AUTH = {0: "GATEWAY_AUTH_METHOD_UNSPECIFIED", 1: "ASSOCIATION_ONLY",
                2: "DEVICE_AUTH_TOKEN_ONLY", 3: "ASSOCIATION_AND_DEVICE_AUTH_TOKEN"}
MQTT_STATES = {0: "MQTT_STATE_UNSPECIFIED", 1: "MQTT_ENABLED", 2: "MQTT_DISABLED"}
HTTP_STATES = {0: "HTTP_STATE_UNSPECIFIED", 1: "HTTP_ENABLED", 2: "HTTP_DISABLED"}
CERT_FORMATS = {0: "UNSPECIFIED_PUBLIC_KEY_CERTIFICATE_FORMAT", 1: "X509_CERTIFICATE_PEM"}
# (path of the enum inside a resource, its table); "[]" walks a list
_ENUM_PATHS: list[tuple[tuple[str, ...], dict[int, str]]] = [
    (("credentials", "[]", "publicKey", "format"), FORMATS),
    (("credentials", "[]", "publicKeyCertificate", "format"), CERT_FORMATS),
    (("logLevel",), LOG_LEVELS),
    (("gatewayConfig", "gatewayType"), GATEWAY_TYPES),
    (("gatewayConfig", "gatewayAuthMethod"), GATEWAY_AUTH),
    (("mqttConfig", "mqttEnabledState"), MQTT_STATES),
    (("httpConfig", "httpEnabledState"), HTTP_STATES),
]
MUTABLE_DEVICE_FIELDS = {"credentials", "blocked", "metadata", "log_level"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
           504: "DEADLINE_EXCEEDED"}


class ApiFailure(Exception):
    """An error answered as Google's JSON error body."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS.get(status, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.status, "message": str(self), "status": self.code}}


def bad(message: str) -> ApiFailure:
    return ApiFailure(400, message)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise bad(f"Invalid value at '{field}': expected an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"Invalid value at '{field}' ({value!r}): not an RFC 3339 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _walk(obj: Any, path: tuple[str, ...], table: dict[int, str], to_int: bool) -> None:
    if not path or not isinstance(obj, dict | list):
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        for item in obj if isinstance(obj, list) else []:
            _walk(item, rest, table, to_int)
        return
    if not isinstance(obj, dict) or head not in obj:
        return
    if rest:
        _walk(obj[head], rest, table, to_int)
        return
    obj[head] = enum_value(obj[head], table, head, to_int)


def enum_value(value: object, table: dict[int, str], field: str, to_int: bool) -> int | str:
    names = {v: k for k, v in table.items()}
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad(f"Invalid value at '{field}': {value!r}")
    if isinstance(value, int):
        if value not in table:
            raise bad(f"Invalid value at '{field}' ({value}): unknown enum value")
        return value if to_int else table[value]
    if value not in names:
        raise bad(f"Invalid value at '{field}' ({value!r}): unknown enum name")
    return names[value] if to_int else value


def normalize_enums(resource: dict[str, Any], to_int: bool) -> dict[str, Any]:
    """In place: every known enum of the resource as a name (stored) or a number (rendered)."""
    for path, table in _ENUM_PATHS:
        _walk(resource, path, table, to_int)
    return resource


def snake(path: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), path)


def camel(path: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), path)


def parse_mask(raw: str | None) -> list[str]:
    """A FieldMask as sent over REST (`a,b`, camelCase or snake_case) → snake_case paths."""
    return [snake(p.strip()) for p in (raw or "").split(",") if p.strip()]


def check_key(fmt: str, key: object, field: str) -> None:
    """The key parses, and is what its format says (RSA or P-256; bare key or certificate)."""
    if not isinstance(key, str) or not key.strip():
        raise bad(f"Invalid value at '{field}.key': the key is empty")
    data = key.encode("utf-8", "replace")
    public: object
    try:
        if fmt.endswith("X509_PEM"):
            if b"-----BEGIN CERTIFICATE-----" not in data:
                raise ValueError("not a PEM certificate")
            public = x509.load_pem_x509_certificate(data).public_key()
        else:
            if b"-----BEGIN PUBLIC KEY-----" not in data:
                raise ValueError("not a PEM public key")
            public = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise bad(f"The credential at '{field}' could not be parsed as {fmt}: {exc}") from None
    if fmt.startswith("RSA") and not isinstance(public, rsa.RSAPublicKey):
        raise bad(f"The credential at '{field}' is not an RSA key, as {fmt} requires")
    if fmt.startswith("ES256") and not (isinstance(public, ec.EllipticCurvePublicKey)
                                        and public.curve.name == "secp256r1"):
        raise bad(f"The credential at '{field}' is not a P-256 key, as {fmt} requires")


def check_credentials(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad("Invalid value at 'device.credentials': expected a list")
    if len(value) > 3:
        raise bad("No more than 3 credentials can be bound to a single device at a time.")
    out = []
    for i, cred in enumerate(value):
        field = f"device.credentials[{i}]"
        if not isinstance(cred, dict) or not isinstance(cred.get("publicKey"), dict):
            raise bad(f"Invalid value at '{field}': a publicKey credential is required")
        fmt = enum_value(cred["publicKey"].get("format", 0), FORMATS, f"{field}.format", False)
        if fmt == FORMATS[0]:
            raise bad(f"Invalid value at '{field}.publicKey.format': the format is unspecified")
        check_key(str(fmt), cred["publicKey"].get("key"), f"{field}.publicKey")
        expiry = cred.get("expirationTime")
        stamp = UNSET_TIME
        if expiry not in (None, "", UNSET_TIME):
            stamp = parse_time(expiry, f"{field}.expirationTime").astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        out.append({"publicKey": {"format": fmt, "key": cred["publicKey"]["key"]},
                    "expirationTime": stamp})
    return out


def check_registry_credentials(value: object) -> list[dict[str, Any]]:
    """Registry CA certificates: at most 10, X509_CERTIFICATE_PEM, each parsing."""
    if not isinstance(value, list) or len(value) > 10:
        raise bad("A registry holds a list of at most 10 credentials")
    out = []
    for i, cred in enumerate(value):
        cert = cred.get("publicKeyCertificate") if isinstance(cred, dict) else None
        if not isinstance(cert, dict) or not isinstance(cert.get("certificate"), str):
            raise bad(f"Invalid value at 'deviceRegistry.credentials[{i}]'")
        fmt = enum_value(cert.get("format", 0), CERT_FORMATS, "format", False)
        if fmt != CERT_FORMATS[1]:
            raise bad(f"Invalid value at 'deviceRegistry.credentials[{i}].format'")
        try:
            x509.load_pem_x509_certificate(cert["certificate"].encode())
        except ValueError:
            raise bad(f"The registry certificate {i} could not be parsed") from None
        out.append({"publicKeyCertificate": {"format": fmt,
                                             "certificate": cert["certificate"]}})
    return out


def check_signed_by_registry(credentials: list[dict[str, Any]], registry: dict[str, Any]
                             ) -> None:
    """With registry certificates, device credentials must be certificates one of them issued."""
    cas = [x509.load_pem_x509_certificate(c["publicKeyCertificate"]["certificate"].encode())
           for c in registry.get("credentials", [])]
    if not cas:
        return
    for i, cred in enumerate(credentials):
        fmt = cred["publicKey"]["format"]
        if not fmt.endswith("X509_PEM"):
            raise bad(f"The registry has certificates: credential {i} must be an X.509 "
                      f"certificate, not {fmt}")
        cert = x509.load_pem_x509_certificate(cred["publicKey"]["key"].encode())
        if not any(_issued_by(cert, ca) for ca in cas):
            raise bad(f"The certificate of credential {i} is not signed by a registry "
                      "certificate")


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise bad("Invalid value at 'device.metadata': expected a map")
    if len(value) > 500:
        raise bad("A device can have at most 500 metadata pairs")
    total = 0
    for k, v in value.items():
        if not METADATA_KEY.fullmatch(k) or len(k.encode()) >= 128:
            raise bad(f"Invalid metadata key {k!r}")
        if not isinstance(v, str) or len(v.encode()) > 32 * 1024:
            raise bad(f"Invalid metadata value for key {k!r} (a string of at most 32 KB)")
        total += len(k.encode()) + len(v.encode())
    if total >= 256 * 1024:
        raise bad("The device metadata must total less than 256 KB")
    return dict(value)


def device_fields(body: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """Validate the writable device fields named in `fields` (snake_case) from a request."""
    out: dict[str, Any] = {}
    if "credentials" in fields:
        out["credentials"] = check_credentials(body.get("credentials", []))
    if "metadata" in fields:
        out["metadata"] = check_metadata(body.get("metadata", {}))
    if "blocked" in fields:
        blocked = body.get("blocked", False)
        if not isinstance(blocked, bool):
            raise bad("Invalid value at 'device.blocked': expected a boolean")
        out["blocked"] = blocked
    if "log_level" in fields and "logLevel" in body:
        out["logLevel"] = enum_value(body["logLevel"], LOG_LEVELS, "device.logLevel", False)
    if "gateway_config" in fields and isinstance(body.get("gatewayConfig"), dict):
        out["gatewayConfig"] = normalize_enums({"gatewayConfig": dict(body["gatewayConfig"])},
                                               False)["gatewayConfig"]
    return out


def render(resource: dict[str, Any], *, int_enums: bool, mask: list[str] | None = None,
           always: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stored resource as JSON for a response, restricted to `mask` (top-level fields)."""
    out = copy.deepcopy(resource)
    if mask:
        keep = {camel(p.split(".")[0]) for p in mask} | set(always)
        out = {k: v for k, v in out.items() if k in keep}
    return normalize_enums(out, int_enums)
