"""The one error tree of mender-bridge.

    BridgeError
    ├── ConfigError          settings missing or invalid (all problems at once)
    ├── InvalidKeyError      a credential that cannot or must not be sent to Mender
    ├── IdentityError        an identity template that cannot be parsed or rendered
    ├── EventError           an event that cannot be read
    ├── InputError           a name or request outside what the bridge accepts (malformed,
    │                        or outside the configured project, location and registries)
    └── ApiError             a remote call failed (service, method, path, status)
        ├── TransientApiError    timeouts, connection errors, 429, 5xx: worth retrying
        └── PermanentApiError    other 4xx: retrying will not help
            ├── AuthError        401/403: the bridge's own credentials were refused
            ├── NotFound
            └── Conflict

Messages name the system, the operation and the device; never a token, never key material.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """One or more settings are missing or invalid; `problems` lists each of them."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class InvalidKeyError(BridgeError):
    """A public key or certificate that cannot be parsed or fails the key policy."""


class IdentityError(BridgeError):
    """An identity template that is malformed, or a device it cannot be rendered for."""


class EventError(BridgeError):
    """An event payload that is not a registry device change the bridge understands."""


class InputError(BridgeError):
    """Hostile or malformed input: a name that breaks Cloud IoT's rules, or a registry outside
    the configured scope. Entry points answer 400, acknowledge an event, or exit 2."""


class ApiError(BridgeError):
    """A remote API call failed."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        method: str = "",
        path: str = "",
        status: int | None = None,
        detail: str = "",
        request_id: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after
        parts = [f"{service}: {message}"]
        if method or path:
            parts.append("(" + " ".join(p for p in (method, path) if p) + ")")
        if status is not None:
            parts.append(f"status {status}")
        if detail:
            parts.append(f"error: {detail}")
        if request_id:
            parts.append(f"request id {request_id}")
        super().__init__(" ".join(parts))

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments defeat Exception's default pickling (process pools, copy).
        return (_rebuild_api_error, (type(self), self.args, dict(vars(self))))


def _rebuild_api_error(cls: type[ApiError], args: tuple[object, ...],
                       state: dict[str, Any]) -> ApiError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class TransientApiError(ApiError):
    """A failure that may succeed on a later attempt (timeout, reset, 429, 5xx)."""


class PermanentApiError(ApiError):
    """A failure that a retry will not fix (4xx other than 429)."""


class AuthError(PermanentApiError):
    """The service refused the bridge's credentials (401/403): a revoked or expired token, a
    missing role. Not a per-device failure: a person must fix the configuration."""


class NotFound(PermanentApiError):
    """The remote object does not exist (404)."""


class Conflict(PermanentApiError):
    """The remote object already exists or is in a conflicting state (409)."""


def from_status(status: int | None, message: str, *, service: str, method: str = "",
                path: str = "", detail: str = "", request_id: str = "",
                retry_after: float | None = None) -> ApiError:
    """The one mapping of an HTTP status (None: no answer at all) onto the tree: 401/403
    AuthError, 404 NotFound, 409 Conflict, 408/429/5xx and no answer transient, any other
    4xx permanent."""
    kind: type[ApiError]
    if status is None or status in (408, 429) or status >= 500:
        kind = TransientApiError
    elif status in (401, 403):
        kind = AuthError
    elif status == 404:
        kind = NotFound
    elif status == 409:
        kind = Conflict
    else:
        kind = PermanentApiError
    return kind(message, service=service, method=method, path=path, status=status,
                detail=detail, request_id=request_id, retry_after=retry_after)
