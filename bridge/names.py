"""Names of the registry side, validated by Cloud IoT's rules (docs/cloud-iot.md#ids).

Every name that reaches the bridge from outside (an event, an HTTP body, argv, a listing) goes
through here before it is used in a path or compared with the configured scope. Pure: raises
InputError with a one-line reason naming the field, never echoing more than 80 characters.
"""

from __future__ import annotations

import re
from typing import Final

from bridge.errors import InputError
from bridge.model import RegistryRef

# Device and registry ids: a letter, then letters, digits and -_.+~%; 3 to 255 characters.
_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9\-_.+~%]{2,254}")
# The numeric id Cloud IoT assigns (uint64).
_NUM_ID: Final = re.compile(r"[0-9]{1,20}")
# Project ids: 6-30 lowercase letters, digits and hyphens, starting with a letter and not
# ending with a hyphen; old domain-scoped projects carry a `domain.tld:` prefix.
_PROJECT: Final = re.compile(r"(?:[a-z][a-z0-9.\-]{0,62}:)?[a-z][a-z0-9\-]{4,28}[a-z0-9]")
# Regions such as us-central1, europe-west1, asia-east1.
_LOCATION: Final = re.compile(r"[a-z][a-z0-9\-]{0,62}")


def _shown(value: str) -> str:
    return repr(value[:80]) + ("…" if len(value) > 80 else "")


def _check(value: object, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, not {type(value).__name__}")
    if not pattern.fullmatch(value):
        raise InputError(f"{what} {_shown(value)} is not valid: {rule}")
    return value


def device_id(value: object, what: str = "device id") -> str:
    """A device's string id, or its numeric id (all digits)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return num_id(value, what)
    return _check(value, _ID, what, "it starts with a letter and has 3-255 letters, digits "
                  "or -_.+~% (or is a numeric id)")


def num_id(value: object, what: str = "numeric device id") -> str:
    return _check(value, _NUM_ID, what, "it has 1-20 digits")


def registry_id(value: object, what: str = "registry id") -> str:
    return _check(value, _ID, what, "it starts with a letter and has 3-255 letters, digits "
                  "or -_.+~%")


def project_id(value: object, what: str = "project id") -> str:
    return _check(value, _PROJECT, what, "6-30 lowercase letters, digits or hyphens, "
                  "starting with a letter")


def location(value: object, what: str = "location") -> str:
    return _check(value, _LOCATION, what, "a region such as us-central1")


def registry_ref(project: object, location_: object, registry: object,
                 what: str = "") -> RegistryRef:
    """A RegistryRef whose three parts are each valid; `what` prefixes the messages."""
    prefix = f"{what} " if what else ""
    return RegistryRef(project_id(project, f"{prefix}project id"),
                       location(location_, f"{prefix}location"),
                       registry_id(registry, f"{prefix}registry id"))


def parse_registry(text: object, *, project: str | None, location_: str,
                   what: str = "registry") -> RegistryRef:
    """`projects/P/locations/L/registries/R`, or a bare registry id in `project`/`location_`."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, not {type(text).__name__}")
    parts = text.split("/")
    if len(parts) == 6 and parts[0::2] == ["projects", "locations", "registries"]:
        return registry_ref(parts[1], parts[3], parts[5], "" if what == "registry" else what)
    if len(parts) != 1:
        raise InputError(f"{what} {_shown(text)} is neither a registry id nor "
                         "projects/P/locations/L/registries/R")
    if not project:
        raise InputError("IOT_PROJECT is not set: give the registry's full path "
                         "projects/P/locations/L/registries/R")
    return RegistryRef(project, location(location_), registry_id(text, f"{what} id"))
