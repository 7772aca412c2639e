"""`mender-bridge keys …`: inspect credentials (and, with the device kit, make and check keys)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bridge import keys as keylib
from bridge.model import CredentialFormat

FORMATS = [f.value for f in CredentialFormat]


@click.group()
def keys() -> None:
    """Device keys: inspect a credential as the bridge would send it to Mender."""


@keys.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              help="Registry format label the credential is registered with; checked "
                   "against the content.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inspect(file: str, fmt: str | None, as_json: bool) -> None:
    """Show what the bridge would send to Mender for the public key or certificate in FILE
    (`-` for standard input): the normalized PEM, key type, size or curve, and fingerprint.
    A key the bridge would refuse prints the reason and exits 2."""
    data = sys.stdin.buffer.read(keylib.MAX_INPUT + 1) if file == "-" else _read(file)
    key = keylib.normalize(data, fmt)
    if as_json:
        out: dict[str, object] = {"pubkey": key.pem, "type": key.type.value,
                                  "fingerprint": key.fingerprint}
        if key.type.value == "rsa":
            out["bits"] = key.bits
        else:
            out["curve"] = key.curve
        click.echo(json.dumps(out, indent=2))
        return
    size = f"{key.bits} bits" if key.type.value == "rsa" else key.curve
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
