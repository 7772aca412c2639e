"""End to end: a key made by provision-device.sh, its certificate registered in the registry
sandbox with the real google-cloud-iot client, the bridge syncing, then Debian's real Mender
client (with keys/mender-device-identity installed) accepted on its first request, and the
same key's JWT accepted by the registry's publishEvent."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import Settings
from bridge.device import SimulatedDevice
from bridge.devicekeys import KeyKind
from bridge.model import RegistryRef
from tests.keykit.procs import run
from tests.support.mender_client import SUCCESS, need_mender_client, run_bootstrap

ROOT = Path(__file__).resolve().parents[2]
PROVISION = ROOT / "keys" / "provision-device.sh"
IDENTITY = ROOT / "keys" / "mender-device-identity"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    launcher = pytest.importorskip("bridge.sandbox.launcher")
    with launcher.Sandbox(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="module")
def settings(sandbox: Any) -> Settings:
    return Settings.from_toml(sandbox.config_path, {})


def iot_client(endpoint: str | None) -> Any:
    """The real google-cloud-iot client, REST transport, anonymous, pointed at the stand-in."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import iot_v1

    return iot_v1.DeviceManagerClient(credentials=AnonymousCredentials(), transport="rest",
                                      client_options=ClientOptions(api_endpoint=endpoint))


@pytest.fixture(scope="module")
def iot(settings: Settings) -> Any:
    return iot_client(settings.iot_endpoint)


@pytest.fixture(scope="module")
def ref(settings: Settings, iot: Any) -> RegistryRef:
    assert settings.iot_project
    if settings.iot_registries:
        return RegistryRef(settings.iot_project, settings.iot_location,
                           settings.iot_registries[0])
    ref = RegistryRef(settings.iot_project, settings.iot_location, "keykit")
    iot.create_device_registry(parent=f"projects/{ref.project}/locations/{ref.location}",
                               device_registry={"id": ref.registry})
    return ref


def provision(data: Path, kind: str) -> str:
    device_id = f"kk-{kind}-{uuid.uuid4().hex[:10]}"
    result = run(["dash", PROVISION, "--type", kind, "--data-dir", data, "--device-id",
                  device_id], timeout=240)
    assert result.returncode == 0, result.stderr
    return device_id


def register(iot: Any, ref: RegistryRef, device_id: str, cert: Path, fmt: str) -> None:
    from google.cloud import iot_v1

    device = iot_v1.Device(id=device_id, credentials=[iot_v1.DeviceCredential(
        public_key=iot_v1.PublicKeyCredential(format=getattr(iot_v1.PublicKeyFormat, fmt),
                                              key=cert.read_text()))])
    created = iot.create_device(parent=ref.path, device=device)
    assert created.id == device_id and created.num_id


def sync(settings: Settings, ref: RegistryRef, device_id: str) -> None:
    from bridge.factory import build_service

    with build_service(settings) as service:
        report = service.sync_device(ref, device_id)
    assert not report.failed, report.to_dict()
    assert "done" in [o.status for o in report.outcomes], report.to_dict()


def mender_bootstrap(sandbox: Any, data: Path) -> tuple[int, str]:
    """`mender bootstrap` on the provisioned data dir, with keys/mender-device-identity."""
    return run_bootstrap(sandbox.mender_url, sandbox.ca_cert, data, IDENTITY.read_bytes(),
                         env={"MENDER_BRIDGE_DEVICE_ID_FILE": str(data / "device-id")},
                         device_type="keykit-test")


@pytest.mark.mender_client
@pytest.mark.parametrize(("kind", "fmt"), [("ec", "ES256_X509_PEM"), ("rsa", "RSA_X509_PEM")])
def test_one_key_admitted_by_both_clouds(kind: str, fmt: str, sandbox: Any, settings: Settings,
                                         iot: Any, ref: RegistryRef, tmp_path: Path) -> None:
    need_mender_client()
    data = tmp_path / "mender"
    device_id = provision(data, kind)
    key = data / "mender-agent.pem"
    key_before = key.read_bytes()
    register(iot, ref, device_id, data / "device-cert.pem", fmt)
    sync(settings, ref, device_id)

    code, log = mender_bootstrap(sandbox, data)
    assert code == 0, log
    assert SUCCESS in log
    assert key.read_bytes() == key_before  # the client used the provisioned key as it is

    device = SimulatedDevice.from_key_file(key, device_id)
    assert device.publish_event(sandbox.registry_url, ref, b"temp=21") == 200

    result = CliRunner().invoke(cli, ["keys", "check", "--device", device_id, "--key", str(key),
                                      "--config", str(sandbox.config_path)])
    assert result.exit_code == 0, result.output
    assert f"credential 1 of 1 ({fmt}) matches" in result.stdout
    assert "is accepted" in result.stdout


