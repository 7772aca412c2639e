"""`serve`'s WSGI server: waitress, with deadlines for headers and bodies and a graceful drain.

Waitress reads each request whole in its one I/O thread and hands it to a worker thread only
once it is complete, so a slow client costs a socket, not a thread; a body announced larger
than the limit is refused (413) before it is read, and a chunked one as soon as it passes it.
Waitress only closes connections that go quiet; the deadlines here also bound a client that
trickles bytes. The hooks used (`channel_class`, `parser_class`, `task_class`,
`error_task_class`, `maintenance`) are waitress's documented subclassing points.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore  # type: ignore[import-untyped]
from waitress.adjustments import Adjustments  # type: ignore[import-untyped]
from waitress.channel import HTTPChannel  # type: ignore[import-untyped]
from waitress.parser import HTTPRequestParser  # type: ignore[import-untyped]
from waitress.server import TcpWSGIServer  # type: ignore[import-untyped]
from waitress.task import ErrorTask, WSGITask  # type: ignore[import-untyped]

from bridge import logs
from bridge.server import accesslog

_LOG = logs.get_logger("http")
MIB = 1 << 20
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Limits:
    """What one `serve` process accepts; the defaults suit a webhook and a push endpoint."""

    threads: int = 8
    max_connections: int = 500
    max_body: int = MIB
    max_header: int = 32 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 75.0
    drain_timeout: float = 30.0


class _Parser(HTTPRequestParser):  # type: ignore[misc]
    """Stamps when a request's first byte and the end of its headers arrived."""

    def __init__(self, adj: Any) -> None:
        super().__init__(adj)
        self.began = time.monotonic()
        self.headers_done: float | None = None

    def received(self, data: bytes) -> int:
        consumed = int(super().received(data))
        if self.headers_finished and self.headers_done is None:
            self.headers_done = time.monotonic()
        return consumed


def _logged(task_class: Any) -> Any:
    """`task_class` writing an access-log line once it has answered."""

    class Logged(task_class):  # type: ignore[misc]
        def service(self) -> None:
            try:
                super().service()
            finally:
                accesslog.log_task(self)

    return Logged


class _Channel(HTTPChannel):  # type: ignore[misc]
    parser_class = _Parser
    task_class = _logged(WSGITask)
    # waitress's own answers: 400 malformed, 413 too large, 431 headers too large
    error_task_class = _logged(ErrorTask)


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    limits = Limits()

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # closes connections idle for longer than idle_timeout
        expire_slow(self.active_channels.values(), self.limits)


def expire_slow(channels: Iterable[Any], limits: Limits) -> None:
    """Close each connection whose request headers or body take longer than allowed."""
    now = time.monotonic()
    for channel in list(channels):
        request = channel.request
        if request is None or request.completed or channel.will_close:
            continue
        if request.headers_done is None:
            late, what = now - request.began > limits.header_timeout, "headers"
        else:
            late, what = now - request.headers_done > limits.body_timeout, "body"
        if late:
            channel.will_close = True
            logs.emit(_LOG, logging.INFO, f"request {what} not received in time; connection "
                      "closed", remote_ip=str(channel.addr[0]) if channel.addr else None)


class HttpServer:
    """One listening socket served by waitress until `stop()`, then drained."""

    def __init__(self, app: WsgiApp, host: str, port: int, limits: Limits) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP,
            socket.AI_PASSIVE)[0]
        adj = Adjustments(
            threads=limits.threads, connection_limit=limits.max_connections,
            # waitress refuses a body of exactly max_request_body_size bytes
            max_request_body_size=limits.max_body + 1,
            max_request_header_size=limits.max_header, channel_timeout=limits.idle_timeout,
            cleanup_interval=1, asyncore_use_poll=True, ident="mender-bridge")
        self._map: dict[int, Any] = {}
        self._stopping = False
        self._server = _Server(app, map=self._map, adj=adj, _start=False,
                               sockinfo=(family, kind, proto, address), bind_socket=False)
        self._server.limits = limits
        try:
            self._server.bind_server_socket()
            self._server.accept_connections()
        except BaseException:
            self._server.close()
            raise
        self.limits = limits
        self.host, self.port = self._server.socket.getsockname()[:2]

    def stop(self) -> None:
        """Ask the server to drain and return from `serve`; safe in a signal handler."""
        self._stopping = True
        self._server.pull_trigger()

    def serve(self) -> bool:
        """Serve until `stop()`, then drain; False if requests were still running at the end
        of the drain timeout."""
        while not self._stopping:
            self._poll()
        return self._drain()

    def _poll(self, timeout: float = 1.0) -> None:
        wasyncore.loop(timeout=timeout, use_poll=True, map=self._map, count=1)

    def _drain(self) -> bool:
        """Stop accepting, finish the requests received, close the connections."""
        server = self._server
        wasyncore.dispatcher.close(server)  # the listening socket; the wake-up pipe stays
        deadline = time.monotonic() + self.limits.drain_timeout
        while server.active_channels and time.monotonic() < deadline:
            server.maintenance(time.time())
            for channel in list(server.active_channels.values()):
                receiving = channel.request is not None and channel.request.headers_finished
                if not (channel.requests or channel.total_outbufs_len or receiving):
                    channel.will_close = True
            self._poll(0.2)
        left = len(server.active_channels)
        if left:
            logs.emit(_LOG, logging.WARNING, f"drain timeout: closing {left} connection(s) "
                      "with requests still running", outcome="drain_timeout")
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        for channel in list(server.active_channels.values()):
            channel.handle_close()
        server.trigger.close()
        return not left
