"""End to end: ClearBladeRegistry against the sandbox's ClearBlade-style routes over HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from registry_support import LOCATION, PARENT, PROJECT, REGISTRY, Sandbox, key_for

from bridge.config import Settings
from bridge.errors import ConfigError, NotFound, PermanentApiError, TransientApiError
from bridge.factory import registry as from_settings
from bridge.model import CredentialFormat, RegistryRef
from bridge.registry import ClearBladeRegistry, GoogleRegistry

pytestmark = pytest.mark.e2e
REF = RegistryRef(PROJECT, LOCATION, REGISTRY)


class CountingSession(requests.Session):
    """Counts requests per API name (last path segment) to check the credential cache."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        api = str(url).split("?")[0].rsplit("/", 1)[-1]
        self.calls[api] = self.calls.get(api, 0) + 1
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def account(sandbox: Sandbox, tmp_path: Path) -> Path:
    path = tmp_path / "clearblade.json"
    answer = requests.get(f"{sandbox.url}/_sandbox/clearblade-service-account", timeout=5)
    path.write_text(answer.text, encoding="utf-8")
    return path


def create(sandbox: Sandbox, device_id: str, formats: list[str], **extra: Any) -> str:
    body = {"id": device_id, "credentials": [
        {"publicKey": {"format": f, "key": key_for(f)}, "expirationTime": "2032-01-01T00:00:00Z"}
        for f in formats], **extra}
    answer = requests.post(f"{sandbox.url}/v1/{PARENT}/devices", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["numId"])


def test_reads_devices_with_one_credentials_call_per_registry(sandbox: Sandbox,
                                                               account: Path) -> None:
    num_id = create(sandbox, "dev-a", ["RSA_X509_PEM", "ES256_PEM"], metadata={"site": "x1"})
    for i in range(4):
        create(sandbox, f"dev-{i}", ["ES256_X509_PEM"], blocked=i == 2)
    session = CountingSession()
    registry = ClearBladeRegistry(account, page_size=2, session=session)
    device = registry.get_device(REF, "dev-a")
    assert [c.format for c in device.credentials] == [CredentialFormat.RSA_X509_PEM,
                                                      CredentialFormat.ES256_PEM]
    assert device.credentials[0].expires_at is not None
    assert device.credentials[0].expires_at.year == 2032
    assert device.metadata == {"site": "x1"} and device.num_id == num_id
    assert registry.get_device(REF, num_id).id == "dev-a"
    devices = list(registry.iter_devices(REF))
    assert [d.id for d in devices] == ["dev-a", "dev-0", "dev-1", "dev-2", "dev-3"]
    assert [d.blocked for d in devices] == [False, False, False, True, False]
    assert all(d.credentials for d in devices)
    assert session.calls == {"getRegistryCredentials": 1, "cloudiot_devices": 5}


def test_registries_config_and_errors(sandbox: Sandbox, account: Path) -> None:
    create(sandbox, "dev-c", ["RSA_PEM"])
    registry = ClearBladeRegistry(account, retries=1, backoff=0.0)
    assert registry.list_registries(PROJECT, LOCATION) == [REF]
    registry.set_device_config(REF, "dev-c", b"\x00hello")
    config = requests.get(f"{sandbox.url}/v1/{PARENT}/devices/dev-c", timeout=5).json()["config"]
    assert config["version"] == "2" and base64.b64decode(config["binaryData"]) == b"\x00hello"
    with pytest.raises(NotFound):
        registry.get_device(REF, "missing")
    with pytest.raises(NotFound):
        registry.get_device(RegistryRef(PROJECT, LOCATION, "no-such-registry"), "dev-c")
    sandbox.faults.update({"error_rate": 1.0, "error_statuses": [503]})
    with pytest.raises(TransientApiError) as caught:
        registry.get_device(REF, "dev-c")
    system_key = json.loads(account.read_text())["systemKey"]
    assert caught.value.status == 503 and system_key not in str(caught.value)


def test_a_wrong_token_is_a_permanent_error(account: Path) -> None:
    data = json.loads(account.read_text())
    registry = ClearBladeRegistry({**data, "token": "wrong"})
    with pytest.raises(PermanentApiError) as caught:
        registry.get_device(REF, "dev")
    assert caught.value.status == 401 and "wrong" not in str(caught.value)


def test_configuration_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        ClearBladeRegistry(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match="token"):
        ClearBladeRegistry({"systemKey": "k", "url": "https://x", "project": "p"})
    with pytest.raises(ConfigError, match="plain http"):
        ClearBladeRegistry({"systemKey": "k", "token": "t", "url": "http://example.com",
                            "project": "p"})


def test_from_settings_picks_the_backend(sandbox: Sandbox, account: Path) -> None:
    common = {"mender_token": "t", "iot_project": PROJECT}
    google = from_settings(Settings.from_mapping({**common, "iot_endpoint": sandbox.url,
                                                  "iot_credentials": "anonymous"}))
    clearblade = from_settings(Settings.from_mapping({
        **common, "registry_backend": "clearblade", "clearblade_configuration": str(account)}))
    assert isinstance(google, GoogleRegistry) and isinstance(clearblade, ClearBladeRegistry)
    create(sandbox, "dev-s", ["ES256_PEM"])
    assert google.get_device(REF, "dev-s") == clearblade.get_device(REF, "dev-s")


@pytest.mark.slow
def test_a_clearblade_fleet_reaches_the_mender_stand_in(tmp_path: Path) -> None:
    """The whole path on ClearBlade: its routes → the bridge (built from settings) → Mender."""
    from bridge.factory import build_service
    from bridge.sandbox.launcher import Sandbox as Stack

    with Stack(tmp_path / "stack", tls=False) as stack:
        account = tmp_path / "clearblade.json"
        account.write_text(requests.get(f"{stack.registry_url}/_sandbox/clearblade-service-"
                                        "account", timeout=5).text, encoding="utf-8")
        settings = Settings.from_toml(stack.config_path, {
            "REGISTRY_BACKEND": "clearblade", "CLEARBLADE_CONFIGURATION": str(account)})
        [ref] = [RegistryRef(settings.iot_project or "", settings.iot_location, name)
                 for name in settings.iot_registries]
        for device_id, fmt in (("cb-rsa", "RSA_X509_PEM"), ("cb-ec", "ES256_PEM")):
            answer = requests.post(f"{stack.registry_url}/v1/{ref.path}/devices", timeout=5,
                                   json={"id": device_id, "credentials": [
                                       {"publicKey": {"format": fmt, "key": key_for(fmt)}}]})
            assert answer.status_code == 200, answer.text
        bridge = build_service(settings)
        assert isinstance(bridge.registry, ClearBladeRegistry)
        report = bridge.backfill([ref])
        assert not report.failed and report.summary().get("done") == 2
        listed = requests.get(f"{stack.mender_url}/api/management/v2/devauth/devices",
                              headers={"Authorization": f"Bearer {stack.token.reveal()}"},
                              timeout=5).json()
        identities = {d["identity_data"]["google_iot_id"]: [s["status"] for s in d["auth_sets"]]
                      for d in listed}
        assert identities == {"cb-rsa": ["preauthorized"], "cb-ec": ["preauthorized"]}
        assert bridge.backfill([ref]).summary().get("done", 0) == 0  # already in sync
