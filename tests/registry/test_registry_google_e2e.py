"""End to end: the real google-cloud-iot client writes devices into the registry sandbox over
HTTP, and GoogleRegistry reads them back in all four credential formats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import iot_v1
from google.protobuf import field_mask_pb2, timestamp_pb2
from registry_support import (
    LOCATION,
    PARENT,
    PROJECT,
    REGISTRY,
    Sandbox,
    certificate_pem,
    key_for,
    private_key,
)

from bridge.errors import InputError, NotFound, TransientApiError
from bridge.model import CredentialFormat, RegistryRef
from bridge.registry import GoogleRegistry

pytestmark = pytest.mark.e2e
REF = RegistryRef(PROJECT, LOCATION, REGISTRY)
EXPIRY = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def cred(fmt: str, index: int = 0, expires: datetime | None = None) -> Any:
    kwargs: dict[str, Any] = {}
    if expires:
        kwargs["expiration_time"] = timestamp_pb2.Timestamp(seconds=int(expires.timestamp()))
    return iot_v1.DeviceCredential(
        public_key=iot_v1.PublicKeyCredential(format=iot_v1.PublicKeyFormat[fmt],
                                              key=key_for(fmt, index)), **kwargs)


def adapter(sandbox: Sandbox, **options: Any) -> GoogleRegistry:
    return GoogleRegistry(endpoint=sandbox.url, credentials="anonymous", timeout=5, **options)


def test_four_formats_written_by_the_client_read_back_by_the_adapter(
        sandbox: Sandbox, iot_client: Any) -> None:
    made = iot_client.create_device(parent=PARENT, device=iot_v1.Device(
        id="dev-rsa", credentials=[cred("RSA_PEM"), cred("RSA_X509_PEM", 1, EXPIRY)],
        metadata={"serial": "S-1"}))
    iot_client.create_device(parent=PARENT, device=iot_v1.Device(
        id="dev-ec", credentials=[cred("ES256_PEM"), cred("ES256_X509_PEM", 1)]))
    assert made.name == f"{PARENT}/devices/{made.num_id}"  # names end in the numeric id

    registry = adapter(sandbox)
    rsa_dev = registry.get_device(REF, "dev-rsa")
    assert [c.format for c in rsa_dev.credentials] == [CredentialFormat.RSA_PEM,
                                                       CredentialFormat.RSA_X509_PEM]
    assert rsa_dev.credentials[0].expires_at is None  # the 1970 "unset" value
    assert rsa_dev.credentials[1].expires_at == EXPIRY
    assert rsa_dev.credentials[0].key == key_for("RSA_PEM")
    assert rsa_dev.metadata == {"serial": "S-1"} and rsa_dev.blocked is False
    assert rsa_dev.num_id == str(made.num_id)
    by_num = registry.get_device(REF, str(made.num_id))
    assert by_num.id == "dev-rsa" and by_num.credentials == rsa_dev.credentials
    ec_dev = registry.get_device(REF, "dev-ec")
    assert [c.format for c in ec_dev.credentials] == [CredentialFormat.ES256_PEM,
                                                      CredentialFormat.ES256_X509_PEM]
    assert "BEGIN CERTIFICATE" in ec_dev.credentials[1].key


def test_listing_pages_and_field_masks(sandbox: Sandbox, iot_client: Any) -> None:
    for i in range(5):
        iot_client.create_device(parent=PARENT, device=iot_v1.Device(
            id=f"dev{i}", credentials=[cred("ES256_PEM")], blocked=(i == 3)))
    bare = list(iot_client.list_devices(parent=PARENT))
    assert [d.id for d in bare] == [f"dev{i}" for i in range(5)]
    assert all(not d.credentials and d.num_id for d in bare)  # only id and numId by default

    first = iot_client.list_devices(request={"parent": PARENT, "page_size": 2})
    assert len(first.devices) == 2 and first.next_page_token
    masked = list(iot_client.list_devices(request={
        "parent": PARENT, "page_size": 2,
        "field_mask": field_mask_pb2.FieldMask(paths=["credentials", "blocked"])}))
    assert len(masked) == 5 and all(len(d.credentials) == 1 for d in masked)
    assert [d.blocked for d in masked] == [False, False, False, True, False]

    devices = list(adapter(sandbox, page_size=2).iter_devices(REF))
    assert [d.id for d in devices] == [f"dev{i}" for i in range(5)]
    assert all(d.credentials[0].format is CredentialFormat.ES256_PEM for d in devices)
    assert [d.blocked for d in devices] == [False, False, False, True, False]


def test_patch_then_delete(sandbox: Sandbox, iot_client: Any) -> None:
    iot_client.create_device(parent=PARENT, device=iot_v1.Device(
        id="dev-p", credentials=[cred("RSA_PEM")], metadata={"keep": "yes"}))
    updated = iot_client.update_device(
        device=iot_v1.Device(name=f"{PARENT}/devices/dev-p", blocked=True,
                             credentials=[cred("ES256_PEM"), cred("RSA_PEM")]),
        update_mask=field_mask_pb2.FieldMask(paths=["credentials", "blocked"]))
    assert updated.blocked and len(updated.credentials) == 2
    registry = adapter(sandbox)
    seen = registry.get_device(REF, "dev-p")
    assert seen.blocked and seen.metadata == {"keep": "yes"}
    assert [c.format for c in seen.credentials] == [CredentialFormat.ES256_PEM,
                                                    CredentialFormat.RSA_PEM]
    with pytest.raises(gexc.BadRequest):  # id is immutable
        iot_client.update_device(device=iot_v1.Device(name=f"{PARENT}/devices/dev-p", id="x"),
                                 update_mask=field_mask_pb2.FieldMask(paths=["id"]))
    iot_client.delete_device(name=f"{PARENT}/devices/dev-p")
    with pytest.raises(NotFound) as caught:
        registry.get_device(REF, "dev-p")
    assert caught.value.service == "registry" and caught.value.status == 404


@pytest.mark.parametrize(("credentials", "reason"), [
    ([cred("RSA_PEM", i) for i in range(3)] + [cred("ES256_PEM")], "No more than 3"),
    ([iot_v1.DeviceCredential(public_key=iot_v1.PublicKeyCredential(
        format=iot_v1.PublicKeyFormat.RSA_PEM, key=key_for("ES256_PEM")))], "not an RSA key"),
    ([iot_v1.DeviceCredential(public_key=iot_v1.PublicKeyCredential(
        format=iot_v1.PublicKeyFormat.ES256_PEM, key=key_for("ES256_X509_PEM")))],
     "not a PEM public key"),
    ([iot_v1.DeviceCredential(public_key=iot_v1.PublicKeyCredential(
        format=iot_v1.PublicKeyFormat.RSA_X509_PEM, key="garbage"))], "could not be parsed"),
    ([iot_v1.DeviceCredential(public_key=iot_v1.PublicKeyCredential(key=key_for("RSA_PEM")))],
     "unspecified"),
])
def test_invalid_credentials_are_refused(shared_client: Any, credentials: list[Any],
                                         reason: str) -> None:
    with pytest.raises(gexc.BadRequest, match=reason):
        shared_client.create_device(parent=PARENT, device=iot_v1.Device(id="bad",
                                                                     credentials=credentials))


def test_string_enums_accepted_and_duplicate_refused(shared_sandbox: Sandbox) -> None:
    sandbox = shared_sandbox
    body = {"id": "dev-s", "credentials": [{"publicKey": {"format": "ES256_X509_PEM",
                                                          "key": key_for("ES256_X509_PEM")}}]}
    url = f"{sandbox.url}/v1/{PARENT}/devices"
    made = requests.post(url, json=body, timeout=5)
    assert made.status_code == 200
    assert made.json()["credentials"][0]["publicKey"]["format"] == "ES256_X509_PEM"
    assert isinstance(made.json()["numId"], str)
    again = requests.post(url, json=body, timeout=5)
    assert again.status_code == 409 and again.json()["error"]["status"] == "ALREADY_EXISTS"


def test_registries_and_device_config(sandbox: Sandbox, iot_client: Any) -> None:
    iot_client.create_device_registry(parent=f"projects/{PROJECT}/locations/{LOCATION}",
                                      device_registry=iot_v1.DeviceRegistry(id="reg1"))
    iot_client.create_device(parent=PARENT, device=iot_v1.Device(id="dev-c"))
    registry = adapter(sandbox)
    assert registry.list_registries(PROJECT, LOCATION) == [
        REF, RegistryRef(PROJECT, LOCATION, "reg1")]
    registry.set_device_config(REF, "dev-c", b"update-available")
    config = iot_client.get_device(name=f"{PARENT}/devices/dev-c").config
    assert config.version == 2 and config.binary_data == b"update-available"
    registry.close()


def test_errors_are_mapped(sandbox: Sandbox, start_sandbox: Any) -> None:
    registry = adapter(sandbox, retry_deadline=0.5)
    with pytest.raises(NotFound):
        registry.get_device(RegistryRef(PROJECT, LOCATION, "nope"), "dev")
    with pytest.raises(InputError):  # refused before any request: not a Cloud IoT id
        registry.get_device(REF, "a/b")
    sandbox.faults.update({"error_rate": 1.0, "error_statuses": [503]})
    with pytest.raises(TransientApiError) as caught:
        registry.get_device(REF, "dev")
    assert "gave up retrying" in str(caught.value)
    sandbox.faults.update({"error_rate": 0.0})
    sandbox.stop()
    with pytest.raises(TransientApiError):
        list(registry.iter_devices(REF))


def test_a_restart_keeps_devices(start_sandbox: Any, tmp_path: Any) -> None:
    first = start_sandbox(tmp_path / "kept")
    made = requests.post(f"{first.url}/v1/{PARENT}/devices", json={"id": "dev-k"}, timeout=5)
    first.stop()
    second = start_sandbox(tmp_path / "kept")
    found = adapter(second).get_device(REF, "dev-k")
    assert found.num_id == made.json()["numId"]


def test_a_registry_with_certificates_admits_only_certificates_it_signed(
        shared_client: Any) -> None:
    iot_client = shared_client
    ca_key = private_key("ec", 9)
    ca_pem = certificate_pem(ca_key, issuer="device")  # self-signed CA named like its subject
    iot_client.create_device_registry(
        parent=f"projects/{PROJECT}/locations/{LOCATION}",
        device_registry=iot_v1.DeviceRegistry(id="reg-ca", credentials=[
            iot_v1.RegistryCredential(public_key_certificate=iot_v1.PublicKeyCertificate(
                format=iot_v1.PublicKeyCertificateFormat.X509_CERTIFICATE_PEM,
                certificate=ca_pem))]))
    parent = f"projects/{PROJECT}/locations/{LOCATION}/registries/reg-ca"

    def device(key_text: str, fmt: str) -> Any:
        return iot_v1.Device(id="dev-ca", credentials=[iot_v1.DeviceCredential(
            public_key=iot_v1.PublicKeyCredential(format=iot_v1.PublicKeyFormat[fmt],
                                                  key=key_text))])

    with pytest.raises(gexc.BadRequest, match=r"must be an X\.509"):
        iot_client.create_device(parent=parent, device=device(key_for("ES256_PEM"),
                                                              "ES256_PEM"))
    with pytest.raises(gexc.BadRequest, match="not signed by a registry"):
        iot_client.create_device(parent=parent, device=device(key_for("ES256_X509_PEM"),
                                                              "ES256_X509_PEM"))
    signed = certificate_pem(private_key("ec", 3), ca_key, issuer="device")
    made = iot_client.create_device(parent=parent, device=device(signed, "ES256_X509_PEM"))
    assert made.credentials[0].public_key.key == signed


def test_dropped_connections_are_retried(sandbox: Sandbox, iot_client: Any) -> None:
    iot_client.create_device(parent=PARENT, device=iot_v1.Device(
        id="dev-d", credentials=[cred("ES256_PEM")]))
    registry = adapter(sandbox)
    # This seed drops requests 1, 4, 5 and 6: the first get and the list meet resets.
    sandbox.faults.update({"drop_rate": 0.5, "seed": 1})
    try:
        found = [registry.get_device(REF, "dev-d") for _ in range(2)]
        listed = [d.id for d in registry.iter_devices(REF)]
    finally:
        sandbox.faults.update({"drop_rate": 0.0})
    assert [d.id for d in found] == ["dev-d", "dev-d"] and listed == ["dev-d"]


@pytest.mark.parametrize("expiry", ["next tuesday", 12])
def test_a_malformed_expiration_time_is_refused(shared_sandbox: Sandbox, expiry: Any) -> None:
    body = {"id": "dev-x", "credentials": [{"publicKey": {"format": "ES256_PEM",
                                                          "key": key_for("ES256_PEM")},
                                            "expirationTime": expiry}]}
    answer = requests.post(f"{shared_sandbox.url}/v1/{PARENT}/devices", json=body, timeout=5)
    assert answer.status_code == 400
    assert "expirationTime" in answer.json()["error"]["message"]
