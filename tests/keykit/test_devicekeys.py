"""bridge.devicekeys: key forms, certificate, kit files, JWT minting, and check_key."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bridge import devicekeys
from bridge import keys as keylib
from bridge.errors import InvalidKeyError
from bridge.identity import IdentityTemplate
from bridge.model import AuthStatus, Credential, CredentialFormat, PublicKey, RegistryRef
from tests.fakes import FakeMender, FakeRegistry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REF = RegistryRef("p1", "us-central1", "fleet")
TEMPLATE = IdentityTemplate.parse("google_iot_id={device.id}")


@pytest.fixture(scope="module")
def ec_key() -> devicekeys.PrivateKey:
    return devicekeys.generate_key("ec")


@pytest.fixture(scope="module")
def rsa_key() -> devicekeys.PrivateKey:
    return devicekeys.generate_key("rsa")


@pytest.mark.parametrize(("kind", "header", "cert_fmt", "pub_fmt"), [
    ("ec", "EC PRIVATE KEY", "ES256_X509_PEM", "ES256_PEM"),
    ("rsa", "RSA PRIVATE KEY", "RSA_X509_PEM", "RSA_PEM"),
])
def test_write_kit_matches_the_shell_script(kind: devicekeys.KeyKind, header: str,
                                            cert_fmt: str, pub_fmt: str, tmp_path: Path) -> None:
    kit = devicekeys.write_kit(tmp_path / "out", kind=kind, device_id="dev-1")
    assert stat.S_IMODE(kit.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(kit.cert_path.stat().st_mode) == 0o644
    assert kit.key_path.read_text().startswith(f"-----BEGIN {header}-----\n")
    assert kit.id_path.read_text() == "dev-1\n"
    assert (kit.cert_format.value, kit.public_format.value) == (cert_fmt, pub_fmt)
    cert_key = keylib.normalize(kit.cert_path.read_text(), cert_fmt, now=datetime.now(UTC))
    assert cert_key == keylib.normalize(kit.public_path.read_text(), pub_fmt)
    private = devicekeys.load_private_key(kit.key_path)
    assert keylib.normalize(devicekeys.public_pem(private)) == cert_key
    assert sorted(p.name for p in kit.key_path.parent.iterdir()) == sorted(
        [devicekeys.KEY_NAME, devicekeys.PUBLIC_NAME, devicekeys.CERT_NAME, devicekeys.ID_NAME])


def test_write_kit_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    first = devicekeys.write_kit(tmp_path, device_id="dev-1").key_path.read_bytes()
    with pytest.raises(InvalidKeyError, match="already exists"):
        devicekeys.write_kit(tmp_path, device_id="dev-1")
    assert (tmp_path / devicekeys.KEY_NAME).read_bytes() == first
    devicekeys.write_kit(tmp_path, device_id="dev-1", force=True)
    assert (tmp_path / devicekeys.KEY_NAME).read_bytes() != first


@pytest.mark.parametrize(("device_id", "valid"), [
    ("abc", True), ("A-_.+~%9", True), ("z" * 255, True),
    ("ab", False), ("1abc", False), ("a b", False), ("a/b", False), ("z" * 256, False),
])
def test_device_id_rule(device_id: str, valid: bool) -> None:
    if valid:
        assert devicekeys.validate_device_id(device_id) == device_id
    else:
        with pytest.raises(InvalidKeyError, match="invalid device id"):
            devicekeys.validate_device_id(device_id)


def test_default_device_id_follows_meta_gcp_iot(tmp_path: Path) -> None:
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    assert devicekeys.default_device_id(machine_id) == "g-0123456789abcdef0123456789abcdef"
    with pytest.raises(InvalidKeyError, match="give --device-id"):
        devicekeys.default_device_id(tmp_path / "missing")


def test_certificate_validity_and_long_ids(ec_key: devicekeys.PrivateKey) -> None:
    pem = devicekeys.certificate(ec_key, "d" * 200, days=10, now=NOW)
    assert keylib.normalize(pem, "ES256_X509_PEM", now=NOW + timedelta(days=9))
    with pytest.raises(InvalidKeyError, match="expired"):
        keylib.normalize(pem, "ES256_X509_PEM", now=NOW + timedelta(days=11))


@pytest.mark.parametrize(("fixture", "alg"), [("ec_key", "ES256"), ("rsa_key", "RS256")])
def test_jwt_decodes_with_the_public_key(fixture: str, alg: str,
                                         request: pytest.FixtureRequest) -> None:
    key: devicekeys.PrivateKey = request.getfixturevalue(fixture)
    token = devicekeys.mint_jwt(key, "my-project", ttl=600, now=NOW)
    assert pyjwt.get_unverified_header(token)["alg"] == alg
    claims = pyjwt.decode(token, key.public_key(), algorithms=[alg], audience="my-project",
                          options={"verify_exp": False, "verify_iat": False})
    assert claims == {"aud": "my-project", "iat": int(NOW.timestamp()),
                      "exp": int(NOW.timestamp()) + 600}
    with pytest.raises(pyjwt.InvalidAudienceError):
        pyjwt.decode(token, key.public_key(), algorithms=[alg], audience="other",
                     options={"verify_exp": False, "verify_iat": False})


def test_jwt_limits(ec_key: devicekeys.PrivateKey, rsa_key: devicekeys.PrivateKey) -> None:
    assert devicekeys.mint_jwt(ec_key, "p", ttl=86400)
    with pytest.raises(InvalidKeyError, match=r"1\.\.86400"):
        devicekeys.mint_jwt(ec_key, "p", ttl=86401)
    with pytest.raises(InvalidKeyError, match="use ES256"):
        devicekeys.mint_jwt(ec_key, "p", algorithm="RS256")
    with pytest.raises(InvalidKeyError, match="use RS256"):
        devicekeys.mint_jwt(rsa_key, "p", algorithm="ES256")
    with pytest.raises(InvalidKeyError, match="ES256"):
        devicekeys.mint_jwt(ec.generate_private_key(ec.SECP384R1()), "p")
    with pytest.raises(InvalidKeyError, match="ES256"):
        devicekeys.mint_jwt(ed25519.Ed25519PrivateKey.generate(), "p")


def test_load_private_key_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyError, match="cannot read"):
        devicekeys.load_private_key(tmp_path / "nope.pem")
    public = tmp_path / "public.pem"
    public.write_text(devicekeys.public_pem(devicekeys.generate_key()))
    with pytest.raises(InvalidKeyError, match="not an unencrypted PEM private key"):
        devicekeys.load_private_key(public)


def _cert(key: devicekeys.PrivateKey, fmt: CredentialFormat = CredentialFormat.ES256_X509_PEM,
          expires: datetime | None = None) -> Credential:
    return Credential(devicekeys.certificate(key, "dev-1", now=NOW), fmt, expires)


def _public(key: devicekeys.PrivateKey) -> PublicKey:
    return keylib.normalize(devicekeys.public_pem(key))


def test_check_key_matches_both(ec_key: devicekeys.PrivateKey,
                                rsa_key: devicekeys.PrivateKey) -> None:
    registry, mender = FakeRegistry(), FakeMender()
    other = RegistryRef("p1", "us-central1", "other")
    registry.create(REF, "dev-1", (_cert(rsa_key, CredentialFormat.RSA_X509_PEM),
                                   _cert(ec_key)))
    mender.preauthorize({"google_iot_id": "dev-1"}, devicekeys.public_pem(ec_key))
    result = devicekeys.check_key(registry, mender, [other, REF], "dev-1", _public(ec_key),
                                  TEMPLATE, now=NOW)
    assert result.ok
    assert "credential 2 of 2 (ES256_X509_PEM) matches" in result.registry
    assert "is preauthorized" in result.mender


def test_check_key_reports_each_mismatch(ec_key: devicekeys.PrivateKey,
                                         rsa_key: devicekeys.PrivateKey) -> None:
    registry, mender = FakeRegistry(), FakeMender()
    missing = devicekeys.check_key(registry, mender, [REF], "dev-1", _public(ec_key), TEMPLATE)
    assert not missing.registry_ok and "not found (searched fleet)" in missing.registry
    registry.create(REF, "dev-1", (_cert(ec_key, expires=NOW - timedelta(days=1)),))
    expired = devicekeys.check_key(registry, mender, [REF], "dev-1", _public(ec_key), TEMPLATE,
                                   now=NOW)
    assert not expired.registry_ok and "matches but expired" in expired.registry
    assert not expired.mender_ok and "no device with identity" in expired.mender
    registry.update(REF, "dev-1", credentials=(_cert(ec_key),))
    mender.device_auth({"google_iot_id": "dev-1"}, devicekeys.public_pem(ec_key))
    pending = devicekeys.check_key(registry, mender, [REF], "dev-1", _public(ec_key), TEMPLATE,
                                   now=NOW)
    assert pending.registry_ok and not pending.mender_ok and "is pending" in pending.mender
    wrong = devicekeys.check_key(registry, mender, [REF], "dev-1", _public(rsa_key), TEMPLATE,
                                 now=NOW)
    assert "none of its 1 credentials" in wrong.registry
    assert "has no auth set with this key" in wrong.mender
    registry.update(REF, "dev-1", blocked=True)
    blocked = devicekeys.check_key(registry, mender, [REF], "dev-1", _public(ec_key), TEMPLATE,
                                   now=NOW)
    assert not blocked.registry_ok and "blocked" in blocked.registry


def test_check_key_accepted_status(ec_key: devicekeys.PrivateKey) -> None:
    registry, mender = FakeRegistry(), FakeMender()
    registry.create(REF, "dev-1", (_cert(ec_key),))
    mender.preauthorize({"google_iot_id": "dev-1"}, devicekeys.public_pem(ec_key))
    assert mender.device_auth({"google_iot_id": "dev-1"}, devicekeys.public_pem(ec_key))
    result = devicekeys.check_key(registry, mender, [REF], "dev-1", _public(ec_key), TEMPLATE,
                                  now=NOW)
    assert result.ok and f"is {AuthStatus.ACCEPTED.value}" in result.mender
