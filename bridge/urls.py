"""Which URLs the bridge may talk to: https, or plain http to loopback only, never with
credentials in the URL (they would end up in logs and reprs; they have their own settings).
Used by the settings and by adapters that are given a URL directly (ClearBlade's answers).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from bridge.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_problems(name: str, url: str) -> list[str]:
    """What is wrong with `url` for the setting `name`; empty when it is acceptable."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return [f"{name} is not a valid URL"]
    if parts.scheme not in ("http", "https") or not host:
        return [f"{name} must be an https:// URL"]
    if parts.username is not None or parts.password is not None:
        return [f"{name} must not hold a user name or password"]
    if parts.scheme == "http" and not is_loopback(host):
        return [f"{name}: plain http:// is refused except to loopback; use https://"]
    return []


def check_url(name: str, url: str) -> None:
    """Raise ConfigError unless `url` is acceptable (see `url_problems`)."""
    problems = url_problems(name, url)
    if problems:
        raise ConfigError(problems)
