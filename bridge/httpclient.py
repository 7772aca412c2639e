"""The rules every outbound HTTP client of the bridge follows (Mender, Google, ClearBlade): a
failure named as what it is, bounded retries per kind of failure, no redirects, and a notice
on stderr (a WARNING log line) while a call keeps retrying a service that does not answer.

Retry bounds per call, on top of each client's own count (measured from the failures, not a
clock): a refused connection or an unresolved name is retried at most twice (urllib3 waits
0 s, then 2 × backoff: well under a second with the clients' defaults) — it rarely fixes
itself in seconds, and the caller's own redelivery (Pub/Sub, cron) covers longer outages; a
timeout (connect or read, each waiting the configured timeout) is retried once, so a call
that gets no answer costs at most about twice the timeout; a TLS failure is never retried
(a certificate does not fix itself). A redirect is never followed: it is a permanent error
naming the host it points to, so no credential ever reaches another host.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from bridge.errors import ApiError, PermanentApiError, from_status
from bridge.logs import emit, get_logger

NOTICE_EVERY = 5.0  # seconds between two retry notices of one client
_LOG = get_logger("http")


class Failure(StrEnum):
    """What went wrong before any answer arrived; the value is how messages name it."""

    REFUSED = "connection refused"
    NAME = "name not resolved"
    UNTRUSTED = "TLS certificate not trusted"
    TLS = "TLS handshake failed"
    UNREACHABLE = "host unreachable"
    TIMEOUT = "timed out"
    RESET = "connection closed by the server"
    REDIRECT = "redirected"
    OTHER = "request failed"


# How many times a call retries each kind of failure (absent: the client's own count).
_LIMITS = {Failure.REFUSED: 2, Failure.NAME: 2, Failure.UNREACHABLE: 2, Failure.TIMEOUT: 1,
           Failure.UNTRUSTED: 0, Failure.TLS: 0, Failure.REDIRECT: 0}
_NO_ANSWER = frozenset({Failure.REFUSED, Failure.NAME, Failure.UNREACHABLE, Failure.TIMEOUT})
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps (urllib3 `reason`, exception arguments, causes)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        item = todo.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        linked = [getattr(item, "reason", None), item.__cause__, item.__context__, *item.args]
        todo.extend(x for x in linked if isinstance(x, BaseException))


def classify(exc: BaseException) -> tuple[Failure, bool]:
    """The kind of failure, and whether a timeout was a read timeout (else a connect one)."""
    chain = list(_causes(exc))

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(e, kinds) for e in chain)

    if has(requests.TooManyRedirects):
        return Failure.REDIRECT, False
    if has(ssl.SSLCertVerificationError, ssl.CertificateError):
        return Failure.UNTRUSTED, False
    if has(ssl.SSLError, Urllib3SSLError, requests.exceptions.SSLError):
        return Failure.TLS, False
    if has(socket.gaierror, NameResolutionError):
        return Failure.NAME, False
    if has(ConnectionRefusedError):
        return Failure.REFUSED, False
    if any(isinstance(e, OSError) and e.errno in _UNREACHABLE for e in chain):
        return Failure.UNREACHABLE, False
    # urllib3 2 derives NewConnectionError (refused, unreachable…) from ConnectTimeoutError.
    if any(isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError)
           for e in chain) or has(requests.exceptions.ConnectTimeout):
        return Failure.TIMEOUT, False
    if has(ReadTimeoutError, requests.exceptions.ReadTimeout, TimeoutError):
        return Failure.TIMEOUT, True
    if has(ConnectionResetError, BrokenPipeError, ProtocolError):
        return Failure.RESET, False
    return Failure.OTHER, False


def _seconds(value: float) -> str:
    return f"{value:g}s"


def describe(exc: BaseException, timeout: tuple[float, float]) -> str:
    """`connection refused`, `name not resolved`, `TLS certificate not trusted (…)`,
    `timed out after 10s`…: what went wrong, in the words an operator looks for."""
    kind, read = classify(exc)
    if kind is Failure.TIMEOUT:
        return f"timed out after {_seconds(timeout[1] if read else timeout[0])}"
    if kind is Failure.UNTRUSTED:
        why = next((e.verify_message for e in _causes(exc)
                    if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message), "")
        return f"{kind.value} ({why})" if why else kind.value
    if kind is Failure.TLS:
        why = next((e.reason for e in _causes(exc) if isinstance(e, ssl.SSLError) and e.reason),
                   "")
        return f"{kind.value} ({why})" if why else kind.value
    if kind is Failure.OTHER:
        return f"{kind.value} ({type(exc).__name__})"
    return kind.value


def host_of(url: str | None) -> str:
    """`host:port` of a URL (never its path or query), for messages."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "?"
    shown = f"{host}:{port}" if port else host
    return shown[:100] or "?"


