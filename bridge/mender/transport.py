"""HTTP transport to the Mender management API: one pooled session, urllib3 retries with
backoff, jitter and Retry-After within bridge.httpclient's bounds, every request paced to the
server's rate limit (bridge.mender.pacer: a 429 is retried here, after the pacer's wait),
authentication (token or login), and the one place where failures become bridge.errors: a
refused token is a PermanentApiError (401/403) saying which setting to check, a redirect is
never followed. Tokens never reach logs, errors or `repr`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.response import BaseHTTPResponse

from bridge.errors import ApiError, ConfigError, PermanentApiError, from_status
from bridge.httpclient import (
    BoundedRetry,
    RetryNotice,
    redirect_error,
    refuse_redirects,
    request_error,
)
from bridge.mender.pacer import DEFAULT_HOLD_S, Pacer
from bridge.mender.parse import BodyError, json_body
from bridge.model import MENDER_SERVICE, Secret
from bridge.urls import check_url

LOGIN_PATH = "/api/management/v1/useradm/auth/login"
# urllib3 retries these; a 429 is retried by Transport, through the pacer that all requests of
# the client share (urllib3 would retry it at once, in the thread that got it).
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Every request this client sends may be repeated: GET and the inventory search read;
# preauthorize answers 409 (or upserts the same set with `force`) when repeated; login issues
# another token; PUT status is a no-op when repeated; a repeated DELETE answers 404 = gone.
RETRY_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
# What a refused credential means, by (auth kind, status): the CLI turns these into exit 2.
AUTH_HINTS = {
    ("token", 401): "the Mender token was refused (revoked or expired?): check MENDER_TOKEN",
    ("token", 403): "the Mender token is not allowed to do this (its user lacks the "
                    "permission?): check MENDER_TOKEN",
    ("login", 401): "the Mender login was refused: check MENDER_USERNAME and MENDER_PASSWORD",
    ("login", 403): "the Mender user is not allowed to do this: check MENDER_USERNAME's role",
}


@dataclass
class Stats:
    """Requests sent over the wire, retries and logins included (the benchmarks read it)."""

    requests: int = 0
    requests_by_method: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, method: str) -> None:
        with self._lock:
            self.requests += 1
            self.requests_by_method[method] = self.requests_by_method.get(method, 0) + 1


RetryHook = Callable[[str, "BaseHTTPResponse | None"], None]


class MenderRetry(BoundedRetry):
    """BoundedRetry that reports each retry (for counting) and caps Retry-After."""

    # urllib3 also retries 413 when it carries Retry-After; a body too large never shrinks.
    RETRY_AFTER_STATUS_CODES = frozenset({503})

    def __init__(self, *args: Any, on_retry: RetryHook | None = None,
                 max_retry_after: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_retry = on_retry
        self.max_retry_after = max_retry_after

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.on_retry, retry.max_retry_after = self.on_retry, self.max_retry_after
        return retry

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  *args: Any, **kwargs: Any) -> Self:
        retry = super().increment(method, url, response, error, *args, **kwargs)
        if self.on_retry is not None:
            self.on_retry(method or "", response)
        return retry

    def parse_retry_after(self, retry_after: str) -> float:
        # A server asking for an hour must not freeze a worker for an hour.
        return min(super().parse_retry_after(retry_after), self.max_retry_after)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def api_error(op: str, method: str, path: str, response: requests.Response,
               request_id: str, hint: str = "") -> ApiError:
    """One non-success response → the error tree, with the server's error text and request
    id from the body; a redirect names the host it points to and is never followed."""
    if response.is_redirect:
        return redirect_error(response, op, service=MENDER_SERVICE, method=method, path=path,
                              request_id=request_id)
    detail, body_id = "", ""
    try:
        body = json_body(response.text) if response.content else None
    except BodyError:
        body = None
    if isinstance(body, dict):
        detail = str(body.get("error") or "")[:300]
        body_id = str(body.get("request_id") or "")
    rid = response.headers.get("X-MEN-RequestID") or body_id or request_id
    return from_status(response.status_code, f"{op} failed: {hint}" if hint else f"{op} failed",
                       service=MENDER_SERVICE, method=method, path=path, detail=detail,
                       request_id=rid, retry_after=retry_after_seconds(response.headers))


class Transport:
    """Sends management API requests and returns responses; raises only bridge.errors."""

    def __init__(self, base_url: str, *, token: Secret | None, username: str | None,
                 password: Secret | None, ca_bundle: str | None, timeout: float,
                 connect_timeout: float | None, pool_size: int, retries: int, backoff: float,
                 max_retry_after: float, pacer: Pacer | None = None) -> None:
        check_url("Mender URL", base_url)
        self.base_url = base_url.rstrip("/")
        if token is None and not (username and password):
            raise ConfigError("Mender needs a token, or a username and a password")
        if token is not None and (username or password):
            raise ConfigError("give Mender a token or a username and a password, not both")
        self._token, self._username, self._password = token, username, password
        self._token_lock = threading.Lock()
        self._generation = 0
        self.stats = Stats()
        self.pacer = pacer or Pacer(max_hold=max_retry_after)
        self._retries = retries
        self._verify: str | bool = ca_bundle or True
        # MENDER_TIMEOUT bounds every attempt, the connection included.
        self._timeout = (connect_timeout or timeout, timeout)
        retry = MenderRetry(
            total=retries, connect=retries, read=retries, status=retries, other=0, redirect=0,
            allowed_methods=RETRY_METHODS, status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff, backoff_jitter=backoff, backoff_max=30.0,
            respect_retry_after_header=True, raise_on_status=False,
            on_retry=self._on_retry, max_retry_after=max_retry_after,
            notice=RetryNotice(MENDER_SERVICE, self._timeout),
        )
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
        self.session = requests.Session()
        refuse_redirects(self.session)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # requests reads the proxy and CA-bundle variables of the whole environment again on
        # every request, a large share of the client's CPU in a backfill: read them once here,
        # with requests' own rules (NO_PROXY, REQUESTS_CA_BUNDLE), and not again.
        env = self.session.merge_environment_settings(self.base_url, {}, None, self._verify,
                                                      None)
        self.session.trust_env = False
        self.session.proxies = env["proxies"]
        self._verify = True if env["verify"] is None else env["verify"]

    @property
    def auth_kind(self) -> str:
        return "login" if self._password is not None else "token"

    def close(self) -> None:
        self.session.close()

    def _on_retry(self, method: str, response: BaseHTTPResponse | None) -> None:
        self.stats.count(method)

    def _send(self, op: str, method: str, url: str, path: str, *, auth: Any,
              params: Mapping[str, Any] | None = None, json: object = None,
              accept: str = "application/json", extra: Mapping[str, str] | None = None
              ) -> tuple[requests.Response, str]:
        """One call, paced; a 429 is retried after the pacer's wait, `retries` times at most."""
        request_id = str(uuid.uuid4())
        headers = {"X-MEN-RequestID": request_id, "Accept": accept, **(extra or {})}
        # Encoded as requests encodes a mapping (None dropped), which as text it takes as is.
        query = urlencode([(k, v) for k, v in (params or {}).items() if v is not None],
                          doseq=True)
        wait = 0.0
        for attempt in range(self._retries + 1):
            sent = self.pacer.wait(wait)
            self.stats.count(method)
            try:
                # Prepared here rather than by Session.request, whose merging of session and
                # request settings (all fixed in __init__) costs more CPU than the rest of
                # the client's work on a request; headers and cookies are merged the same way.
                prepared = requests.Request(
                    method, url, headers={**self.session.headers, **headers}, params=query,
                    json=json, auth=auth, cookies=self.session.cookies or None).prepare()
                response = self.session.send(
                    prepared, timeout=self._timeout, verify=self._verify,
                    proxies=self.session.proxies, allow_redirects=False)
            except requests.RequestException as exc:
                # `from None`: the cause holds the prepared request and its Authorization header.
                raise request_error(exc, op, service=MENDER_SERVICE, method=method, path=path,
                                    timeout=self._timeout, request_id=request_id) from None
            if response.status_code != 429:
                if response.status_code < 500:  # a 5xx may never have reached the limiter
                    self.pacer.passed(sent)
                break
            retry_after = retry_after_seconds(response.headers)
            self.pacer.limited(sent, retry_after)
            wait = DEFAULT_HOLD_S if retry_after is None else retry_after
            if attempt < self._retries:
                response.close()
        return response, request_id

    def _login(self) -> Secret:
        assert self._username is not None and self._password is not None
        basic = (self._username, self._password.reveal())
        url = self.base_url + LOGIN_PATH
        response, rid = self._send("login", "POST", url, LOGIN_PATH, auth=basic,
                                   accept="application/jwt, application/json")
        if response.status_code != 200:
            raise api_error("login", "POST", LOGIN_PATH, response, rid,
                            AUTH_HINTS.get(("login", response.status_code), ""))
        text = response.text.strip()
        # The server answers application/jwt (docs/mender-api.md#login); the spec also allows a
        # JSON string.
        if text.startswith('"'):
            try:
                decoded = json_body(text)
            except BodyError:
                decoded = None
            text = decoded if isinstance(decoded, str) else ""
        if not text:
            raise PermanentApiError("login failed: no token in the answer",
                                    service=MENDER_SERVICE, method="POST", path=LOGIN_PATH,
                                    status=response.status_code, request_id=rid)
        return Secret(text)

    def _bearer(self, stale: int | None = None) -> tuple[int, Secret]:
        """The current token and its generation; logs in when there is none, or when the
        token of generation `stale` was refused and no other thread has replaced it yet."""
        with self._token_lock:
            if self._token is None or (stale is not None and stale == self._generation):
                self._token = self._login()
                self._generation += 1
            return self._generation, self._token

    def request(self, op: str, method: str, path: str, *, url: str | None = None,
                params: Mapping[str, Any] | None = None, json: object = None,
                allow: Collection[int] = (), headers: Mapping[str, str] | None = None
                ) -> tuple[requests.Response, str]:
        """Send one call; returns 2xx answers and statuses in `allow`, raises otherwise.
        `headers` are added to the call's own (inventory's `If-Match`).

        A 401 with user/password logs in again and repeats the call once, never more."""
        generation, token = self._bearer()
        response, rid = self._send(op, method, url or self.base_url + path, path,
                                   auth=_Bearer(token), params=params, json=json,
                                   extra=headers)
        if response.status_code == 401 and self._password is not None:
            generation, token = self._bearer(stale=generation)
            response, rid = self._send(op, method, url or self.base_url + path, path,
                                       auth=_Bearer(token), params=params, json=json,
                                       extra=headers)
        if 200 <= response.status_code < 300 or response.status_code in allow:
            return response, rid
        raise api_error(op, method, path, response, rid,
                        AUTH_HINTS.get((self.auth_kind, response.status_code), ""))


class _Bearer(requests.auth.AuthBase):
    """Adds the token at send time, so it never sits in session headers or a repr."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return request
