"""`mender-bridge dead-letters {list,replay}`: the events Pub/Sub gave up on (moved to the
dead-letter subscription after the maximum delivery attempts), and their replay to the main
topic once the cause is fixed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from bridge.cli.common import CONFIG, JSON

SCHEMA_VERSION = 1
_SUBSCRIPTION = click.option("--subscription", required=True,
                             metavar="projects/P/subscriptions/S",
                             help="The dead-letter subscription.")
_LIMIT = click.option("--limit", type=click.IntRange(1, 10_000), default=100,
                      show_default=True, help="Handle at most this many dead letters.")


@click.group(name="dead-letters")
def dead_letters() -> None:
    """List or replay the dead letters of the event path. PUBSUB_EMULATOR_HOST (or
    pubsub_emulator_host in --config) points them at the Pub/Sub emulator."""


def _emulator(config: str | None) -> str | None:
    if config is None:
        return None  # the client library reads PUBSUB_EMULATOR_HOST itself
    from bridge.cli.common import load_settings

    return load_settings(config).pubsub_emulator_host


def _name(value: str, kind: str, flag: str) -> str:
    from bridge.pubsub.clients import resource_name

    try:
        return resource_name(value, kind)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def _api_call(action: str, call: Any) -> Any:
    """Run `call`; a Pub/Sub API error is one line (exit 2 when the names or rights are wrong)."""
    from google.api_core import exceptions

    from bridge.cli import BridgeFailure
    from bridge.errors import ConfigError

    try:
        return call()
    except (exceptions.NotFound, exceptions.PermissionDenied, exceptions.InvalidArgument) as exc:
        raise ConfigError(f"{action}: {exc.message}") from None
    except exceptions.GoogleAPICallError as exc:
        raise BridgeFailure(f"{action}: {exc.message}") from None


@dead_letters.command(name="list")
@_SUBSCRIPTION
@_LIMIT
@JSON
@CONFIG
def list_command(subscription: str, limit: int, as_json: bool, config: str | None) -> None:
    """Show the dead letters (device, method, deliveries tried) without consuming them."""
    from bridge.pubsub import clients, deadletters

    name = _name(subscription, "subscriptions", "--subscription")
    subscriber = clients.subscriber(_emulator(config))
    try:
        letters = _api_call(f"cannot read {name}", lambda: deadletters.list_dead_letters(
            subscriber, name, limit))
    finally:
        subscriber.close()
    if as_json:
        click.echo(json.dumps({"schema_version": SCHEMA_VERSION, "subscription": name,
                               "count": len(letters),
                               "dead_letters": [x.as_dict() for x in letters]}))
        return
    for letter in letters:
        tries = letter.delivery_count if letter.delivery_count is not None else "?"
        click.echo(f"{letter.device:40} {letter.method:13} {tries!s:>3} deliveries  "
                   f"published {letter.published or '?'}  message {letter.message_id}")
    click.echo(f"{len(letters)} dead letter(s) in {name}"
               + (f" (the first {limit} shown)" if len(letters) == limit else ""), err=True)


@dead_letters.command()
@_SUBSCRIPTION
@click.option("--topic", required=True, metavar="projects/P/topics/T",
              help="The main topic to republish to.")
@click.option("--dry-run", is_flag=True, help="Only show what would be replayed.")
@_LIMIT
@CONFIG
def replay(subscription: str, topic: str, dry_run: bool, limit: int,
           config: str | None) -> None:
    """Republish dead letters to the main topic; each leaves the dead-letter subscription
    only once its copy is published. Exit 1 if one could not be published."""
    from bridge.pubsub import clients, deadletters

    name = _name(subscription, "subscriptions", "--subscription")
    target = _name(topic, "topics", "--topic")
    emulator = _emulator(config)
    subscriber, publisher = clients.subscriber(emulator), clients.publisher(emulator)
    try:
        done = _api_call(f"cannot replay {name}", lambda: deadletters.replay(
            publisher, subscriber, name, target, limit, dry_run=dry_run))
    finally:
        subscriber.close()
        publisher.stop()
    verb = "would replay" if dry_run else "replayed"
    for item in done:
        outcome = f"failed: {item.error}" if item.error else verb
        click.echo(f"{item.letter.device:40} {item.letter.method:13} {outcome}")
    failed = sum(1 for item in done if item.error)
    click.echo(f"{verb} {len(done) - failed} dead letter(s) to {target}"
               + (f", {failed} failed (still parked)" if failed else ""), err=True)
    if failed:
        sys.exit(1)
