"""The service the entry points call: one scope, one or several Mender targets, one rulebook.

Every name from outside is validated and scoped here, then routed to the target (a
`bridge.sync.Bridge`) that serves its registry; a request for a registry no target serves is
refused with InputError, never guessed. Entry points only translate argv, HTTP and events
into these calls, and the results into exit codes, statuses and acks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Self

from bridge.backfill import Progress
from bridge.errors import ApiError, InputError
from bridge.keycheck import KeyCheck
from bridge.model import DeviceChange, RegistryRef
from bridge.ports import Registry
from bridge.report import Outcome, Report, Status, Step
from bridge.scope import Scope
from bridge.sync import Bridge, PruneMode


class Service:
    """`targets`: the per-target bridges; a target with an empty registry list serves every
    registry of the scope (the single-target case)."""

    def __init__(self, scope: Scope, registry: Registry,
                 targets: Sequence[tuple[Bridge, frozenset[RegistryRef]]],
                 closers: Sequence[Callable[[], None]] = ()) -> None:
        if not targets:
            raise ValueError("a Service needs at least one target")
        self.scope = scope
        self.registry = registry
        self.targets = list(targets)
        self._closers = list(closers)

    @classmethod
    def single(cls, bridge: Bridge) -> Service:
        """A service over one bridge and its scope (tests, benchmarks, the demo)."""
        assert bridge.scope is not None, "the bridge needs a scope"
        return cls(bridge.scope, bridge.registry, [(bridge, frozenset())])

    # -- routing --------------------------------------------------------------------------------
    def route(self, ref: RegistryRef) -> Bridge:
        """The target serving `ref`, which must be in the scope (InputError otherwise)."""
        self.scope.check(ref)
        for bridge, registries in self.targets:
            if not registries or ref in registries:
                return bridge
        raise InputError(f"registry {ref.registry!r} is routed to no Mender target")

    def registry_ref(self, text: str) -> RegistryRef:
        """A registry named by id or full path, validated, in scope and served by a target."""
        ref = self.scope.registry(text)
        self.route(ref)
        return ref

    def existing_registries(self, names: Sequence[str]) -> list[RegistryRef]:
        """Registries by id or path, each in scope and existing in the registry service;
        InputError naming the first that is not. Without names: the configured registries,
        or every registry of the location."""
        refs = [self.registry_ref(n) for n in names]
        if not refs and self.scope.refs:
            return self.scope.refs
        known = self._listed()
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise InputError(f"registry {unknown[0].registry!r} does not exist in "
                             f"projects/{self.scope.project}/locations/{self.scope.location}")
        return refs or [r for r in known if self.scope.covers(r)]

    def _listed(self) -> list[RegistryRef]:
        return self.registry.list_registries(self.scope.project, self.scope.location)

    # -- one device -----------------------------------------------------------------------------
    def handle_change(self, change: DeviceChange) -> Report:
        """One registry event. InputError when it is outside the scope (acknowledge, log)."""
        self.scope.check_change(change)
        bridge = self.route(change.ref)
        return self._named(bridge, bridge.handle_change(change))

    def sync_device(self, registry: str | RegistryRef, device_id: str) -> Report:
        """One device now (webhook, `device` CLI). InputError, TransientApiError escape."""
        ref = registry if isinstance(registry, RegistryRef) else self.registry_ref(registry)
        bridge = self.route(ref)
        return self._named(bridge, bridge.sync_device(ref, device_id))

    def _named(self, bridge: Bridge, report: Report) -> Report:
        """With several targets, outcomes say which Mender they are about."""
        if len(self.targets) < 2:
            return report
        named = Report()
        named.merge(report, bridge.name)
        return named

    def check_key(self, registries: Sequence[str], device_id: str,
                  public_pem: str) -> KeyCheck | None:
        """Does the key match a usable credential of the device (in the first of
        `registries`, default the scope's, that has it) and an admitted auth set in Mender?
        None when there is no registry to look in."""
        result = None
        for ref in self.existing_registries(registries):
            result = self.route(ref).check_key(ref, device_id, public_pem)
            if result.found:
                break
        return result

    # -- every device ---------------------------------------------------------------------------
    def backfill(self, registries: Sequence[str | RegistryRef] = (), *, dry_run: bool = False,
                 prune: PruneMode = PruneMode.OFF, fail_fast: bool = False,
                 progress: Progress | None = None) -> Report:
        """Reconcile `registries` (ids, paths or refs; default: the whole scope), each target
        with its own registries, targets side by side: one that is down delays only its own
        devices. InputError (before any remote call) for a name outside the scope or a prune
        that could reach other registries' devices; one that does not exist after listing."""
        report = Report()
        given = [r if isinstance(r, RegistryRef) else self.registry_ref(r) for r in registries]
        for bridge, _ in self.targets:
            bridge.check_prune([r for r in given if self.route(r) is bridge], prune)
        try:
            refs = self.existing_registries([r.path for r in given])
        except ApiError as exc:
            report.add(Outcome("registry", Step.LIST, Status.FAILED, str(exc)))
            return report
        plan = [(b, [r for r in refs if self.route(r) is b]) for b, _ in self.targets]
        plan = [(b, mine) for b, mine in plan if mine]
        if len(plan) <= 1:
            for bridge, mine in plan:
                report.merge(bridge.backfill(mine, dry_run=dry_run, prune=prune,
                                             fail_fast=fail_fast, progress=progress),
                             bridge.name)
            return report
        with ThreadPoolExecutor(len(plan), thread_name_prefix="bridge-target") as pool:
            runs = [(b.name, pool.submit(b.backfill, mine, dry_run=dry_run, prune=prune,
                                         fail_fast=fail_fast, progress=progress))
                    for b, mine in plan]
            for name, future in runs:
                report.merge(future.result(), name)
        return report

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
