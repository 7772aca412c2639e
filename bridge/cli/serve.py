"""`mender-bridge serve`: the provisioning webhook and a Pub/Sub push endpoint over HTTP, for
running the bridge outside Google (container, VM). Both routes need WEBHOOK_SECRET.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

import click
from werkzeug.serving import WSGIRequestHandler, make_server

from bridge import logs
from bridge.errors import ConfigError


class _LoggingHandler(WSGIRequestHandler):
    """One structured line per request, path without its query (it may carry the token)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = code.value if hasattr(code, "value") else code
        logs.emit(logs.get_logger("serve"), logging.INFO,
                  f"{self.command} {self.path.partition('?')[0]} {status}",
                  http_method=self.command, path=self.path.partition("?")[0], status=status)

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.ERROR if type == "error" else logging.INFO
        logs.emit(logs.get_logger("serve"), level, message % args if args else message)


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML settings file (environment variables override it).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              envvar="PORT", help="Port (0: any free port); also $PORT.")
def serve(config_file: str | None, host: str, port: int) -> None:
    """Serve POST /provision (webhook), POST /pubsub (Pub/Sub push) and GET /healthz.

    Callers authenticate with `Authorization: Bearer WEBHOOK_SECRET`; a push subscription may
    put the secret in its endpoint URL instead (`/pubsub?token=...`).
    """
    from bridge.runtime import Runtime
    from bridge.webhook import create_app

    logs.configure(stream=sys.stderr)  # the runtime applies LOG_LEVEL once it is validated
    runtime = (Runtime.from_file(config_file, os.environ) if config_file
               else Runtime.from_env(os.environ))
    settings = runtime.settings()
    if settings.webhook_secret is None:
        raise ConfigError("WEBHOOK_SECRET is required by serve: callers authenticate with it")
    runtime.bridge()
    server = make_server(host, port, create_app(runtime), threaded=True,
                         request_handler=_LoggingHandler)

    def _stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    click.echo(f"mender-bridge: serving on http://{host}:{server.port}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