def request_error(exc: requests.RequestException, operation: str, *, service: str,
                  method: str, path: str, timeout: tuple[float, float],
                  request_id: str = "") -> ApiError:
    """The ApiError for a request that got no usable answer. TLS failures and redirects are
    permanent; the rest is transient. The message names the host, never the URL's path (it
    may hold a key) nor the request (its headers hold the credential)."""
    kind, _ = classify(exc)
    if kind is Failure.REDIRECT and exc.response is not None:
        return redirect_error(exc.response, operation, service=service, method=method,
                              path=path, request_id=request_id)
    host = host_of(exc.request.url if exc.request is not None else None)
    text = f"{operation} failed: {describe(exc, timeout)} ({host})"
    if kind in (Failure.UNTRUSTED, Failure.TLS):
        return PermanentApiError(text, service=service, method=method, path=path,
                                 request_id=request_id)
    return from_status(None, text, service=service, method=method, path=path,
                       request_id=request_id)


def redirect_error(response: requests.Response, operation: str, *, service: str, method: str,
                   path: str, request_id: str = "") -> PermanentApiError:
    """A 3xx answer: never followed (it could carry the credential to another host)."""
    target = host_of(urljoin(response.url or "", response.headers.get("Location", "")))
    return PermanentApiError(
        f"{operation} failed: the server redirected to {target}, and redirects are not "
        "followed (check the configured URL)", service=service, method=method, path=path,
        status=response.status_code, request_id=request_id)


def refuse_redirects(session: requests.Session) -> None:
    """Make `session` raise TooManyRedirects on the first redirect, before any request to
    the target (requests checks the count before it follows)."""
    session.max_redirects = 0


class RetryNotice:
    """One WARNING per NOTICE_EVERY seconds while calls of one client retry a service that
    does not answer (refused, unresolved, timed out, 5xx); never a URL path or credential."""

    def __init__(self, service: str, timeout: tuple[float, float]) -> None:
        self.service = service
        self.timeout = timeout
        self._last = -NOTICE_EVERY
        self._lock = threading.Lock()

    def failed(self, error: BaseException, host: str) -> None:
        if classify(error)[0] in _NO_ANSWER:
            self._notice(describe(error, self.timeout), host)

    def answered(self, status: int, host: str) -> None:
        if status >= 500:
            self._notice(f"answered {status}", host)

    def _notice(self, what: str, host: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < NOTICE_EVERY:
                return
            self._last = now
        emit(_LOG, logging.WARNING, f"{self.service}: {what} ({host}); retrying",
             service=self.service, problem=what, host=host)


class BoundedRetry(Retry):
    """urllib3 Retry with the bridge's bounds per kind of failure (module docstring) and a
    RetryNotice told of every retry."""

    def __init__(self, *args: Any, notice: RetryNotice | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notice = notice

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.notice = self.notice
        return retry

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: TracebackType | None = None) -> Self:
        if error is not None:
            kind, _ = classify(error)
            limit = _LIMITS.get(kind)
            seen = sum(1 for h in self.history
                       if h.error is not None and classify(h.error)[0] is kind)
            if limit is not None and seen >= limit:
                raise MaxRetryError(_pool, url, error) from error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.notice is not None:
            host = f"{_pool.host}:{_pool.port}" if _pool is not None else "?"
            if error is not None:
                self.notice.failed(error, host)
            elif response is not None:
                self.notice.answered(response.status, host)
        return retry


class Closing:
    """`with client:` closes the client (its sessions and pooled connections) on exit."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
