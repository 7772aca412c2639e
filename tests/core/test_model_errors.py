"""The domain model's small behaviours and the error tree's messages."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from bridge import errors
from bridge.model import (
    AuthStatus,
    Credential,
    CredentialFormat,
    KeyType,
    PublicKey,
    RegistryDevice,
    RegistryRef,
    Secret,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_secret_hides_itself_everywhere_but_reveal() -> None:
    secret = Secret("tok-123-SECRET")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret]),
                 repr({"token": secret})):
        assert "SECRET" not in text and "**" in text
    assert secret.reveal() == "tok-123-SECRET"
    assert secret == Secret("tok-123-SECRET") and secret != Secret("other")
    assert secret != "tok-123-SECRET"  # never equal to the bare string
    assert hash(secret) == hash(Secret("tok-123-SECRET"))
    assert bool(secret) and not Secret("")
    assert Secret("\ud800") == Secret("\ud800")  # odd text compares without crashing
    with pytest.raises(AttributeError):
        secret.other = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("expires_at", "now", "expired"), [
    (None, NOW, False),
    (NOW + timedelta(seconds=1), NOW, False),
    (NOW, NOW, True),
    (NOW - timedelta(days=1), NOW, True),
    (datetime(1970, 1, 1, tzinfo=UTC), NOW, False),  # Cloud IoT's "no expiry"
    (datetime(1970, 1, 1), NOW, False),
    (datetime(2026, 6, 1, 11), NOW, True),  # naive expiry is UTC
    (NOW + timedelta(hours=1), NOW.replace(tzinfo=None), False),  # naive now is UTC
    (datetime(2026, 6, 1, 13, 30, tzinfo=UTC), datetime(2026, 6, 1, 14, 0,
                                                          tzinfo=UTC) - timedelta(hours=1), False),
])
def test_credential_expiry(expires_at: datetime | None, now: datetime, expired: bool) -> None:
    assert Credential("pem", CredentialFormat.RSA_PEM, expires_at).is_expired(now) is expired


@pytest.mark.parametrize(("key", "text"), [
    (PublicKey("p", KeyType.RSA, 2048, None, "ab" * 32), "rsa 2048 bits sha256:abababababababab"),
    (PublicKey("p", KeyType.ED25519, None, "Ed25519", "cd" * 32),
     "ed25519 Ed25519 sha256:cdcdcdcdcdcdcdcd"),
])
def test_public_key_describe(key: PublicKey, text: str) -> None:
    assert key.describe() == text


def test_refs_devices_and_enums() -> None:
    ref = RegistryRef("project-1", "europe-west1", "fleet")
    assert str(ref) == ref.path == "projects/project-1/locations/europe-west1/registries/fleet"
    device = RegistryDevice(ref, "dev-1", "123", metadata={"a": "b"})
    assert str(device) == "fleet/dev-1"
    assert hash(device) == hash(RegistryDevice(ref, "dev-1", "123", metadata={"x": "y"}))
    assert AuthStatus("preauthorized") is AuthStatus.PREAUTHORIZED
    assert [f.value for f in CredentialFormat] == ["RSA_PEM", "RSA_X509_PEM", "ES256_PEM",
                                                   "ES256_X509_PEM"]


def test_config_error_holds_every_problem() -> None:
    err = errors.ConfigError(["A is required", "B must be positive"])
    assert err.problems == ["A is required", "B must be positive"]
    assert str(err) == "A is required; B must be positive"
    assert errors.ConfigError("only one").problems == ["only one"]


def test_api_error_message_and_fields() -> None:
    err = errors.TransientApiError("preauthorize device fleet/dev-1", service="mender",
                                   method="POST", path="/api/management/v2/devauth/devices",
                                   status=503, detail="busy", request_id="r-1", retry_after=2.0)
    assert str(err) == ("mender: preauthorize device fleet/dev-1 "
                        "(POST /api/management/v2/devauth/devices) status 503 error: busy "
                        "request id r-1")
    assert (err.service, err.status, err.retry_after) == ("mender", 503, 2.0)
    assert str(errors.NotFound("get device d", service="registry")) == "registry: get device d"
    assert str(errors.Conflict("x", service="mender", method="GET")) == "mender: x (GET)"
    assert str(errors.NotFound("x", service="registry", path="projects/p")) == (
        "registry: x (projects/p)")


@pytest.mark.parametrize(("cls", "parents"), [
    (errors.ConfigError, (errors.BridgeError,)),
    (errors.InvalidKeyError, (errors.BridgeError,)),
    (errors.IdentityError, (errors.BridgeError,)),
    (errors.EventError, (errors.BridgeError,)),
    (errors.TransientApiError, (errors.ApiError, errors.BridgeError)),
    (errors.NotFound, (errors.PermanentApiError, errors.ApiError, errors.BridgeError)),
    (errors.Conflict, (errors.PermanentApiError, errors.ApiError, errors.BridgeError)),
])
def test_error_tree(cls: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    assert all(issubclass(cls, p) for p in parents)
    assert not issubclass(cls, errors.TransientApiError) or cls is errors.TransientApiError


def test_errors_survive_pickling_and_copying() -> None:
    err = pickle.loads(pickle.dumps(errors.ConfigError(["a", "b"])))  # noqa: S301
    assert err.problems == ["a", "b"]
    original = errors.NotFound("x", service="mender", status=404, retry_after=1.5)
    for api in (pickle.loads(pickle.dumps(original)), copy.copy(original)):  # noqa: S301
        assert type(api) is errors.NotFound
        assert (api.status, api.retry_after, str(api)) == (404, 1.5, "mender: x status 404")
