"""`mender-bridge serve`: the provisioning webhook and a Pub/Sub push endpoint over HTTP, for
running the bridge outside Google (container, VM), on waitress (`bridge.server`). Both routes
need `Authorization: Bearer WEBHOOK_SECRET`; SIGTERM drains in-flight requests, then exits 0.
With `--reconcile-every` it also reconciles the whole scope on a schedule (ClearBlade).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from typing import Any

import click

from bridge import logs
from bridge.cli.periodic import RECONCILE_EVERY, Periodic
from bridge.cli.signals import on_stop_signals
from bridge.errors import ConfigError
from bridge.server.wsgi import HttpServer, Limits, WsgiApp

_DEFAULTS = Limits()


def _limit(name: str, kind: click.ParamType[Any], help: str) -> click.Option:
    flag = "--" + name.replace("_", "-")
    return click.Option([flag, name], type=kind, default=getattr(_DEFAULTS, name),
                        show_default=True, envvar=f"SERVE_{name.upper()}", show_envvar=True,
                        help=help)


_LIMIT_OPTIONS = (
    _limit("threads", click.IntRange(1, 256), "Worker threads: requests handled at once."),
    _limit("max_connections", click.IntRange(4, 10_000), "Open connections at most."),
    _limit("header_timeout", click.FloatRange(0.5, 600), "Seconds a request's headers may take."),
    _limit("body_timeout", click.FloatRange(0.5, 600), "Seconds a request's body may take."),
    _limit("idle_timeout", click.FloatRange(0.5, 3600), "Seconds a quiet connection stays open."),
    _limit("drain_timeout", click.FloatRange(0, 3600),
           "Seconds SIGTERM waits for running requests."),
)


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML settings file (environment variables override it).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              envvar="PORT", help="Port (0: any free port); also $PORT.")
@RECONCILE_EVERY
def serve(config_file: str | None, host: str, port: int, reconcile_every: float | None,
          **limits: Any) -> None:
    """Serve POST /provision (webhook), POST /pubsub (Pub/Sub push) and GET /healthz.

    Callers authenticate with `Authorization: Bearer WEBHOOK_SECRET` (never a query
    parameter). Bodies over 1 MiB are refused (413). Each limit can also be set as
    SERVE_<NAME> in the environment, e.g. SERVE_THREADS=16. With --reconcile-every, GET
    /healthz also shows the last reconcile and the last successful one.
    """
    from bridge.runtime import Runtime
    from bridge.webhook import create_app

    runtime = (Runtime.from_file(config_file, os.environ) if config_file
               else Runtime.from_env(os.environ))
    # The runtime applies LOG_LEVEL once it is validated, and blanks its secrets in every line.
    logs.configure(stream=sys.stderr, redactor=runtime.redactor)
    _route_waitress_logs()
    periodic: Periodic | None = None
    try:
        if runtime.settings().webhook_secret is None:
            raise ConfigError("WEBHOOK_SECRET is required by serve: callers authenticate with it")
        runtime.service()  # a configuration the service refuses stops serve before it listens
        server = _listen(create_app(runtime), host, port, Limits(**limits))
        on_stop_signals(server.stop, "serve", "draining, then stopping")
        if reconcile_every is not None:
            periodic = Periodic(runtime, reconcile_every).start()
        every = f", reconciling every {reconcile_every:g}s" if reconcile_every else ""
        click.echo(f"mender-bridge: serving on http://{_shown_host(server.host)}:{server.port}"
                   f"{every}", err=True)
        drained = server.serve()
    finally:
        if periodic is not None:
            periodic.stop(limits.get("drain_timeout"))
        runtime.close()
    logs.emit(logs.get_logger("serve"), logging.INFO,
              "stopped" if drained else "stopped with requests cut short")
    if not drained:
        sys.exit(1)


serve.params.extend(_LIMIT_OPTIONS)


def _listen(app: WsgiApp, host: str, port: int, limits: Limits) -> HttpServer:
    try:
        return HttpServer(app, host, port, limits)
    except OSError as exc:
        raise ConfigError(bind_problem(exc, host, port)) from None


def bind_problem(exc: OSError, host: str, port: int) -> str:
    """One line saying why `serve` cannot listen, and which flag changes it."""
    if isinstance(exc, socket.gaierror):
        return f"--host {host}: not an address or a name of this machine ({exc.strerror})"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use; choose another with --port (or $PORT)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"--host {host} is not an address of this machine; use one of its addresses, "
                "127.0.0.1, or 0.0.0.0 for all")
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges; choose one above 1023 with --port (or $PORT)"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


def _route_waitress_logs() -> None:
    """Waitress's own warnings (connection limit, unexpected errors) as JSON lines too."""
    bridge_logger = logging.getLogger(logs.LOGGER_NAME)
    waitress = logging.getLogger("waitress")
    waitress.handlers[:] = bridge_logger.handlers
    waitress.setLevel(logging.INFO)
    waitress.propagate = False


def _shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
