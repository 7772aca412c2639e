"""Converters from raw setting values (environment text, TOML values) to typed settings.

Each raises ValueError with a short reason; `bridge.config` names the setting and where the
value came from. Mender targets come as TOML tables or, in the environment, as JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.model import OnBlocked, OnDelete, Secret

TARGET_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")


@dataclass(frozen=True)
class Target:
    """One Mender server (or tenant) and the registries whose devices it admits."""

    name: str
    mender_url: str
    registries: tuple[str, ...]
    mender_token: Secret | None = None
    mender_ca_bundle: str | None = None

    @property
    def token_variable(self) -> str:
        """The environment variable holding this target's token (Secret Manager in Google)."""
        return "MENDER_TOKEN_" + self.name.upper().replace("-", "_")


def text(value: object) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return str(value).strip()


def secret(value: object) -> Secret:
    if isinstance(value, Secret):
        return value
    raw = text(value)
    try:
        raw.encode("latin-1")
    except UnicodeEncodeError:
        # It goes into an HTTP header, which only carries Latin-1: say so now, not mid-sync.
        raise ValueError("contains characters an HTTP header cannot carry (not Latin-1); "
                         "check the value") from None
    return Secret(raw)


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = text(value).lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a whole number, got {str(value)[:40]!r}")


def number(value: object) -> float:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            result = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(result):
                return result
    raise ValueError(f"expected a number, got {str(value)[:40]!r}")


def names(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else text(value).split(",")
    return tuple(s for s in (text(i) for i in items) if s)


def template_text(value: object) -> str:
    """A template as text; a TOML table `{name = "{field}"}` becomes `name={field},...`."""
    if isinstance(value, Mapping):
        return ",".join(f"{text(k)}={text(v)}" for k, v in value.items())
    return text(value)


def choice(kind: Callable[[str], Any]) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        word = text(value).lower()
        try:
            return kind(word)
        except ValueError:
            allowed = ", ".join(repr(str(m)) for m in kind)  # type: ignore[attr-defined]
            raise ValueError(f"expected one of {allowed}, got {word[:40]!r}") from None
    return convert


def targets(value: object, env: Mapping[str, str] | None = None) -> tuple[Target, ...]:
    """`[[targets]]` tables, or MENDER_TARGETS JSON; tokens from MENDER_TOKEN_<NAME>."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("expected a JSON list of targets") from None
    if not isinstance(value, list):
        raise ValueError("expected a list of targets")
    return tuple(_target(item, env or {}) for item in value)


def _target(item: object, env: Mapping[str, str]) -> Target:
    if not isinstance(item, Mapping):
        raise ValueError("each target must be a table/object")
    name = text(item.get("name", ""))
    if not TARGET_NAME.fullmatch(name):
        raise ValueError(f"target name {name[:40]!r} must be 1-31 lowercase letters, digits "
                         "or '-', starting with a letter")
    unknown = set(item) - {"name", "mender_url", "mender_token", "mender_ca_bundle",
                           "registries"}
    if unknown:
        raise ValueError(f"target {name}: unknown keys {', '.join(sorted(unknown))}")
    target = Target(name, text(item.get("mender_url", "")), names(item.get("registries", [])),
                    None, text(item["mender_ca_bundle"]) if item.get("mender_ca_bundle")
                    else None)
    token = item.get("mender_token") or env.get(target.token_variable)
    return Target(target.name, target.mender_url, target.registries,
                  secret(token) if token else None, target.mender_ca_bundle)


CONVERTERS: dict[str, Callable[[object], Any]] = {
    "mender_token": secret,
    "mender_password": secret,
    "webhook_secret": secret,
    "mender_timeout": number,
    "iot_registries": names,
    "revoke_removed_keys": boolean,
    "notify_device": boolean,
    "min_rsa_bits": integer,
    "concurrency": integer,
    "identity_template": template_text,
    "tags": template_text,
    "log_level": lambda v: text(v).upper(),
    "on_delete": choice(OnDelete),
    "on_blocked": choice(OnBlocked),
    **{name: lambda v: text(v).lower()
       for name in ("registry_backend", "iot_credentials", "reconcile_prune")},
}
