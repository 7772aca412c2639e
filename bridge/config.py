"""Settings of the bridge, from environment variables or a TOML file with the same names.

Environment: `MENDER_URL`; TOML: `mender_url = "…"`; environment variables override the file.
Every missing or invalid setting is reported at once, one problem per line, each naming where
its value came from. Secrets are held as `Secret` and never printed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bridge.configvalues import CONVERTERS, Target, targets, text
from bridge.errors import ConfigError
from bridge.identity import DEFAULT_TEMPLATE, IdentityTemplate
from bridge.model import OnBlocked, OnDelete, RegistryRef, Secret
from bridge.scope import Scope
from bridge.urls import check_url, is_loopback

__all__ = ["Settings", "Target", "check_url", "is_loopback"]
PRUNE_MODES = ("auto", "on", "off")
MAX_FILE_BYTES = 1024 * 1024


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
    mender_targets: tuple[Target, ...] = ()
    registry_backend: str = "google"
    iot_project: str | None = None
    iot_location: str = "us-central1"
    iot_registries: tuple[str, ...] = ()
    iot_endpoint: str | None = None
    iot_credentials: str = "adc"
    clearblade_configuration: str | None = None
    identity_template: str = DEFAULT_TEMPLATE
    tags: str = ""
    on_delete: OnDelete = OnDelete.DECOMMISSION
    on_blocked: OnBlocked = OnBlocked.IGNORE
    revoke_removed_keys: bool = True
    min_rsa_bits: int = 2048
    concurrency: int = 16
    notify_device: bool = False
    reconcile_prune: str = "auto"
    webhook_secret: Secret | None = None
    pubsub_subscription: str | None = None
    pubsub_emulator_host: str | None = None
    log_level: str = "INFO"

    @property
    def template(self) -> IdentityTemplate:
        return IdentityTemplate.parse(self.identity_template)

    @property
    def scope(self) -> Scope:
        """The registries the bridge serves (InputError if the names are invalid)."""
        registries = self.iot_registries or tuple(
            r for t in self.mender_targets for r in t.registries)
        return Scope.of(self.iot_project or "", self.iot_location, registries)

    @property
    def registry_refs(self) -> list[RegistryRef]:
        """The configured registries (IOT_REGISTRIES); empty means all of the location."""
        return self.scope.refs

    def targets(self) -> tuple[Target, ...]:
        """The Mender targets; without MENDER_TARGETS, one unnamed target for all registries."""
        return self.mender_targets or (Target("", self.mender_url, (), self.mender_token,
                                              self.mender_ca_bundle),)

    def secret_values(self) -> list[str]:
        """The secrets' texts, for the log redactor; never for anything that prints."""
        secrets = [self.mender_token, self.mender_password, self.webhook_secret,
                   *(t.mender_token for t in self.mender_targets)]
        return [s.reveal() for s in secrets if s is not None]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        data = {k.lower(): v for k, v in env.items()}
        return cls.from_mapping(data, env=env,
                                sources={k: "environment" for k, v in data.items() if v})

    @classmethod
    def from_toml(cls, path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
        """Read a TOML file; non-empty environment variables in `env` override its values."""
        data = _read_toml(Path(path))
        known = {f.name for f in fields(cls)} | {"targets"}
        unknown = [f"unknown setting {k!r} in {path}" for k in sorted(set(data) - known)]
        if "targets" in data:
            data["mender_targets"] = data.pop("targets")
        merged: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        sources = dict.fromkeys(merged, str(path))
        for key, value in (env or {}).items():
            if key.lower() in known and value != "":
                merged[key.lower()] = value
                sources[key.lower()] = "environment"
        return cls.from_mapping(merged, env=env, sources=sources, problems=unknown)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, env: Mapping[str, str] | None = None,
                     sources: Mapping[str, str] | None = None,
                     problems: Sequence[str] = ()) -> Settings:
        """Convert and check every value; all problems (plus `problems`) in one ConfigError."""
        found: list[str] = list(problems)
        failed: set[str] = set()
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data.get(f.name)
            shown = raw.reveal() if isinstance(raw, Secret) else raw
            if shown is None or (isinstance(shown, str) and not shown.strip()):
                continue
            try:
                if f.name == "mender_targets":
                    values[f.name] = targets(raw, env)
                else:
                    values[f.name] = CONVERTERS.get(f.name, text)(raw)
            except (TypeError, ValueError) as exc:
                failed.add(f.name.upper())
                where = (sources or {}).get(f.name, "settings")
                found.append(f"{f.name.upper()}: {exc} (from {where})")
        # Checked even when some values did not convert (their defaults stand in), so one run
        # reports everything; a default's own complaint would only repeat the first one.
        settings = cls(**values)
        for problem in settings.problems():
            name = problem.split(":")[0].split()[0]
            if any(f in problem.split(":")[0] for f in failed):
                continue  # follows from a value already reported as unreadable
            origin = (sources or {}).get(name.lower())
            found.append(f"{problem} (from {origin})" if origin else problem)
        if found:
            raise ConfigError(found)
        return settings

    def problems(self) -> list[str]:
        from bridge.settingscheck import problems

        return problems(self)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist or is not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None

