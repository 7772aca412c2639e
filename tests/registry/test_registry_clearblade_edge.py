"""ClearBladeRegistry at its HTTP edge (`responses`): a rotated regional token, and answers
that are not what the API documents, each mapped into the error tree."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import responses

from bridge.errors import ApiError, InputError, PermanentApiError, TransientApiError
from bridge.model import CredentialFormat, RegistryRef
from bridge.registry import ClearBladeRegistry

REF = RegistryRef("proj-1", "us-central1", "reg0")
ADMIN = "https://admin.clearblade.test"
REGIONAL = "https://us-central1.clearblade.test"
ACCOUNT = {"systemKey": "admin-key", "token": "admin-token-0123456789", "url": ADMIN,
           "project": "p1"}
CREDENTIALS_URL = f"{ADMIN}/api/v/1/code/admin-key/getRegistryCredentials"
DEVICES_URL = re.compile(rf"{REGIONAL}/api/v/4/webhook/execute/regional-key/cloudiot_devices.*")


def regional(token: str) -> dict[str, str]:
    return {"systemKey": "regional-key", "serviceAccountToken": token, "url": REGIONAL}


def registry() -> ClearBladeRegistry:
    return ClearBladeRegistry(ACCOUNT, retries=0)


@responses.activate
def test_a_rotated_regional_token_is_fetched_again_once() -> None:
    responses.post(CREDENTIALS_URL, json=regional("old-token-0123456789"))
    responses.post(CREDENTIALS_URL, json=regional("new-token-0123456789"))
    responses.get(DEVICES_URL, json={"error": {"message": "token expired"}}, status=401)
    responses.get(DEVICES_URL, json={"id": "dev0", "numId": "12", "credentials": [
        {"publicKey": {"format": "ES256_PEM", "key": "K"}}]})
    device = registry().get_device(REF, "dev0")
    assert device.credentials[0].format is CredentialFormat.ES256_PEM
    tokens = [c.request.headers["ClearBlade-UserToken"] for c in responses.calls
              if "cloudiot_devices" in c.request.url]
    assert tokens == ["old-token-0123456789", "new-token-0123456789"]


@responses.activate
def test_a_token_refused_twice_is_a_permanent_error_without_the_token() -> None:
    responses.post(CREDENTIALS_URL, json=regional("bad-token-0123456789"))
    responses.get(DEVICES_URL, json={"error": {"message": "denied"}}, status=403)
    with pytest.raises(PermanentApiError) as caught:
        registry().get_device(REF, "dev0")
    assert caught.value.status == 403 and "denied" in str(caught.value)
    assert "bad-token" not in str(caught.value) and "regional-key" not in str(caught.value)
    assert len([c for c in responses.calls if "cloudiot_devices" in c.request.url]) == 2


@pytest.mark.parametrize(("answer", "kind", "words"), [
    ({"body": "<html>gateway</html>", "status": 200}, TransientApiError, "not a JSON object"),
    ({"json": ["a", "list"]}, TransientApiError, "not a JSON object"),
    ({"json": {"id": "dev0", "credentials": {"publicKey": {}}}}, TransientApiError,
     "malformed"),
    ({"json": {"id": "dev0", "metadata": ["x"]}}, TransientApiError, "malformed"),
    ({"body": requests.ConnectionError("reset")}, TransientApiError, "ConnectionError"),
    ({"body": "no", "status": 400}, PermanentApiError, "no"),
])
@responses.activate
def test_unexpected_answers_become_api_errors(answer: dict[str, Any], kind: type[ApiError],
                                              words: str) -> None:
    responses.post(CREDENTIALS_URL, json=regional("token-0123456789"))
    responses.get(DEVICES_URL, **answer)
    with pytest.raises(kind, match=words) as caught:
        registry().get_device(REF, "dev0")
    assert caught.value.service == "registry"


@responses.activate
def test_a_device_list_that_is_not_a_list_is_an_error() -> None:
    responses.post(CREDENTIALS_URL, json=regional("token-0123456789"))
    responses.get(DEVICES_URL, json={"devices": {"id": "dev0"}})
    with pytest.raises(TransientApiError, match="not a list"):
        list(registry().iter_devices(REF))


@pytest.mark.parametrize("device_id", ["", "a/b", "x" * 300, "dev-2?fieldMask=name", "x#frag",
                                       "..", "dev:verb", "dev\x00"])
@responses.activate
def test_a_malformed_device_id_is_refused_before_any_request(device_id: str) -> None:
    with pytest.raises(InputError, match="device id"):
        registry().get_device(REF, device_id)
    with pytest.raises(InputError, match="device id"):
        registry().set_device_config(REF, device_id, b"{}")
    assert len(responses.calls) == 0
