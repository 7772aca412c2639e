"""bridge.devicekeys and bridge.keykit: key forms, certificate, kit files, JWT minting."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bridge import devicekeys, keykit
from bridge import keys as keylib
from bridge.errors import InvalidKeyError
from tests.core.key_material import keyring

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "header", "cert_fmt", "pub_fmt"), [
    ("ec", "EC PRIVATE KEY", "ES256_X509_PEM", "ES256_PEM"),
    ("rsa", "RSA PRIVATE KEY", "RSA_X509_PEM", "RSA_PEM"),
])
def test_write_kit_matches_the_shell_script(kind: devicekeys.KeyKind, header: str,
                                            cert_fmt: str, pub_fmt: str, tmp_path: Path) -> None:
    kit = keykit.write_kit(tmp_path / "out", kind=kind, device_id="dev-1")
    assert stat.S_IMODE(kit.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(kit.cert_path.stat().st_mode) == 0o644
    assert kit.key_path.read_text().startswith(f"-----BEGIN {header}-----\n")
    assert kit.id_path.read_text() == "dev-1\n"
    assert (kit.cert_format.value, kit.public_format.value) == (cert_fmt, pub_fmt)
    cert_key = keylib.normalize(kit.cert_path.read_text(), cert_fmt, now=datetime.now(UTC))
    assert cert_key == keylib.normalize(kit.public_path.read_text(), pub_fmt)
    private = keykit.load_private_key(kit.key_path)
    assert keylib.normalize(devicekeys.public_pem(private)) == cert_key
    assert sorted(p.name for p in kit.key_path.parent.iterdir()) == sorted(
        [keykit.KEY_NAME, keykit.PUBLIC_NAME, keykit.CERT_NAME, keykit.ID_NAME])


def test_write_kit_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    first = keykit.write_kit(tmp_path, device_id="dev-1").key_path.read_bytes()
    with pytest.raises(keykit.KeyExistsError, match="already exists"):
        keykit.write_kit(tmp_path, device_id="dev-1")
    assert (tmp_path / keykit.KEY_NAME).read_bytes() == first
    keykit.write_kit(tmp_path, device_id="dev-1", force=True)
    assert (tmp_path / keykit.KEY_NAME).read_bytes() != first


@pytest.mark.parametrize(("device_id", "valid"), [
    ("abc", True), ("A-_.+~%9", True), ("z" * 255, True),
    ("ab", False), ("1abc", False), ("a b", False), ("a/b", False), ("z" * 256, False),
])
def test_device_id_rule(device_id: str, valid: bool) -> None:
    if valid:
        assert keykit.validate_device_id(device_id) == device_id
    else:
        with pytest.raises(InvalidKeyError, match=r"device id .* is not valid"):
            keykit.validate_device_id(device_id)


def test_default_device_id_follows_meta_gcp_iot(tmp_path: Path) -> None:
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    assert keykit.default_device_id(machine_id) == "g-0123456789abcdef0123456789abcdef"
    with pytest.raises(InvalidKeyError, match="give --device-id"):
        keykit.default_device_id(tmp_path / "missing")


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
        keykit.load_private_key(tmp_path / "nope.pem")
    public = tmp_path / "public.pem"
    public.write_text(devicekeys.public_pem(devicekeys.generate_key()))
    with pytest.raises(InvalidKeyError, match="not an unencrypted PEM private key"):
        keykit.load_private_key(public)
    with pytest.raises(InvalidKeyError, match="is not a regular file"):
        keykit.load_private_key("/dev/zero")


def test_jwt_applies_the_key_policy() -> None:
    weak = keyring()["rsa1024"]
    assert isinstance(weak, rsa.RSAPrivateKey)
    with pytest.raises(InvalidKeyError, match="1024 bits is below the minimum of 2048"):
        devicekeys.mint_jwt(weak, "p")
    strict = keylib.KeyPolicy(min_rsa_bits=4096)
    with pytest.raises(InvalidKeyError, match="3072 bits is below the minimum of 4096"):
        devicekeys.mint_jwt(devicekeys.generate_key("rsa"), "p", policy=strict)


def test_kit_directories_are_private_and_existing_ones_kept(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    old = os.umask(0)
    try:
        kit = keykit.write_kit(shared / "a" / "b", device_id="dev-1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((shared / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(kit.key_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE(kit.key_path.stat().st_mode) == 0o600


