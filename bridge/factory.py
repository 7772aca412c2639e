"""The composition root: builds the Service from Settings — the one place that picks and
constructs the adapters and hands each only the few settings it needs. Each Mender target
gets its own client (and inventory, for TAGS) and a scope of only its registries.

Adapters are imported here, lazily, so the core and the CLI's `--help` stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.backfill.tags import Tagger
from bridge.config import Settings
from bridge.configvalues import Target
from bridge.errors import ConfigError, IdentityError
from bridge.identity import IdentityTemplate
from bridge.keys import KeyPolicy
from bridge.reconcile import Policy
from bridge.scope import Scope
from bridge.service import Service
from bridge.sync import Bridge
from bridge.tags import TagTemplate

if TYPE_CHECKING:
    from bridge.mender import MenderClient
    from bridge.ports import Registry


def policy(settings: Settings) -> Policy:
    return Policy(IdentityTemplate.parse(settings.identity_template), settings.on_delete,
                  settings.on_blocked, settings.revoke_removed_keys,
                  KeyPolicy(min_rsa_bits=settings.min_rsa_bits))


def registry(settings: Settings) -> Registry:
    """The registry adapter REGISTRY_BACKEND asks for."""
    from bridge.registry import ClearBladeRegistry, GoogleRegistry

    if settings.registry_backend == "clearblade":
        assert settings.clearblade_configuration is not None  # the settings check says so
        return ClearBladeRegistry(settings.clearblade_configuration)
    return GoogleRegistry(endpoint=settings.iot_endpoint, credentials=settings.iot_credentials)


def mender(settings: Settings, target: Target, concurrency: int) -> MenderClient:
    from bridge.mender import MenderClient

    return MenderClient(target.mender_url, token=target.mender_token,
                        username=None if target.name else settings.mender_username,
                        password=None if target.name else settings.mender_password,
                        ca_bundle=target.mender_ca_bundle, timeout=settings.mender_timeout,
                        pool_size=max(32, concurrency * 2))


def tag_template(settings: Settings) -> TagTemplate:
    """TAGS parsed (empty: no tags written); ConfigError when Mender could not keep them."""
    try:
        return TagTemplate.parse(settings.tags)
    except IdentityError as exc:
        raise ConfigError(f"TAGS: {exc}") from None


def tagger(client: MenderClient, tags: TagTemplate, rules: Policy) -> Tagger | None:
    """The tag writer of one target, on its client's transport (one token, one pace)."""
    if not tags:
        return None
    from bridge.mender.inventory import MenderInventory

    return Tagger(MenderInventory(client.transport), tags, rules.template)


def build_service(settings: Settings, *, concurrency: int | None = None) -> Service:
    """The Service over the configured registry backend and Mender target(s); `concurrency`
    overrides the setting (each Mender connection pool is sized from it)."""
    workers = concurrency or settings.concurrency
    scope, rules, tags = settings.scope, policy(settings), tag_template(settings)
    source = registry(settings)
    closers = [getattr(source, "close", lambda: None)]
    targets = []
    for target in settings.targets():
        client = mender(settings, target, workers)
        closers.append(client.close)
        mine = frozenset(scope.registry(r) for r in target.registries)
        # Identity collisions and pruning are per target: its bridge sees only its registries.
        bridge = Bridge(source, client, rules,
                        scope=Scope(scope.project, scope.location, mine) if mine else scope,
                        concurrency=workers, name=target.name,
                        notify_url=target.mender_url if settings.notify_device else None,
                        tags=tagger(client, tags, rules))
        targets.append((bridge, mine))
    return Service(scope, source, targets, closers)
