"""Shared conversions of the registry adapters (table-driven), and the Google adapter's error
mapping at its HTTP edge with `responses`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import responses

from bridge.errors import (
    ApiError,
    Conflict,
    NotFound,
    PermanentApiError,
)
from bridge.model import CredentialFormat, RegistryRef
from bridge.registry import GoogleRegistry
from bridge.registry.convert import credential_format, device_from_json, expiry

REF = RegistryRef("proj-1", "us-central1", "reg0")
BASE = "https://cloudiot.test"
DEVICE_URL = re.compile(rf"{BASE}/v1/{REF.path}/devices/dev0.*")


@pytest.mark.parametrize(("value", "expected"), [
    (1, CredentialFormat.RSA_X509_PEM), (2, CredentialFormat.ES256_PEM),
    (3, CredentialFormat.RSA_PEM), (4, CredentialFormat.ES256_X509_PEM),
    (0, None), (99, None), (True, None), ("rsa_pem", CredentialFormat.RSA_PEM),
    ("ES256_X509_PEM", CredentialFormat.ES256_X509_PEM),
    ("UNSPECIFIED_PUBLIC_KEY_FORMAT", None), (None, None), (2.0, None),
])
def test_credential_format(value: Any, expected: CredentialFormat | None) -> None:
    assert credential_format(value) is expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("1970-01-01T00:00:00Z", None),
    (datetime(1970, 1, 1, tzinfo=UTC), None), ("not a time", None), (12, None),
    ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2030-01-02T03:04:05.123456Z", datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ("2030-01-02T05:04:05+02:00", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    (datetime(2030, 1, 2), datetime(2030, 1, 2, tzinfo=UTC)),
    (datetime(2030, 1, 2, tzinfo=timezone(timedelta(hours=1))),
     datetime(2030, 1, 1, 23, tzinfo=UTC)),
])
def test_expiry(value: Any, expected: datetime | None) -> None:
    assert expiry(value) == expected


def test_device_from_json_tolerates_odd_entries() -> None:
    device = device_from_json(REF, {"id": "d", "numId": "12", "credentials": [
        {"publicKey": {"format": 2, "key": "K"}}, "junk", {"nope": 1}],
        "metadata": {"a": 1}, "blocked": True})
    assert device.num_id == "12" and device.blocked and device.metadata == {"a": "1"}
    assert [(c.format, c.key) for c in device.credentials] == [(CredentialFormat.ES256_PEM, "K")]


def google_error(status: int, text: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": text, "status": "X"}}


@pytest.fixture
def google() -> GoogleRegistry:
    return GoogleRegistry(endpoint=BASE, credentials="anonymous", timeout=2,
                          retry_deadline=5)


@responses.activate
@pytest.mark.parametrize(("status", "kind"), [
    (403, PermanentApiError), (404, NotFound), (409, Conflict), (400, PermanentApiError)])
def test_google_statuses_map_once(google: GoogleRegistry, status: int,
                                  kind: type[ApiError]) -> None:
    responses.get(DEVICE_URL, json=google_error(status, "nope"), status=status)
    with pytest.raises(kind) as caught:
        google.get_device(REF, "dev0")
    assert caught.value.status == status and "nope" in str(caught.value)
    assert len(responses.calls) == 1  # permanent errors are not retried


@responses.activate
def test_google_retries_transient_statuses(google: GoogleRegistry) -> None:
    responses.get(DEVICE_URL, json=google_error(503, "busy"), status=503)
    responses.get(DEVICE_URL, json=google_error(429, "slow down"), status=429)
    responses.get(DEVICE_URL, json={"id": "dev0", "numId": "77", "credentials": [
        {"publicKey": {"format": 3, "key": "PEM"}, "expirationTime": "1970-01-01T00:00:00Z"}]})
    device = google.get_device(REF, "dev0")
    assert len(responses.calls) == 3
    assert device.num_id == "77" and device.credentials[0].format is CredentialFormat.RSA_PEM
    assert device.credentials[0].expires_at is None