@pytest.mark.mender_client
def test_unregistered_key_is_refused_by_both(sandbox: Any, settings: Settings, iot: Any,
                                             ref: RegistryRef, tmp_path: Path) -> None:
    need_mender_client()
    registered, stranger = tmp_path / "registered", tmp_path / "stranger"
    device_id = provision(registered, "ec")
    register(iot, ref, device_id, registered / "device-cert.pem", "ES256_X509_PEM")
    sync(settings, ref, device_id)
    # Same identity, another key: Mender leaves it pending, the registry refuses its JWT.
    made = run(["dash", PROVISION, "--data-dir", stranger, "--device-id", device_id])
    assert made.returncode == 0, made.stderr
    code, log = mender_bootstrap(sandbox, stranger)
    assert code == 1, log
    assert SUCCESS not in log
    impostor = SimulatedDevice.from_key_file(stranger / "mender-agent.pem", device_id)
    assert impostor.publish_event(sandbox.registry_url, ref, b"x") == 401
    result = CliRunner().invoke(cli, ["keys", "check", "--device", device_id, "--key",
                                      str(stranger / "device-cert.pem"), "--config",
                                      str(sandbox.config_path), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["registry"]["ok"] is False and report["mender"]["ok"] is False
    assert "is pending" in report["mender"]["detail"]


@pytest.fixture(scope="module")
def registry_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The registry stand-in alone (no Mender): its URL and a real client bound to it."""
    registry_app = pytest.importorskip("bridge.sandbox.registry")
    from bridge.sandbox.server import serve

    app = registry_app.create_app(tmp_path_factory.mktemp("registry"), project="kk-project",
                                  registries=["fleet"])
    server = serve(app)
    try:
        yield server.url, iot_client(server.url)
    finally:
        server.stop()
        app.extensions["registry_sandbox"].deliverer.close()


@pytest.mark.parametrize(("kind", "fmt", "pub_fmt"), [
    ("ec", "ES256_X509_PEM", "ES256_PEM"),
    ("rsa", "RSA_X509_PEM", "RSA_PEM"),
])
def test_registry_sandbox_accepts_the_script_credentials(
    kind: str, fmt: str, pub_fmt: str, registry_only: tuple[str, Any], tmp_path: Path,
) -> None:
    url, iot = registry_only
    ref = RegistryRef("kk-project", "us-central1", "fleet")
    data = tmp_path / "kit"
    device_id = provision(data, kind)
    register(iot, ref, device_id, data / "device-cert.pem", fmt)
    device = SimulatedDevice.from_key_file(data / "mender-agent.pem", device_id)
    assert device.publish_event(url, ref, b"hello") == 200
    # The bare public key registers too (as a second device), and its JWT is accepted.
    register(iot, ref, device_id + "-pub", data / "device-public.pem", pub_fmt)
    device.device_id = device_id + "-pub"
    assert device.publish_event(url, ref, b"hello") == 200
    other = SimulatedDevice.generate(device_id, "ec")
    assert other.publish_event(url, ref, b"hello") == 401


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_simulated_device_is_refused_then_admitted(kind: KeyKind, sandbox: Any, settings: Settings,
                                                  iot: Any, ref: RegistryRef,
                                                  tmp_path: Path) -> None:
    device_id = provision(tmp_path, kind)
    device = SimulatedDevice.from_key_file(tmp_path / "mender-agent.pem", device_id)
    ca = str(sandbox.ca_cert) if sandbox.ca_cert else None
    fmt = {"ec": "ES256_X509_PEM", "rsa": "RSA_X509_PEM"}[kind]
    register(iot, ref, device_id, tmp_path / "device-cert.pem", fmt)
    stranger = SimulatedDevice.generate(device_id, kind)  # same identity, unregistered key
    assert stranger.authenticate(sandbox.mender_url, ca) is None
    sync(settings, ref, device_id)
    token = device.authenticate(sandbox.mender_url, ca)
    assert token is not None and token.count(".") == 2
    assert stranger.authenticate(sandbox.mender_url, ca) is None


def clearblade_registry(url: str, ref: RegistryRef) -> tuple[str, str, str]:
    """(regional URL, system key, token) of a registry, as ClearBlade's console shows them."""
    import requests

    account = requests.get(f"{url}/_sandbox/clearblade-service-account", timeout=10).json()
    answer = requests.post(
        f"{url}/api/v/1/code/{account['systemKey']}/getRegistryCredentials", timeout=10,
        headers={"ClearBlade-UserToken": account["token"]},
        json={"project": ref.project, "region": ref.location, "registry": ref.registry})
    assert answer.status_code == 200, answer.text
    regional = answer.json()
    return regional["url"], regional["systemKey"], regional["serviceAccountToken"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("maker", ["script", "cli"])
def test_the_printed_command_registers_the_device(maker: str, registry_only: tuple[str, Any],
                                                  tmp_path: Path) -> None:
    """Pasted as printed, with the real curl, it creates the device in the registry stand-in's
    ClearBlade API with the kit's certificate; read back through the Google-style API."""
    url, iot = registry_only
    ref = RegistryRef("kk-project", "us-central1", "fleet")
    base, system_key, token = clearblade_registry(url, ref)
    device_id = f"kk-{maker}-{uuid.uuid4().hex[:10]}"
    data = tmp_path / "kit"
    if maker == "script":
        made = run(["dash", PROVISION, "--data-dir", data, "--device-id", device_id, "--url",
                    base, "--system-key", system_key], timeout=240)
        assert made.returncode == 0, made.stderr
        output = made.stdout
    else:
        result = CliRunner().invoke(cli, ["keys", "generate", "--out", str(data), "--device-id",
                                          device_id, "--url", base, "--system-key", system_key])
        assert result.exit_code == 0, result.output
        output = result.stdout
    line = output.splitlines()[-1].removeprefix("  ")
    pasted = run(["sh", "-c", line], env={"PATH": os.environ["PATH"],
                                          "CLEARBLADE_TOKEN": token})
    assert pasted.returncode == 0, pasted.stderr
    device = iot.get_device(name=f"{ref.path}/devices/{device_id}")
    assert [c.public_key.key for c in device.credentials] == [
        (data / "device-cert.pem").read_text()]
    assert device.credentials[0].public_key.format.name == "ES256_X509_PEM"
