"""bridge.device.SimulatedDevice: signatures checked independently with `cryptography`,
HTTP shapes checked with `responses` at the edge."""

from __future__ import annotations

import base64
import json

import jwt as pyjwt
import pytest
import requests
import responses
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from bridge import devicekeys
from bridge.device import SimulatedDevice
from bridge.errors import PermanentApiError, TransientApiError
from bridge.model import RegistryRef

MENDER = "https://mender.test"
AUTH_URL = MENDER + "/api/devices/v1/authentication/auth_requests"
REGISTRY = "http://127.0.0.1:9"
REF = RegistryRef("p1", "us-central1", "fleet")


def verify(public_pem: str, body: bytes, signature_b64: str) -> None:
    """Verify X-MEN-Signature the way Mender's deviceauth does, with cryptography alone."""
    key = serialization.load_pem_public_key(public_pem.encode())
    signature = base64.b64decode(signature_b64, validate=True)
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(signature, body)


@pytest.fixture(scope="module", params=["ec", "rsa", "ed25519"])
def device(request: pytest.FixtureRequest) -> SimulatedDevice:
    if request.param == "ed25519":
        return SimulatedDevice(ed25519.Ed25519PrivateKey.generate(), "dev-ed")
    return SimulatedDevice.generate(f"dev-{request.param}", request.param)


def test_signature_verifies_and_fails_on_a_changed_body(device: SimulatedDevice) -> None:
    body = device.auth_request_body()
    signature = device.sign(body)
    verify(device.public_pem, body, signature)
    with pytest.raises(InvalidSignature):
        verify(device.public_pem, body + b" ", signature)


def test_ecdsa_signature_is_der_not_raw() -> None:
    device = SimulatedDevice.generate("dev-1", "ec")
    raw = base64.b64decode(device.sign(b"x"))
    assert raw[0] == 0x30 and raw[1] == len(raw) - 2  # DER SEQUENCE{r, s}


def test_auth_request_body_has_the_mender_client_shape(device: SimulatedDevice) -> None:
    body = json.loads(device.auth_request_body({"b": "2", "a": "<1>"}))
    assert set(body) == {"id_data", "pubkey", "tenant_token"}
    assert body["tenant_token"] == ""
    assert body["id_data"] == '{"a":"\\u003c1\\u003e","b":"2"}'  # Go's json.Marshal
    assert body["pubkey"] == device.public_pem
    assert body["pubkey"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert json.loads(json.loads(device.auth_request_body())["id_data"]) == {
        "google_iot_id": device.device_id}


@responses.activate
def test_authenticate_returns_the_token_on_200() -> None:
    device = SimulatedDevice.generate("dev-1")
    seen: list[requests.PreparedRequest] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        seen.append(request)
        return 200, {"Content-Type": "application/jwt"}, "header.claims.sig"

    responses.add_callback(responses.POST, AUTH_URL, callback=answer)
    assert device.authenticate(MENDER + "/") == "header.claims.sig"
    request = seen[0]
    assert isinstance(request.body, bytes)
    verify(device.public_pem, request.body, request.headers["X-MEN-Signature"])
    assert request.headers["Content-Type"] == "application/json"


@responses.activate
def test_authenticate_returns_none_on_401_and_raises_otherwise() -> None:
    device = SimulatedDevice.generate("dev-1")
    responses.add(responses.POST, AUTH_URL, status=401, json={"error": "dev auth: unauthorized"})
    assert device.authenticate(MENDER) is None
    responses.replace(responses.POST, AUTH_URL, status=503, json={"error": "unavailable"})
    with pytest.raises(TransientApiError, match="status 503"):
        device.authenticate(MENDER)
    responses.replace(responses.POST, AUTH_URL, status=400, json={"error": "bad pubkey"})
    with pytest.raises(PermanentApiError, match="bad pubkey"):
        device.authenticate(MENDER)
    responses.replace(responses.POST, AUTH_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(TransientApiError, match="ConnectionError"):
        device.authenticate(MENDER)


@responses.activate
@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_publish_event_sends_a_device_jwt_and_base64_payload(kind: devicekeys.KeyKind) -> None:
    device = SimulatedDevice.generate("dev-1", kind)
    url = f"{REGISTRY}/v1/{REF.path}/devices/dev-1:publishEvent"
    seen: list[requests.PreparedRequest] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        seen.append(request)
        return 200, {}, "{}"

    responses.add_callback(responses.POST, url, callback=answer)
    assert device.publish_event(REGISTRY, REF, b"\x00temp=21") == 200
    request = seen[0]
    assert json.loads(request.body or b"") == {"binaryData": base64.b64encode(
        b"\x00temp=21").decode()}
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    alg = "ES256" if kind == "ec" else "RS256"
    claims = pyjwt.decode(token, device.key.public_key(), algorithms=[alg], audience="p1")
    assert claims["exp"] - claims["iat"] == 3600


def test_repr_hides_the_key() -> None:
    device = SimulatedDevice.generate("dev-1")
    assert "PRIVATE" not in repr(device) and "key=" not in repr(device)
