"""Serve a WSGI application in a background thread (threaded werkzeug server), HTTP or HTTPS.

Unlike werkzeug's development handler, connections are kept alive (HTTP/1.1): a pooled client
then pays for one TCP connection and one TLS handshake, not one per request, which is what
lets the stand-ins answer several hundred requests a second on a small machine.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

_MAX_DRAIN = 16 * 1024 * 1024  # unread request bodies up to this size are skipped, not fatal
_IDLE_TIMEOUT = 60.0  # seconds an idle keep-alive connection is held open
_NO_BODY = {204, 304}


class _QuietHandler(WSGIRequestHandler):
    """Keeps the sandbox's request log off the terminal (the demo prints its own story)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


class _KeepAliveHandler(_QuietHandler):
    """Buffers each response, sends it with Content-Length, and reads the request body to its
    end so the next request line on the same connection is where it should be."""

    protocol_version = "HTTP/1.1"
    timeout = _IDLE_TIMEOUT

    def setup(self) -> None:
        super().setup()
        # Small answers go out at once instead of waiting on Nagle for the previous ACK.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _connections(self.server).add(self.connection)

    def finish(self) -> None:
        _connections(self.server).discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        length_text = self.headers.get("Content-Length", "0") or "0"
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower() \
                or not length_text.isdigit():
            super().run_wsgi()  # werkzeug's own path, which closes the connection
            return
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        stream = LimitedStream(self.rfile, int(length_text))  # type: ignore[arg-type]
        environ["wsgi.input"] = stream
        started: list[Any] = []
        body: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return body.append

        try:
            result = self.server.app(environ, start_response)
            try:
                body.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if int(length_text) > _MAX_DRAIN:
                self.close_connection = True  # not worth reading to its end
            else:
                stream.exhaust()
            self._send(started[0], started[1], b"".join(body))
        except (ConnectionError, TimeoutError, OSError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:
            self.close_connection = True
            self.server.log("error", f"Error on request: {exc!r}")
            self._send("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")],
                       b"internal server error")

    def _send(self, status: str, headers: list[tuple[str, str]], data: bytes) -> None:
        code_text, _, message = status.partition(" ")
        code = int(code_text)
        self.send_response(code, message)
        head = self.command == "HEAD"  # keeps the app's Content-Length of the GET body
        for key, value in headers:
            lowered = key.lower()
            if lowered not in ("content-length", "connection", "transfer-encoding") \
                    or (head and lowered == "content-length"):
                self.send_header(key, value)
        if code not in _NO_BODY and code >= 200 and not head:
            self.send_header("Content-Length", str(len(data)))
        client_wants_close = self.headers.get("Connection", "").lower() == "close"
        if self.close_connection or client_wants_close or self.request_version != "HTTP/1.1":
            self.send_header("Connection", "close")  # also sets self.close_connection
        # Headers and body in one write (one segment for a small answer).
        self._headers_buffer.append(b"\r\n")
        if not head and code not in _NO_BODY:
            self._headers_buffer.append(data)
        self.flush_headers()


def _connections(server: Any) -> set[socket.socket]:
    found: set[socket.socket] | None = getattr(server, "_sandbox_connections", None)
    if found is None:
        found = server._sandbox_connections = set()
    return found


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
            # Kept-alive connections would otherwise go on being served by the stopped app.
            for conn in list(_connections(self.server)):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.thread.join(timeout=5)


def serve(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningServer:
    """Start `app` on host:port (0 = any free port) and return once it accepts connections."""
    server = make_server(
        host, port, app, threaded=True, request_handler=_KeepAliveHandler,
        ssl_context=ssl_context,
    )
    _connections(server)
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox-{server.port}",
                              daemon=True)
    thread.start()
    return RunningServer(server, thread, "https" if ssl_context else "http")
