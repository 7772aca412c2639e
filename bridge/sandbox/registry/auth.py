"""Device authentication of the stand-in's HTTP bridge: the device JWT, checked as Cloud IoT did.

RS256 or ES256, `aud` = the project, `iat`/`exp` required, at most 24 h of lifetime, not
expired, signed by one of the device's current (unexpired) credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bridge.sandbox.registry.resources import UNSET_TIME, ApiFailure

MAX_LIFETIME = 24 * 3600
CLOCK_SKEW = 600  # seconds of `iat` in the future that Cloud IoT tolerated
_ALG_PREFIX = {"RS256": "RSA", "ES256": "ES256"}


def _unauthenticated(message: str) -> ApiFailure:
    return ApiFailure(401, f"The device could not be authenticated: {message}")


def _public_key(fmt: str, pem: str) -> Any:
    data = pem.encode()
    if fmt.endswith("X509_PEM"):
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


def current_keys(device: dict[str, Any], alg: str, now: datetime) -> list[Any]:
    """Public keys of the device's unexpired credentials that can verify `alg`."""
    keys = []
    for cred in device.get("credentials", []):
        fmt = str(cred["publicKey"]["format"])
        if not fmt.startswith(_ALG_PREFIX[alg]):
            continue
        expiry = cred.get("expirationTime", UNSET_TIME)
        if expiry not in ("", UNSET_TIME) and datetime.fromisoformat(
                expiry.replace("Z", "+00:00")) <= now:
            continue
        keys.append(_public_key(fmt, cred["publicKey"]["key"]))
    return keys


def verify_device_jwt(authorization: str | None, device: dict[str, Any], project: str,
                      now: datetime | None = None) -> dict[str, Any]:
    """The verified claims, or ApiFailure 401 (bad token) / 403 (blocked device)."""
    now = now or datetime.now(UTC)
    if not authorization or not authorization.startswith("Bearer "):
        raise _unauthenticated("an Authorization: Bearer <JWT> header is required")
    token = authorization[len("Bearer "):].strip()
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        raise _unauthenticated(f"malformed JWT ({exc})") from None
    if alg not in _ALG_PREFIX:
        raise _unauthenticated(f"unsupported JWT algorithm {alg!r}; use RS256 or ES256")
    keys = current_keys(device, alg, now)
    if not keys:
        raise _unauthenticated(f"the device has no current credential for {alg}")
    last: Exception | None = None
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[alg], audience=project,
                options={"require": ["iat", "exp", "aud"], "verify_iat": False})
        except jwt.InvalidSignatureError as exc:
            last = exc
            continue
        except jwt.InvalidAudienceError:
            raise _unauthenticated(f"the audience (aud) must be the project id {project}"
                                   ) from None
        except jwt.PyJWTError as exc:
            raise _unauthenticated(str(exc)) from None
        break
    else:
        raise _unauthenticated(f"the signature matches none of the device's keys ({last})")
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise _unauthenticated("iat and exp must be numbers")
    if exp - iat > MAX_LIFETIME:
        raise _unauthenticated("the JWT lifetime (exp - iat) exceeds 24 hours")
    if iat > now.timestamp() + CLOCK_SKEW:
        raise _unauthenticated("the JWT is issued in the future (iat)")
    if device.get("blocked"):
        raise ApiFailure(403, f"The device {device['id']} is blocked.", "FAILED_PRECONDITION")
    return claims
