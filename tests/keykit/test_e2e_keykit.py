"""End to end: a key made by provision-device.sh, its certificate registered in the registry
sandbox with the real google-cloud-iot client, the bridge syncing, then Debian's real Mender
client (with keys/mender-device-identity installed) accepted on its first request, and the
same key's JWT accepted by the registry's publishEvent."""

from __future__ import annotations

import json
import subprocess
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


@pytest.fixture(scope="module")
def iot(settings: Settings) -> Any:
    from bridge.registry.google import build_client

    return build_client(settings.iot_endpoint, "anonymous")


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
    result = subprocess.run(["dash", str(PROVISION), "--type", kind, "--data-dir", str(data),
                             "--device-id", device_id], capture_output=True, text=True,
                            check=False, timeout=240)
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
    from bridge.factory import build_bridge

    report = build_bridge(settings).sync_device(ref, device_id)
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
    subprocess.run(["dash", str(PROVISION), "--data-dir", str(stranger), "--device-id",
                    device_id], check=True, capture_output=True)
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
    from bridge.registry.google import build_client
    from bridge.sandbox.server import serve

    app = registry_app.create_app(tmp_path_factory.mktemp("registry"), project="kk-project",
                                  registries=["fleet"])
    server = serve(app)
    try:
        yield server.url, build_client(server.url, "anonymous")
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
