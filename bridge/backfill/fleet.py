"""A backfill of one target, for `Bridge.backfill`: the registries read ahead while Mender
(and its inventory, for tags) is listed, every device planned and applied by a `Run`, and the
Mender devices no listed registry device claims pruned where the run may prune them."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bridge.backfill import Feed, Progress, Run, index_mender, twins_possible
from bridge.errors import ApiError, AuthError
from bridge.model import MenderDevice, PruneMode, RegistryRef
from bridge.reconcile import Policy
from bridge.report import Outcome, Report, Status, Step

if TYPE_CHECKING:
    from bridge.sync import Bridge


def backfill(bridge: Bridge, refs: Sequence[RegistryRef], *, dry_run: bool, prune: PruneMode,
             fail_fast: bool, progress: Progress | None) -> Report:
    """Reconcile every device of `refs` (already checked against the scope). Failures are
    recorded, never raised, but for refused credentials (AuthError)."""
    report = Report()
    tags = bridge.tags
    tagging = tags.backfill(bridge.concurrency) if tags is not None else None
    with Feed(bridge.registry, refs) as feed, tagging or contextlib.nullcontext():
        try:
            index = index_mender(bridge)
        except AuthError:
            raise  # the configuration's problem, not a device's: the caller says so
        except ApiError as exc:
            report.add(Outcome("mender", Step.LIST, Status.FAILED, str(exc)))
            return report
        report.stats["mender_devices"] = len(index)
        pruning = prune is not PruneMode.OFF and (
            prune is PruneMode.ON or bridge.policy.template.uses("registry"))
        with Run(bridge, report, dry_run=dry_run, prune=pruning, fail_fast=fail_fast,
                 progress=progress, twins=twins_possible(bridge.policy, refs)) as run:
            run.expected, run.feed = len(index), feed
            try:
                listed_all = run.registries(tagging.watch(feed) if tagging else feed,
                                            refs, index)
                if pruning and not listed_all:
                    report.add(Outcome("mender", Step.PRUNE, Status.SKIPPED,
                                       "not pruning: a registry could not be listed"))
                if listed_all and not run.stopped.is_set():
                    run.absent(index, lambda device: prunable(bridge.policy, device, refs))
            except KeyboardInterrupt:
                run.stop("interrupted")
        if tagging is not None and not run.why_stopped:
            tagging.finish(report, dry_run=dry_run)
    if run.auth_error is not None:
        raise run.auth_error
    report.interrupted = run.why_stopped
    return report


def prunable(policy: Policy, device: MenderDevice, listed: Sequence[RegistryRef]) -> bool:
    """Whether pruning may decommission `device`: with {registry} in the identity, only the
    devices of the registries listed; without, every one (PruneMode.ON: the operator says
    this Mender serves these registries only)."""
    template = policy.template
    if not template.uses("registry"):
        return True
    fields = template.match(device.identity_data)
    if fields is None:
        return False
    return any(fields["registry"] == ref.registry
               and fields.get("project", ref.project) == ref.project
               and fields.get("location", ref.location) == ref.location for ref in listed)
