"""`mender-bridge sync` (every device of the registries) and `mender-bridge device ID…`.

Results go to stdout (a table, one JSON object, or JSON lines); logs and the progress bar to
stderr. Exit 0 in sync, 1 when a device failed, 2 for usage or configuration errors.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from bridge import logs
from bridge.config import Settings
from bridge.errors import ConfigError, TransientApiError
from bridge.model import RegistryRef
from bridge.report import Outcome, Report, Status

_SHOWN = (Status.DONE, Status.PLANNED, Status.CONFLICT, Status.SKIPPED, Status.FAILED)


def load_settings(config: str | None) -> Settings:
    """From the TOML file (environment variables override it), else from the environment."""
    env = dict(os.environ)
    return Settings.from_toml(config, env) if config else Settings.from_env(env)


def registry_refs(settings: Settings, names: tuple[str, ...]) -> list[RegistryRef]:
    """`--registry` names (short, or full `projects/…/registries/…` paths), else the
    configured ones; empty means every registry of the location."""
    try:
        return [settings.registry_ref(name) for name in names] or settings.registry_refs
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--registry") from None


def _setup(config: str | None, quiet: bool) -> Settings:
    settings = load_settings(config)
    logs.redact(*settings.secret_values())
    logs.configure("ERROR" if quiet else settings.log_level, stream=sys.stderr)
    return settings


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    # A generator has no length: the bar counts devices without a percentage.
    with click.progressbar(_no_length(), label="syncing", file=sys.stderr,
                           show_pos=True) as bar:
        yield bar.update


def _no_length() -> Iterator[int]:
    yield from ()


def emit(report: Report, as_json: bool, ndjson: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    if ndjson:
        for item in report.outcomes:
            click.echo(json.dumps(item.to_dict()))
        for item in report.attention:
            click.echo(json.dumps({**item.to_dict(), "status": "attention"}))
        return
    summary = report.summary()
    click.echo(", ".join(f"{count} {name}" for name, count in summary.items() if count)
               or "nothing to do")
    rows = [o for o in report.outcomes if o.status in _SHOWN
            and (not quiet or o.status == Status.FAILED)]
    _table(rows)
    if report.attention and not quiet:
        click.echo("\nneeds a person (pending auth sets whose key matches no registry "
                   "credential):")
        _table(report.attention)


def _table(rows: list[Outcome]) -> None:
    if not rows:
        return
    head = ("DEVICE", "ACTION", "STATUS", "DETAIL")
    cells = [(o.device, o.action, str(o.status), o.detail) for o in rows]
    widths = [min(48, max(len(r[i]) for r in [head, *cells])) for i in range(3)]
    for row in [head, *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                   + "  " + row[3])


def _exclusive(as_json: bool, ndjson: bool) -> None:
    if as_json and ndjson:
        raise click.UsageError("give --json or --ndjson, not both")


CONFIG = click.option("--config", type=click.Path(dir_okay=False),
                      help="TOML settings file (environment variables override it); "
                           "without it, settings come from the environment.")
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@click.command()
@CONFIG
@click.option("--registry", "registries", multiple=True, metavar="NAME",
              help="Registry to sync (repeatable); default: the configured ones, or all.")
@click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
@click.option("--prune", is_flag=True,
              help="Decommission Mender devices that follow the identity template but are in "
                   "none of the registries.")
@click.option("--concurrency", type=click.IntRange(1, 256), help="Parallel Mender requests.")
@JSON
@click.option("--ndjson", is_flag=True, help="Print one JSON line per action.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed device.")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary and failures.")
@click.pass_context
def sync(ctx: click.Context, config: str | None, registries: tuple[str, ...], dry_run: bool,
         prune: bool, concurrency: int | None, as_json: bool, ndjson: bool, fail_fast: bool,
         quiet: bool) -> None:
    """Reconcile every device of the registries with Mender: backfill, repair, polling."""
    _exclusive(as_json, ndjson)
    from bridge.factory import build_bridge

    settings = _setup(config, quiet)
    refs = registry_refs(settings, registries)
    if prune and registries and "{registry}" not in settings.identity_template:
        # Without {registry} in the identity, devices of the other registries look absent.
        raise click.UsageError("--prune with --registry would decommission the devices of "
                               "the other registries; prune over all of them")
    bridge = build_bridge(settings, concurrency=concurrency)
    refs = refs or bridge.registry.list_registries(settings.iot_project or "",
                                                   settings.iot_location)
    if not refs:
        raise ConfigError("no registry to sync: set IOT_REGISTRIES or give --registry")
    with _progress(not quiet) as progress:
        report = bridge.backfill(refs, dry_run=dry_run, prune=prune, fail_fast=fail_fast,
                                 progress=progress)
    emit(report, as_json, ndjson, quiet)
    ctx.exit(1 if report.failed else 0)


@click.command()
@click.argument("device_ids", nargs=-1, required=True, metavar="ID…")
@CONFIG
@click.option("--registry", metavar="NAME", help="The device's registry (default: the "
                                                 "configured one, when there is only one).")
@JSON
@click.pass_context
def device(ctx: click.Context, device_ids: tuple[str, ...], config: str | None,
           registry: str | None, as_json: bool) -> None:
    """Reconcile the given devices (string or numeric ids) now."""
    from bridge.factory import build_bridge

    settings = _setup(config, False)
    refs = registry_refs(settings, (registry,) if registry else ())
    if len(refs) != 1:
        raise click.UsageError("say which registry with --registry NAME")
    bridge = build_bridge(settings)
    report = Report()
    for device_id in device_ids:
        try:
            report.merge(bridge.sync_device(refs[0], device_id))
        except TransientApiError as exc:
            report.add(Outcome(f"{refs[0].registry}/{device_id}", "sync", Status.FAILED,
                               str(exc)))
    emit(report, as_json, False, False)
    ctx.exit(1 if report.failed else 0)
