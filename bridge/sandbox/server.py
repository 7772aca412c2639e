"""Serve a WSGI application in a background thread (threaded werkzeug server), HTTP or HTTPS."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """Keeps the sandbox's request log off the terminal (the demo prints its own story)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


@dataclass
class RunningServer:
    server: BaseWSGIServer
    thread: threading.Thread
    scheme: str
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        return str(self.server.host)

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)


def serve(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningServer:
    """Start `app` on host:port (0 = any free port) and return once it accepts connections."""
    server = make_server(
        host, port, app, threaded=True, request_handler=_QuietHandler, ssl_context=ssl_context
    )
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox-{server.port}",
                              daemon=True)
    thread.start()
    return RunningServer(server, thread, "https" if ssl_context else "http")
