"""Over real loopback sockets: dropped connections, hangs, 429 with Retry-After and TLS, where
`responses` cannot stand in (it bypasses urllib3's connection handling)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mender_bodies import EC_PEM, TOKEN, device, error
from mender_support import ScriptedServer, http_answer, self_signed

from bridge.errors import ConfigError, PermanentApiError, TransientApiError
from bridge.mender import MenderClient
from bridge.mender.transport import RETRY_METHODS, RETRY_STATUSES, MenderRetry

Start = Callable[..., ScriptedServer]
DEVICE_OK = http_answer(200, device("d1"))
CREATED = http_answer(201, None, {"Location": "devices/new"})


def _client(url: str, **kw: object) -> MenderClient:
    options: dict[str, object] = {"token": TOKEN, "retries": 2, "backoff": 0.0, **kw}
    return MenderClient(url, **options)  # type: ignore[arg-type]


def test_dropped_connections_are_retried(scripted: Start) -> None:
    server = scripted(["drop", "drop", DEVICE_OK])
    with _client(server.url) as c:
        assert c.get_device("d1").id == "d1"
        assert c.stats.requests == 3
    assert len(server.requests) == 3
    assert all(r.startswith(b"GET /api/management/v2/devauth/devices/d1 ") for r in server.requests)


def test_preauthorize_is_repeated_after_a_drop(scripted: Start) -> None:
    server = scripted(["drop", CREATED])
    with _client(server.url) as c:
        assert c.preauthorize({"google_iot_id": "d1"}, EC_PEM).location_id == "new"
    assert [r.split(b" ")[0] for r in server.requests] == [b"POST", b"POST"]


def test_drops_until_retries_run_out_are_transient(scripted: Start) -> None:
    server = scripted(["drop"] * 3)
    with _client(server.url) as c, pytest.raises(TransientApiError) as info:
        c.decommission("d1")
    assert len(server.requests) == 3
    assert info.value.method == "DELETE" and info.value.status is None


def test_a_server_that_never_answers_times_out(scripted: Start) -> None:
    server = scripted(["hang", "hang"])
    with _client(server.url, retries=1, timeout=0.3) as c, \
            pytest.raises(TransientApiError, match="timed out"):
        c.count()
    assert len(server.requests) == 2


def test_nothing_listening_is_transient(scripted: Start) -> None:
    server = scripted([])
    url = server.url
    server.stop()
    with _client(url, retries=1) as c, pytest.raises(TransientApiError):
        c.count()


def test_429_then_503_are_retried_and_the_429_is_in_the_pace(scripted: Start) -> None:
    server = scripted([http_answer(429, error("too many requests"), {"Retry-After": "0"}),
                       http_answer(503, error("service unavailable")),
                       http_answer(200, {"count": 5})])
    with _client(server.url) as c:
        assert c.count() == 5
        assert c.stats.requests_by_method == {"GET": 3}
        assert c.pace().limited == 1 and c.pace().passed == 1
    assert len(server.requests) == 3


@pytest.mark.timeout(30)
def test_a_huge_retry_after_is_capped(scripted: Start) -> None:
    server = scripted([http_answer(429, error("too many requests"), {"Retry-After": "3600"}),
                       http_answer(200, {"count": 1})])
    with _client(server.url, max_retry_after=0.0) as c:
        assert c.count() == 1  # at once: the wait is capped at max_retry_after
        assert c.pace().limited == 1
    assert len(server.requests) == 2


def test_retry_policy_is_urllib3s_with_jitter_and_retry_after() -> None:
    with MenderClient("https://mender.example.com", token=TOKEN, pool_size=48) as c:
        adapter = c.session.get_adapter("https://mender.example.com/x")
        retry = adapter.max_retries
        assert isinstance(retry, MenderRetry)
        assert retry.total == 5 and retry.backoff_factor == 0.2 and retry.backoff_jitter == 0.2
        assert retry.respect_retry_after_header and not retry.raise_on_status
        assert set(retry.allowed_methods or ()) == set(RETRY_METHODS) >= {"POST", "GET"}
        # A 429 is retried by the transport, after the pacer's wait (test_pacer).
        assert set(retry.status_forcelist or ()) == set(RETRY_STATUSES) == {500, 502, 503, 504}
        assert set(retry.RETRY_AFTER_STATUS_CODES) == {503}
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == 48


def test_tls_is_verified_and_a_ca_bundle_makes_it_trusted(scripted: Start,
                                                           tmp_path: Path) -> None:
    context, ca = self_signed(tmp_path)
    server = scripted([DEVICE_OK], tls=context)
    with _client(server.url) as c, pytest.raises(PermanentApiError, match="TLS"):
        c.get_device("d1")
    assert server.requests == []  # the handshake failed: nothing was sent
    with _client(server.url, ca_bundle=str(ca)) as c:
        assert c.get_device("d1").id == "d1"
    assert len(server.requests) == 1


def test_ca_bundle_wins_over_the_environment(scripted: Start, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    context, ca = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    server = scripted([DEVICE_OK], tls=context)
    with _client(server.url, ca_bundle=str(ca)) as c:
        assert c.get_device("d1").id == "d1"


@pytest.mark.parametrize("url,message", [
    ("http://mender.example.com", "plain http:// is refused"),
    ("http://10.0.0.5:8080", "plain http:// is refused"),
    ("ftp://localhost", "must be an https:// URL"),
    ("mender.example.com", "must be an https:// URL"),
    ("https://mender.example.com:port", "not a valid URL"),
    # A password there would show in the client's repr and in error messages.
    ("https://admin:pw-SECRET@mender.example.com", "must not hold a user name or password"),
])
def test_plain_http_is_refused_except_to_loopback(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        MenderClient(url, token=TOKEN)
    assert str(info.value).startswith("Mender URL")
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:1",
                                 "https://hosted.mender.io/"])
def test_loopback_http_and_https_are_accepted(url: str) -> None:
    with MenderClient(url, token=TOKEN) as c:
        assert c.base_url == url.rstrip("/")


def test_ca_bundle_from_the_environment_is_read_once_at_construction(
        scripted: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests' own variable keeps working although the client does not re-read the
    # environment on each request (it is read once, when the client is built).
    context, ca = self_signed(tmp_path)
    server = scripted([DEVICE_OK, DEVICE_OK], tls=context)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    with _client(server.url) as c:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
        assert c.get_device("d1").id == "d1"
        assert c.get_device("d1").id == "d1"
    assert len(server.requests) == 2
