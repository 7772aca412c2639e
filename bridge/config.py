"""Settings of the bridge, from environment variables or a TOML file with the same names.

Environment: `MENDER_URL`; TOML: `mender_url = "…"`. Every missing or invalid setting is
reported at once in one ConfigError. Secrets are held as `Secret` and never printed.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import ConfigError, IdentityError
from bridge.identity import DEFAULT_TEMPLATE, IdentityTemplate
from bridge.model import Secret


@dataclass(frozen=True)
class Settings:
    """Every setting, its default, and (in `help`) what it means: the README table mirrors this."""

    mender_url: str = "https://hosted.mender.io"
    mender_token: Secret | None = None
    mender_username: str | None = None
    mender_password: Secret | None = None
    mender_ca_bundle: str | None = None
    mender_timeout: float = 10.0
    registry_backend: str = "google"
    iot_project: str | None = None
    iot_location: str = "us-central1"
    iot_registries: tuple[str, ...] = ()
    iot_endpoint: str | None = None
    iot_credentials: str = "adc"
    clearblade_configuration: str | None = None
    identity_template: str = DEFAULT_TEMPLATE
    on_delete: str = "decommission"
    on_blocked: str = "ignore"
    revoke_removed_keys: bool = True
    min_rsa_bits: int = 2048
    concurrency: int = 16
    notify_device: bool = False
    webhook_secret: Secret | None = None
    log_level: str = "INFO"

    @property
    def template(self) -> IdentityTemplate:
        return IdentityTemplate.parse(self.identity_template)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls.from_mapping({k.lower(): v for k, v in env.items()}, source="environment")

    @classmethod
    def from_toml(cls, path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
        """Read a TOML file; environment variables given in `env` override its values."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError([f"unknown setting {k!r} in {path}" for k in unknown])
        merged: dict[str, Any] = dict(data)
        for key, value in (env or {}).items():
            if key.lower() in known:
                merged[key.lower()] = value
        return cls.from_mapping(merged, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "settings") -> Settings:
        problems: list[str] = []
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data or data[f.name] in ("", None):
                continue
            raw = data[f.name]
            try:
                values[f.name] = _CONVERTERS.get(f.name, _text)(raw)
            except (TypeError, ValueError) as exc:
                problems.append(f"{f.name.upper()}: {exc}")
        settings = cls(**values) if not problems else cls()
        if not problems:
            problems.extend(settings.problems())
        if problems:
            raise ConfigError([f"{p} (from {source})" for p in problems])
        return settings

    def problems(self) -> list[str]:
        out = list(_url_problems("MENDER_URL", self.mender_url))
        if self.mender_token is None and not (self.mender_username and self.mender_password):
            out.append("MENDER_TOKEN (or MENDER_USERNAME and MENDER_PASSWORD) is required")
        if self.mender_token is not None and (self.mender_username or self.mender_password):
            out.append("give MENDER_TOKEN or MENDER_USERNAME/MENDER_PASSWORD, not both")
        if self.mender_ca_bundle and not Path(self.mender_ca_bundle).is_file():
            out.append(f"MENDER_CA_BUNDLE: no such file {self.mender_ca_bundle}")
        if self.registry_backend not in ("google", "clearblade"):
            out.append("REGISTRY_BACKEND must be 'google' or 'clearblade'")
        if self.registry_backend == "google" and not self.iot_project:
            out.append("IOT_PROJECT is required")
        if self.registry_backend == "clearblade" and not self.clearblade_configuration:
            out.append("CLEARBLADE_CONFIGURATION (service-account JSON file) is required")
        if self.iot_credentials not in ("adc", "anonymous"):
            out.append("IOT_CREDENTIALS must be 'adc' or 'anonymous'")
        if self.iot_endpoint:
            out.extend(_url_problems("IOT_ENDPOINT", self.iot_endpoint))
        if self.on_delete not in ("decommission", "ignore"):
            out.append("ON_DELETE must be 'decommission' or 'ignore'")
        if self.on_blocked not in ("ignore", "reject"):
            out.append("ON_BLOCKED must be 'ignore' or 'reject'")
        if not 1024 <= self.min_rsa_bits <= 16384:
            out.append("MIN_RSA_BITS must be between 1024 and 16384")
        if not 1 <= self.concurrency <= 256:
            out.append("CONCURRENCY must be between 1 and 256")
        if self.mender_timeout <= 0:
            out.append("MENDER_TIMEOUT must be positive")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            out.append("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        try:
            IdentityTemplate.parse(self.identity_template)
        except IdentityError as exc:
            out.append(f"IDENTITY_TEMPLATE: {exc}")
        return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_problems(name: str, url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{name} must be an https:// URL, got {url!r}"]
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return [f"{name}: plain http:// is refused except to loopback; use https://"]
    return []


def _text(value: object) -> str:
    if not isinstance(value, str | int | float):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return str(value).strip()


def _secret(value: object) -> Secret:
    return value if isinstance(value, Secret) else Secret(_text(value))


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def _names(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else _text(value).split(",")
    return tuple(s for s in (_text(i) for i in items) if s)


_CONVERTERS: dict[str, Callable[[object], Any]] = {
    "mender_token": _secret,
    "mender_password": _secret,
    "webhook_secret": _secret,
    "mender_timeout": _float,
    "iot_registries": _names,
    "revoke_removed_keys": _bool,
    "notify_device": _bool,
    "min_rsa_bits": _int,
    "concurrency": _int,
    "log_level": lambda v: _text(v).upper(),
}
