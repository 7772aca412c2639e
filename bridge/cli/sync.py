"""`mender-bridge sync` (every device of the registries) and `mender-bridge device ID…`.

Results go to stdout (a table then the summary, one JSON object, or JSON lines ending with a
summary record; shapes in docs/report.md); logs and progress to stderr. Exit 0 in sync, 1 when
a device failed, 2 for usage, configuration or refused credentials, 130 when interrupted (the
report then says what was done and what was not).
"""

from __future__ import annotations

import json

import click

from bridge import names
from bridge.cli.common import CONFIG, JSON, ProgressLine, setup
from bridge.errors import TransientApiError
from bridge.report import Outcome, Report, Status, Step
from bridge.sync import PruneMode

_SHOWN = (Status.DONE, Status.PLANNED, Status.CONFLICT, Status.SKIPPED, Status.FAILED)
INTERRUPTED = 130


def emit(report: Report, as_json: bool, ndjson: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    if ndjson:
        for item in report.outcomes:
            click.echo(json.dumps({"record": "action", **item.to_dict()}))
        for item in report.attention:
            click.echo(json.dumps({"record": "attention", **item.to_dict()}))
        closing = report.to_dict()
        del closing["actions"], closing["attention"]
        click.echo(json.dumps({"record": "summary", **closing}))
        return
    rows = [o for o in report.outcomes if o.status in _SHOWN
            and (not quiet or o.status is Status.FAILED)]
    _table(rows)
    if report.attention and not quiet:
        click.echo("\nneeds a person (pending auth sets whose key matches no registry "
                   "credential):")
        _table(report.attention)
    if rows or (report.attention and not quiet):
        click.echo("")
    devices = report.devices()
    click.echo("devices: " + (", ".join(f"{n} {s}" for s, n in devices.items() if n)
                              or "none"))
    for key, rate in sorted(report.stats.items()):
        if key.endswith("mender_rate_limit"):
            target = key.removesuffix("mender_rate_limit").rstrip(".")
            refused = int(report.stats.get(key.replace("rate_limit", "429"), 0))
            click.echo(f"Mender rate limit{f' ({target})' if target else ''} met: paced at "
                       f"{rate:.1f} requests/s ({refused} answered 429)")
    if report.interrupted:
        click.echo(f"interrupted ({report.interrupted}): the actions marked 'not run' were "
                   "not done; run sync again to finish")


def _table(rows: list[Outcome]) -> None:
    if not rows:
        return
    targets = any(o.target for o in rows)
    head = ("TARGET",) * targets + ("DEVICE", "ACTION", "STATUS", "DETAIL")
    cells = [(o.target,) * targets + (o.device, str(o.action), str(o.status), o.detail)
             for o in rows]
    widths = [min(48, max(len(r[i]) for r in [head, *cells])) for i in range(len(head) - 1)]
    for row in [head, *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                   + "  " + row[-1])


@click.command()
@CONFIG
@click.option("--registry", "registries", multiple=True, metavar="NAME",
              help="Registry to sync, by id or full path (repeatable); default: the "
                   "configured ones, or every registry of IOT_PROJECT and IOT_LOCATION.")
@click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
@click.option("--prune", is_flag=True,
              help="Decommission Mender devices that follow the identity template but that no "
                   "registry device claims (only those of the listed registries, where the "
                   "identity names the registry).")
@click.option("--concurrency", type=click.IntRange(1, 256), help="Parallel Mender requests.")
@JSON
@click.option("--ndjson", is_flag=True, help="Print one JSON line per action, then a summary.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed device; what was "
              "not run is reported as such.")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary and failures.")
@click.pass_context
def sync(ctx: click.Context, config: str | None, registries: tuple[str, ...], dry_run: bool,
         prune: bool, concurrency: int | None, as_json: bool, ndjson: bool, fail_fast: bool,
         quiet: bool) -> None:
    """Reconcile every device of the registries with Mender: backfill, repair, polling."""
    if as_json and ndjson:
        raise click.UsageError("give --json or --ndjson, not both")
    from bridge.factory import build_service

    settings = setup(config, quiet=quiet)
    for name in registries:  # refused before anything is built or called
        settings.scope.registry(name)
    with build_service(settings, concurrency=concurrency) as service:
        progress = ProgressLine() if not quiet else None
        try:
            report = service.backfill(registries, dry_run=dry_run, fail_fast=fail_fast,
                                      prune=PruneMode.ON if prune else PruneMode.OFF,
                                      progress=progress)
        finally:
            if progress is not None:
                progress.close()
    emit(report, as_json, ndjson, quiet)
    ctx.exit(INTERRUPTED if report.interrupted == "interrupted" else int(report.failed))


@click.command()
@click.argument("device_ids", nargs=-1, required=True, metavar="ID…")
@CONFIG
@click.option("--registry", metavar="NAME", help="The devices' registry, by id or full path "
                                                 "(default: the configured one, when there is "
                                                 "only one).")
@JSON
@click.pass_context
def device(ctx: click.Context, device_ids: tuple[str, ...], config: str | None,
           registry: str | None, as_json: bool) -> None:
    """Reconcile the given devices (string or numeric ids) now."""
    from bridge.factory import build_service

    for device_id in device_ids:
        names.device_id(device_id)
    settings = setup(config)
    with build_service(settings) as service:
        refs = service.existing_registries((registry,) if registry else ())
        if len(refs) != 1:
            raise click.UsageError("say which registry with --registry NAME")
        report = Report()
        for device_id in device_ids:
            try:
                report.merge(service.sync_device(refs[0], device_id))
            except TransientApiError as exc:
                report.add(Outcome(f"{refs[0].registry}/{device_id}", Step.SYNC,
                                   Status.FAILED, str(exc)))
    emit(report, as_json, False, False)
    ctx.exit(int(report.failed))

