"""Settings of the bridge, from environment variables or a TOML file with the same names.

Environment: `MENDER_URL`; TOML: `mender_url = "…"`. Every missing or invalid setting is
reported at once in one ConfigError. Secrets are held as `Secret` and never printed.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import ConfigError, IdentityError
from bridge.identity import DEFAULT_TEMPLATE, IdentityTemplate
from bridge.model import RegistryRef, Secret


@dataclass(frozen=True)
class Settings:
    """Every setting with its default; README.md documents each one in its settings table
    (tests/test_docs.py checks that the names and defaults match)."""

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

    def registry_ref(self, name: str) -> RegistryRef:
        """A registry by short name (in IOT_PROJECT and IOT_LOCATION) or by full path
        `projects/P/locations/L/registries/R`; ValueError for anything else."""
        parts = name.split("/")
        if (len(parts) == 6 and parts[0::2] == ["projects", "locations", "registries"]
                and all(parts[1::2])):
            return RegistryRef(parts[1], parts[3], parts[5])
        if len(parts) == 1 and name:
            return RegistryRef(self.iot_project or "", self.iot_location, name)
        raise ValueError(f"not a registry name or path: {name[:200]!r}")

    @property
    def registry_refs(self) -> list[RegistryRef]:
        """The configured registries (IOT_REGISTRIES); empty means all of the location."""
        return [self.registry_ref(name) for name in self.iot_registries]

    def secret_values(self) -> list[str]:
        """The secrets' texts, for the log redactor; never for anything that prints."""
        secrets = (self.mender_token, self.mender_password, self.webhook_secret)
        return [s.reveal() for s in secrets if s is not None]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls.from_mapping({k.lower(): v for k, v in env.items()}, source="environment")

    @classmethod
    def from_toml(cls, path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
        """Read a TOML file; non-empty environment variables in `env` override its values."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = [f"unknown setting {k!r} in {path}" for k in sorted(set(data) - known)]
        merged: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for key, value in (env or {}).items():
            if key.lower() in known and value != "":
                merged[key.lower()] = value
        return cls.from_mapping(merged, source=str(path), problems=unknown)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], source: str = "settings", problems: Sequence[str] = ()
    ) -> Settings:
        """Convert and check every value; all problems (plus `problems`) in one ConfigError."""
        found: list[str] = []
        failed: list[str] = []
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data.get(f.name)
            text = raw.reveal() if isinstance(raw, Secret) else raw
            if text is None or (isinstance(text, str) and not text.strip()):
                continue
            try:
                values[f.name] = _CONVERTERS.get(f.name, _text)(raw)
            except (TypeError, ValueError) as exc:
                failed.append(f.name.upper())
                found.append(f"{f.name.upper()}: {exc}")
        # Checked even when some values did not convert (their defaults stand in), so one run
        # reports everything; a default's own complaint would only repeat the first one.
        settings = cls(**values)
        found.extend(p for p in settings.problems() if not p.startswith(tuple(failed)))
        if found or problems:
            raise ConfigError([*problems, *(f"{p} (from {source})" for p in found)])
        return settings

    def problems(self) -> list[str]:
        out = list(_url_problems("MENDER_URL", self.mender_url))
        if self.mender_token is None and not (self.mender_username and self.mender_password):
            out.append("MENDER_TOKEN (or MENDER_USERNAME and MENDER_PASSWORD) is required")
        if self.mender_token is not None and (self.mender_username or self.mender_password):
            out.append("MENDER_TOKEN and MENDER_USERNAME/MENDER_PASSWORD: give one, not both")
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
        if not 0 < self.mender_timeout < math.inf:
            out.append("MENDER_TIMEOUT must be a positive number of seconds")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            out.append("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        try:
            IdentityTemplate.parse(self.identity_template)
        except IdentityError as exc:
            out.append(f"IDENTITY_TEMPLATE: {exc}")
        for name in self.iot_registries:
            try:
                self.registry_ref(name)
            except ValueError as exc:
                out.append(f"IOT_REGISTRIES: {exc}")
        return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(name: str, url: str) -> None:
    """Raise ConfigError unless `url` is https (or http to loopback) with no credentials in it;
    the adapters check URLs given to them directly, not through Settings, the same way."""
    problems = _url_problems(name, url)
    if problems:
        raise ConfigError(problems)


def _url_problems(name: str, url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return [f"{name} is not a valid URL"]
    if parts.scheme not in ("http", "https") or not host:
        return [f"{name} must be an https:// URL"]
    if parts.username is not None or parts.password is not None:
        # A password there would end up in logs and reprs; credentials have their own settings.
        return [f"{name} must not hold a user name or password"]
    if parts.scheme == "http" and not is_loopback(host):
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
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a whole number, got {value!r}")


def _float(value: object) -> float:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise ValueError(f"expected a number, got {value!r}")


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
    **{name: lambda v: _text(v).lower()
       for name in ("registry_backend", "iot_credentials", "on_delete", "on_blocked")},
}
