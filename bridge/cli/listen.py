"""`mender-bridge listen`: the bridge as a long-running Pub/Sub pull worker, for running it
outside Cloud Functions (a VM, Cloud Run, GKE, a ClearBlade customer's own infrastructure).
Several workers on one subscription share the work; SIGTERM or SIGINT stops one gracefully.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

import click

from bridge import logs
from bridge.cli.periodic import RECONCILE_EVERY, Periodic
from bridge.cli.signals import on_stop_signals
from bridge.errors import ConfigError


@click.command()
@click.option("--subscription", metavar="projects/P/subscriptions/S",
              help="Pull subscription to work on [default: PUBSUB_SUBSCRIPTION].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML settings file (environment variables override it).")
@click.option("--healthz-port", type=click.IntRange(0, 65535), default=None,
              help="Serve GET /healthz on this port (0: any free port); off by default.")
@click.option("--healthz-host", default="127.0.0.1", show_default=True,
              help="Address of the /healthz server (0.0.0.0 in a container).")
@RECONCILE_EVERY
def listen(subscription: str | None, config_file: str | None, healthz_port: int | None,
           healthz_host: str, reconcile_every: float | None) -> None:
    """Handle the device events of a Pub/Sub pull subscription until SIGTERM or Ctrl-C.

    Each message is acknowledged once handled (or failed for good, which is logged); a
    transient failure is nacked, so the subscription's retry policy and dead-letter topic
    apply. At most CONCURRENCY messages are handled at once. PUBSUB_EMULATOR_HOST points it
    at the Pub/Sub emulator.
    """
    from bridge.pubsub import clients
    from bridge.pubsub.worker import Worker
    from bridge.runtime import Runtime

    runtime = (Runtime.from_file(config_file, os.environ) if config_file
               else Runtime.from_env(os.environ))
    logs.configure(stream=sys.stderr, redactor=runtime.redactor)
    log = logs.get_logger("listen")
    periodic: Periodic | None = None
    try:
        settings = runtime.settings()
        name = _subscription(subscription or settings.pubsub_subscription)
        worker = Worker(runtime, clients.subscriber(settings.pubsub_emulator_host), name,
                        concurrency=settings.concurrency)
        stop = threading.Event()
        health = _health(healthz_host, healthz_port, worker, runtime, stop)
        on_stop_signals(stop.set, "listen", "finishing running work, then stopping")
        worker.start()
        worker.add_done_callback(stop.set)
        if reconcile_every is not None:
            periodic = Periodic(runtime, reconcile_every).start()
        where = f", /healthz on port {health.port}" if health else ""
        where += f", reconciling every {reconcile_every:g}s" if reconcile_every else ""
        click.echo(f"mender-bridge: listening on {name} ({settings.concurrency} at a "
                   f"time{where})", err=True)
        while not stop.wait(1.0):
            pass
        worker.stop()
        if periodic is not None:
            periodic.stop()
        if health is not None:
            health.stop()
    finally:
        if periodic is not None:
            periodic.stop(0)
        runtime.close()
    logs.emit(log, logging.INFO, "stopped", pull=worker.counters.snapshot())
    _raise_failure(worker.failure(), name)


def _subscription(value: str | None) -> str:
    from bridge.pubsub.clients import resource_name

    if not value:
        raise click.UsageError("no subscription: give --subscription or set "
                               "PUBSUB_SUBSCRIPTION (or pubsub_subscription in --config)")
    try:
        return resource_name(value, "subscriptions")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--subscription") from None


def _health(host: str, port: int | None, worker: Any, runtime: Any, stop: threading.Event
            ) -> Any:
    from bridge.pubsub.health import HealthServer

    if port is None:
        return None

    def status() -> tuple[bool, dict[str, Any]]:
        body = {**runtime.health(), "pull": worker.counters.snapshot()}
        healthy = body.get("status") == "ok" and not stop.is_set() and not worker.done
        body["status"] = "ok" if healthy else "unhealthy"
        return healthy, body

    try:
        return HealthServer(host, port, status).start()
    except OSError as exc:
        raise ConfigError(f"cannot serve /healthz on {host} port {port}: "
                          f"{exc.strerror or exc}; choose another with --healthz-port or "
                          "--healthz-host") from None


def _raise_failure(error: BaseException | None, name: str) -> None:
    """The pull ended by itself: one line, exit 2 when it is the setup's fault."""
    if error is None:
        return
    from google.api_core import exceptions

    first = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    if isinstance(error, exceptions.NotFound):
        raise ConfigError(f"subscription {name} not found")
    if isinstance(error, exceptions.PermissionDenied | exceptions.Unauthenticated):
        raise ConfigError(f"no permission to pull {name} (the account needs "
                          f"roles/pubsub.subscriber on it): {first}")
    from bridge.cli import BridgeFailure

    raise BridgeFailure(f"pulling {name} stopped: {first}")
