"""`mender-bridge keys …`: inspect credentials (and, with the device kit, make and check keys)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from bridge import keys as keylib
from bridge.model import CredentialFormat, KeyType

FORMATS = [f.value for f in CredentialFormat]


@click.group()
def keys() -> None:
    """Device keys: make a device key kit, mint its IoT JWT, check it against both clouds, and
    inspect a credential as the bridge would send it to Mender."""


@keys.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              metavar="[" + "|".join(FORMATS) + "]",
              help="Registry format label the credential is registered with; checked "
                   "against the content.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inspect(file: str, fmt: str | None, as_json: bool) -> None:
    """Show what the bridge would send to Mender for the public key or certificate in FILE
    (`-` for standard input): the normalized PEM, key type, size or curve, and fingerprint.
    A key the bridge would refuse prints the reason and exits 2."""
    data = sys.stdin.buffer.read(keylib.MAX_INPUT + 1) if file == "-" else _read(file)
    # The clock is read here, at the entry point, so that a certificate the bridge would refuse
    # as expired or not yet valid is refused here too.
    key = keylib.normalize(data, fmt, now=datetime.now(UTC))
    if as_json:
        out: dict[str, object] = {"pubkey": key.pem, "type": key.type.value,
                                  "fingerprint": key.fingerprint}
        if key.type is KeyType.RSA:
            out["bits"] = key.bits
        else:
            out["curve"] = key.curve
        click.echo(json.dumps(out, indent=2))
        return
    size = f"{key.bits} bits" if key.type is KeyType.RSA else key.curve
    click.echo(f"type:        {key.type.value} ({size})")
    click.echo(f"fingerprint: sha256:{key.fingerprint}")
    click.echo(key.pem, nl=False)


def _read(file: str) -> bytes:
    try:
        path = Path(file)
        if path.stat().st_size > keylib.MAX_INPUT:
            raise click.BadParameter(f"{file} is larger than {keylib.MAX_INPUT} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {file}: {exc.strerror}") from None


@keys.command()
@click.option("--type", "kind", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True,
              help="EC P-256 (ES256) or RSA 3072 (RS256).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Directory for the key, public key, certificate and id.")
@click.option("--device-id", help="Registry device id [default: g-<contents of /etc/machine-id>].")
@click.option("--force", is_flag=True, help="Replace an existing key.")
def generate(kind: str, out_dir: str, device_id: str | None, force: bool) -> None:
    """Make a device key kit, as keys/provision-device.sh does on a device: mender-agent.pem
    (0600; SEC1 or PKCS#1, as the Mender client reads it), device-public.pem, device-cert.pem
    (self-signed, to register) and device-id."""
    from bridge import devicekeys

    device_id = devicekeys.validate_device_id(device_id or devicekeys.default_device_id())
    kit = devicekeys.write_kit(out_dir, kind="rsa" if kind == "rsa" else "ec",
                               device_id=device_id, force=force)
    click.echo(f"device id:   {kit.device_id}")
    click.echo(f"private key: {kit.key_path} (secret: it belongs on the device only)")
    click.echo(f"public key:  {kit.public_path} ({kit.public_format.value})")
    click.echo(f"certificate: {kit.cert_path} ({kit.cert_format.value})")
    gcloud_type = kit.cert_format.value.lower().replace("_", "-")
    click.echo("register it with:\n  gcloud iot devices create "
               f"'{kit.device_id}' --project=\"$PROJECT\" --region=\"$REGION\" "
               f"--registry=\"$REGISTRY\" --public-key path={kit.cert_path.resolve()},"
               f"type={gcloud_type}")


@keys.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The device's private key (PEM).")
@click.option("--project", required=True, help="Cloud project id: the JWT audience.")
@click.option("--ttl", type=click.IntRange(1, 86400), default=3600, show_default=True,
              help="Lifetime in seconds (Cloud IoT allows at most 24 h).")
@click.option("--algorithm", type=click.Choice(["auto", "RS256", "ES256"], case_sensitive=False),
              default="auto", show_default=True,
              help="Signing algorithm; auto: ES256 for an EC P-256 key, RS256 for RSA.")
def jwt(key_file: str, project: str, ttl: int, algorithm: str) -> None:
    """Print a device JWT for the Cloud IoT MQTT/HTTP bridges, signed with the device key."""
    from bridge import devicekeys

    key = devicekeys.load_private_key(key_file)
    click.echo(devicekeys.mint_jwt(key, project, ttl=ttl, algorithm=algorithm))


@keys.command()
@click.option("--device", "device_id", required=True, help="Registry device id.")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The device's private key, public key or certificate (PEM).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML settings file [default: settings from the environment].")
@click.option("--registry", "registry_name",
              help="Registry name or path to look in [default: IOT_REGISTRIES, else every "
                   "registry of the location].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def check(device_id: str, key_file: str, config_file: str | None, registry_name: str | None,
          as_json: bool) -> None:
    """Does this device key match a usable credential of the device in the registry and an
    admitted (preauthorized or accepted) auth set in Mender? Exit 0 if both, 1 if not."""
    from bridge import devicekeys
    from bridge import registry as registry_module
    from bridge.cli.sync import load_settings, registry_refs
    from bridge.keys import KeyPolicy
    from bridge.mender import MenderClient

    settings = load_settings(config_file)
    data = _read(key_file)
    public = keylib.normalize(devicekeys.public_pem(devicekeys.load_private_key(key_file))
                              if b"PRIVATE KEY-----" in data else data)
    registry = registry_module.from_settings(settings)
    refs = (registry_refs(settings, (registry_name,) if registry_name else ())
            or registry.list_registries(settings.iot_project or "", settings.iot_location))
    with MenderClient.from_settings(settings) as mender:
        result = devicekeys.check_key(registry, mender, refs, device_id, public,
                                      settings.template,
                                      policy=KeyPolicy(min_rsa_bits=settings.min_rsa_bits))
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "key": public.fingerprint,
                               "registry": {"ok": result.registry_ok, "detail": result.registry},
                               "mender": {"ok": result.mender_ok, "detail": result.mender}},
                              indent=2))
    else:
        click.echo(f"key:      sha256:{public.fingerprint} ({public.describe()})")
        click.echo(f"registry: {'ok' if result.registry_ok else 'NO'}: {result.registry}")
        click.echo(f"mender:   {'ok' if result.mender_ok else 'NO'}: {result.mender}")
    if not result.ok:
        raise SystemExit(1)
