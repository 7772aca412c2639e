"""bridge.keycheck: one device key against the registry device and its Mender device (fakes of
both ports; the answer read back from the fakes' own state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge import devicekeys, keycheck
from bridge.identity import IdentityTemplate
from bridge.model import AuthStatus, Credential, CredentialFormat, RegistryRef
from tests.fakes import FakeMender, FakeRegistry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REF = RegistryRef("p1", "us-central1", "fleet")
TEMPLATE = IdentityTemplate.parse("google_iot_id={device.id}")
IDENTITY = {"google_iot_id": "dev-1"}


def cert(key: devicekeys.PrivateKey, fmt: CredentialFormat = CredentialFormat.ES256_X509_PEM,
         expires: datetime | None = None) -> Credential:
    return Credential(devicekeys.certificate(key, "dev-1", now=NOW), fmt, expires)


def check(registry: FakeRegistry, mender: FakeMender, key: devicekeys.PrivateKey,
          ref: RegistryRef = REF) -> keycheck.KeyCheck:
    return keycheck.check_key(registry, mender, ref, "dev-1", devicekeys.public_pem(key),
                              TEMPLATE, now=NOW)


def test_a_key_in_both_is_ok_and_says_where(ec_key: devicekeys.PrivateKey,
                                            rsa_key: devicekeys.PrivateKey) -> None:
    registry, mender = FakeRegistry(), FakeMender()
    registry.create(REF, "dev-1", (cert(rsa_key, CredentialFormat.RSA_X509_PEM), cert(ec_key)))
    mender.preauthorize(IDENTITY, devicekeys.public_pem(ec_key))
    found = mender.find_by_identity(IDENTITY)
    assert found is not None and found.auth_sets
    result = check(registry, mender, ec_key)
    assert result.ok and result.found
    assert result.credential is not None
    assert (result.credential.number, result.credentials) == (2, 2)
    assert result.credential.format is CredentialFormat.ES256_X509_PEM
    assert (result.mender_id, result.auth_set_id) == (found.id, found.auth_sets[0].id)
    assert result.auth_status is AuthStatus.PREAUTHORIZED


def test_each_mismatch_is_reported(ec_key: devicekeys.PrivateKey,
                                   rsa_key: devicekeys.PrivateKey) -> None:
    registry, mender = FakeRegistry(), FakeMender()
    missing = check(registry, mender, ec_key)
    assert not missing.found and not missing.ok and missing.identity is None
    registry.create(REF, "dev-1", (cert(ec_key, expires=NOW - timedelta(days=1)),))
    expired = check(registry, mender, ec_key)
    assert expired.credential is not None and not expired.registry_ok
    assert expired.credential.problem is not None
    assert expired.credential.problem.startswith("expired on 2026-11-24")
    assert expired.mender_id is None and not expired.mender_ok
    registry.update(REF, "dev-1", credentials=(cert(ec_key),))
    mender.device_auth(IDENTITY, devicekeys.public_pem(ec_key))
    pending = check(registry, mender, ec_key)
    assert pending.registry_ok and not pending.mender_ok
    assert pending.auth_status is AuthStatus.PENDING
    wrong = check(registry, mender, rsa_key)
    assert wrong.credential is None and wrong.credentials == 1
    assert wrong.mender_id is not None and wrong.auth_set_id is None
    registry.update(REF, "dev-1", blocked=True)
    blocked = check(registry, mender, ec_key)
    assert blocked.blocked and not blocked.registry_ok


def test_accepted_auth_set_is_admitted(ec_key: devicekeys.PrivateKey) -> None:
    registry, mender = FakeRegistry(), FakeMender()
    registry.create(REF, "dev-1", (cert(ec_key),))
    mender.preauthorize(IDENTITY, devicekeys.public_pem(ec_key))
    assert mender.device_auth(IDENTITY, devicekeys.public_pem(ec_key))
    result = check(registry, mender, ec_key)
    assert result.ok and result.auth_status is AuthStatus.ACCEPTED
