"""The checks of a whole `Settings`: what is missing, out of range or contradictory, one
line per problem, each naming the setting (the environment variable's name)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.errors import IdentityError, InputError
from bridge.identity import IdentityTemplate
from bridge.tags import TagTemplate
from bridge.urls import url_problems

if TYPE_CHECKING:
    from bridge.config import Settings


def problems(s: Settings) -> list[str]:
    out = _mender(s) + _registry(s) + _targets(s)
    for name, value, low, high in (("MIN_RSA_BITS", s.min_rsa_bits, 1024, 16384),
                                   ("CONCURRENCY", s.concurrency, 1, 256)):
        if not low <= value <= high:
            out.append(f"{name} must be between {low} and {high}, not {value}")
    if not 0 < s.mender_timeout < math.inf:
        out.append("MENDER_TIMEOUT must be a positive number of seconds")
    if s.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        out.append("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    if s.reconcile_prune not in ("auto", "on", "off"):
        out.append("RECONCILE_PRUNE must be 'auto', 'on' or 'off'")
    for name, text, parse in (("IDENTITY_TEMPLATE", s.identity_template, IdentityTemplate.parse),
                              ("TAGS", s.tags, TagTemplate.parse)):
        if text:
            try:
                parse(text)
            except IdentityError as exc:
                out.append(f"{name}: {exc}")
    return out


def _mender(s: Settings) -> list[str]:
    if s.mender_targets:
        if s.mender_token is not None or s.mender_username or s.mender_password:
            return ["MENDER_TARGETS and MENDER_TOKEN/MENDER_USERNAME: give one, not both "
                    "(each target has its own MENDER_TOKEN_<NAME>)"]
        return []
    out = url_problems("MENDER_URL", s.mender_url)
    if s.mender_token is None and not (s.mender_username and s.mender_password):
        out.append("MENDER_TOKEN (or MENDER_USERNAME and MENDER_PASSWORD) is required")
    if s.mender_token is not None and (s.mender_username or s.mender_password):
        out.append("MENDER_TOKEN and MENDER_USERNAME/MENDER_PASSWORD: give one, not both")
    if s.mender_ca_bundle and not Path(s.mender_ca_bundle).is_file():
        out.append(f"MENDER_CA_BUNDLE: no such file {s.mender_ca_bundle}")
    return out


def _registry(s: Settings) -> list[str]:
    out: list[str] = []
    if s.registry_backend not in ("google", "clearblade"):
        out.append("REGISTRY_BACKEND must be 'google' or 'clearblade'")
    if not s.iot_project:
        out.append("IOT_PROJECT is required")
    if s.registry_backend == "clearblade" and not s.clearblade_configuration:
        out.append("CLEARBLADE_CONFIGURATION (service-account JSON file) is required")
    if s.iot_credentials not in ("adc", "anonymous"):
        out.append("IOT_CREDENTIALS must be 'adc' or 'anonymous'")
    if s.iot_endpoint:
        out.extend(url_problems("IOT_ENDPOINT", s.iot_endpoint))
    if s.iot_project:
        try:
            s.scope  # noqa: B018 -- validates project, location and registry names
        except InputError as exc:
            out.append(str(exc))
    return out


def _targets(s: Settings) -> list[str]:
    out: list[str] = []
    counts = Counter(t.name for t in s.mender_targets)
    out.extend(f"MENDER_TARGETS: target {n!r} appears twice" for n, c in counts.items() if c > 1)
    routed = Counter(r for t in s.mender_targets for r in t.registries)
    out.extend(f"MENDER_TARGETS: registry {r!r} is routed to several targets"
               for r, c in routed.items() if c > 1)
    for target in s.mender_targets:
        where = f"MENDER_TARGETS ({target.name})"
        out.extend(url_problems(f"{where} mender_url", target.mender_url))
        if target.mender_token is None:
            out.append(f"{where}: no token; set {target.token_variable}")
        if not target.registries:
            out.append(f"{where}: no registries")
        unrouted = set(target.registries) - set(s.iot_registries) if s.iot_registries else ()
        out.extend(f"{where}: registry {r!r} is not in IOT_REGISTRIES" for r in sorted(unrouted))
        if target.mender_ca_bundle and not Path(target.mender_ca_bundle).is_file():
            out.append(f"{where}: no such CA bundle file {target.mender_ca_bundle}")
    if s.mender_targets and s.iot_registries:
        missing = set(s.iot_registries) - set(routed)
        out.extend(f"IOT_REGISTRIES: registry {r!r} is routed to no target in MENDER_TARGETS"
                   for r in sorted(missing))
    return out
