"""`mender-bridge keys …`: inspect a credential as the bridge would send it, make a device key
kit, mint its IoT JWT, and check a key against both clouds.

`--json` prints one object per command, with `schema_version` (keys/README.md documents each
schema). Credentials are numbered from 1. Exit codes: 0 done, 1 the check found a problem,
2 usage or key error, 3 a key already exists (nothing changed), as provision-device.sh.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from bridge import keys as keylib
from bridge.cli import BridgeFailure
from bridge.identity import canonical_json
from bridge.model import AuthStatus, CredentialFormat, PublicKey

if TYPE_CHECKING:
    from bridge.keycheck import KeyCheck

FORMATS = [f.value for f in CredentialFormat]
SCHEMA_VERSION = 1


class KeyExists(BridgeFailure):
    """A key is already there: exit 3, the same as provision-device.sh."""

    exit_code = 3


def key_json(key: PublicKey) -> dict[str, Any]:
    """The key fields every keys command prints: `bits` and `curve` always (null when they do
    not apply), the fingerprint with its `sha256:` prefix as in the text output."""
    return {"type": key.type.value, "bits": key.bits, "curve": key.curve if key.curve else None,
            "fingerprint": f"sha256:{key.fingerprint}"}


def echo_json(obj: dict[str, Any]) -> None:
    click.echo(json.dumps({"schema_version": SCHEMA_VERSION, **obj}, indent=2))


@click.group()
def keys() -> None:
    """Device keys: make a device key kit, mint its IoT JWT, check it against both clouds, and
    inspect a credential as the bridge would send it to Mender."""


@keys.command()
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              metavar="[" + "|".join(FORMATS) + "]",
              help="Registry format label the credential is registered with; checked "
                   "against the content.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: schema_version, type, bits, curve, fingerprint, pubkey.")
def inspect(file: str, fmt: str | None, as_json: bool) -> None:
    """Show what the bridge would send to Mender for the public key or certificate in FILE
    (`-` for standard input): the normalized PEM, key type, size or curve, and fingerprint.
    A key the bridge would refuse prints the reason and exits 2."""
    from bridge.keykit import read_key_file

    data = (sys.stdin.buffer.read(keylib.MAX_INPUT + 1) if file == "-"
            else read_key_file(file, keylib.MAX_INPUT))
    # The clock is read here, at the entry point, so that a certificate the bridge would refuse
    # as expired or not yet valid is refused here too.
    key = keylib.normalize(data, fmt, now=datetime.now(UTC))
    if as_json:
        echo_json({**key_json(key), "pubkey": key.pem})
        return
    size = f"{key.bits} bits" if key.curve is None else key.curve
    click.echo(f"type:        {key.type.value} ({size})")
    click.echo(f"fingerprint: sha256:{key.fingerprint}")
    click.echo(key.pem, nl=False)


@keys.command()
@click.option("--type", "kind", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True,
              help="EC P-256 (ES256) or RSA 3072 (RS256).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Directory for the key, public key, certificate and id "
                                      "(created 0700).")
@click.option("--device-id", help="Registry device id [default: g-<contents of /etc/machine-id>].")
@click.option("--force", is_flag=True, help="Replace an existing key.")
@click.option("--url", help="The registry's regional API URL, for the printed command "
                            "[default: $CLEARBLADE_URL].")
@click.option("--system-key", help="The registry's system key, for the printed command "
                                   "[default: $CLEARBLADE_SYSTEM_KEY].")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: schema_version, device_id, files, formats, key, register.")
def generate(kind: str, out_dir: str, device_id: str | None, force: bool, url: str | None,
             system_key: str | None, as_json: bool) -> None:
    """Make a device key kit, as keys/provision-device.sh does on a device: mender-agent.pem
    (0600; SEC1 or PKCS#1, as the Mender client reads it), device-public.pem, device-cert.pem
    (self-signed, to register) and device-id, and print the call that registers it. Exits 3,
    changing nothing, if a key is already there."""
    from bridge import keykit

    device_id = keykit.validate_device_id(device_id or keykit.default_device_id())
    try:
        kit = keykit.write_kit(out_dir, kind="rsa" if kind == "rsa" else "ec",
                               device_id=device_id, force=force)
    except keykit.KeyExistsError as exc:
        raise KeyExists(str(exc)) from None
    cert = kit.cert_path.read_text(encoding="ascii")
    command = keykit.register_command(kit.device_id, kit.cert_format, cert, url=url,
                                      system_key=system_key)
    if as_json:
        paths = {"private_key": kit.key_path, "public_key": kit.public_path,
                 "certificate": kit.cert_path, "device_id": kit.id_path}
        echo_json({"device_id": kit.device_id,
                   "files": {name: str(path.resolve()) for name, path in paths.items()},
                   "formats": {"certificate": kit.cert_format.value,
                               "public_key": kit.public_format.value},
                   "key": key_json(keylib.normalize(cert)),
                   "register": {"body": json.loads(keykit.register_body(
                       kit.device_id, kit.cert_format, cert)), "command": command}})
        return
    click.echo(f"device id:   {kit.device_id}")
    click.echo(f"private key: {kit.key_path} (secret: it belongs on the device only)")
    click.echo(f"public key:  {kit.public_path} ({kit.public_format.value})")
    click.echo(f"certificate: {kit.cert_path} ({kit.cert_format.value})")
    click.echo("register it (ClearBlade IoT Core; the registry's URL, system key and token are "
               f"under API Keys on its page):\n  {command}")


@keys.command()
@click.option("--key", "key_file", required=True, type=click.Path(),
              help="The device's private key (PEM).")
@click.option("--project", required=True, help="Cloud project id: the JWT audience.")
@click.option("--ttl", type=click.IntRange(1, 86400), default=3600, show_default=True,
              help="Lifetime in seconds (Cloud IoT allows at most 24 h).")
@click.option("--algorithm", type=click.Choice(["auto", "RS256", "ES256"], case_sensitive=False),
              default="auto", show_default=True,
              help="Signing algorithm; auto: ES256 for an EC P-256 key, RS256 for RSA.")
def jwt(key_file: str, project: str, ttl: int, algorithm: str) -> None:
    """Print a device JWT for the Cloud IoT MQTT/HTTP bridges, signed with the device key.
    A key the bridge would refuse (as `keys inspect` does) is refused here too: exit 2."""
    from bridge import devicekeys, keykit

    key = keykit.load_private_key(key_file)
    click.echo(devicekeys.mint_jwt(key, project, ttl=ttl, algorithm=algorithm))


@keys.command()
@click.option("--device", "device_id", required=True, help="Registry device id.")
@click.option("--key", "key_file", required=True, type=click.Path(),
              help="The device's private key, public key or certificate (PEM).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML settings file [default: settings from the environment].")
@click.option("--registry", "registry_name",
              help="Registry name or path to look in [default: IOT_REGISTRIES, else every "
                   "registry of the location].")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: schema_version, ok, device_id, key, registry, mender.")
def check(device_id: str, key_file: str, config_file: str | None, registry_name: str | None,
          as_json: bool) -> None:
    """Does this device key match a usable credential of the device in the registry and an
    admitted (preauthorized or accepted) auth set in Mender? Exit 0 if both, 1 if not."""
    from bridge.cli.common import load_settings
    from bridge.factory import build_service

    settings = load_settings(config_file)
    key = _public_key(key_file)
    with build_service(settings) as service:
        result = service.check_key((registry_name,) if registry_name else (), device_id,
                                   key.pem)
    if result is None:
        raise click.UsageError("no registry to look in: the configured scope has none")
    if as_json:
        echo_json(_check_json(result, key))
    else:
        for line in _check_lines(result, key):
            click.echo(line)
    if not result.ok:
        raise SystemExit(1)


def _public_key(key_file: str) -> PublicKey:
    """The public key of a private key, public key or certificate file."""
    from bridge import devicekeys
    from bridge.keykit import read_key_file

    data = read_key_file(key_file, keylib.MAX_INPUT)
    if b"PRIVATE KEY-----" in data:
        data = devicekeys.public_pem(devicekeys.parse_private_key(data, key_file)).encode()
    return keylib.normalize(data)


def _registry_detail(result: KeyCheck) -> str:
    if not result.found:
        return f"device {result.device_id} not found in {result.ref.path}"
    where = f"{result.ref.path}/devices/{result.device_id}"
    match = result.credential
    if match is None:
        return f"{where}: none of its {result.credentials} credentials holds this key"
    label = match.format.value if match.format else "no format"
    where = f"{where}: credential {match.number} of {match.total} ({label}) matches"
    if match.problem is not None:
        return f"{where} but is not usable: {match.problem}"
    return f"{where} but the device is blocked" if result.blocked else where


def _mender_detail(result: KeyCheck) -> str:
    if result.identity is None:
        return "not checked: the identity needs the registry device"
    if result.mender_id is None:
        return f"no device with identity {canonical_json(dict(result.identity))}"
    device = f"device {result.mender_id} ({_value(result.mender_status)})"
    if result.auth_status is None:
        return f"{device} has no auth set with this key"
    return f"{device}: auth set {result.auth_set_id} is {result.auth_status.value}"


def _value(status: AuthStatus | None) -> str | None:
    return status.value if status is not None else None


def _check_lines(result: KeyCheck, key: PublicKey) -> list[str]:
    return [f"key:      sha256:{key.fingerprint} ({key.describe()})",
            f"registry: {'ok' if result.registry_ok else 'NO'}: {_registry_detail(result)}",
            f"mender:   {'ok' if result.mender_ok else 'NO'}: {_mender_detail(result)}"]


def _check_json(result: KeyCheck, key: PublicKey) -> dict[str, Any]:
    match = result.credential
    registry = {"ok": result.registry_ok, "found": result.found, "registry": result.ref.path,
                "credentials": result.credentials,
                "credential": match.number if match else None,
                "format": match.format.value if match and match.format else None,
                "problem": match.problem if match else None, "blocked": result.blocked,
                "detail": _registry_detail(result)}
    mender = {"ok": result.mender_ok,
              "identity": dict(result.identity) if result.identity is not None else None,
              "device_id": result.mender_id, "device_status": _value(result.mender_status),
              "auth_set_id": result.auth_set_id, "auth_status": _value(result.auth_status),
              "detail": _mender_detail(result)}
    return {"ok": result.ok, "device_id": result.device_id, "key": key_json(key),
            "registry": registry, "mender": mender}
