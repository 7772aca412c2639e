"""`mender-bridge sandbox`: run the local Mender and registry stand-ins until Ctrl-C."""

from __future__ import annotations

import shlex
import threading
from pathlib import Path

import click

from bridge.sandbox.faults import Faults
from bridge.sandbox.launcher import Sandbox


@click.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("sandbox-data"), show_default=True,
              help="Directory holding the databases, keys, certificate and bridge.toml; "
                   "state survives restarts.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the Mender stand-in binds (a specific one is also named in its "
                   "TLS certificate, for devices on the network); the registry stand-in "
                   "(plain HTTP) stays on loopback.")
@click.option("--mender-port", type=click.IntRange(0, 65535), default=8443, show_default=True,
              help="Port of the Mender stand-in (0 = any free port).")
@click.option("--registry-port", type=click.IntRange(0, 65535), default=8085,
              show_default=True, help="Port of the registry stand-in (0 = any free port).")
@click.option("--no-tls", is_flag=True,
              help="Serve Mender over plain HTTP (loopback only) instead of HTTPS.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0,
              help="Delay every request of both stand-ins by this many milliseconds.")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction of requests answered with 500/503 (both stand-ins).")
@click.option("--rate-429", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction of requests answered 429 with Retry-After: 1 (both stand-ins).")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction of connections closed without an answer (both stand-ins).")
def sandbox(data_dir: Path, host: str, mender_port: int, registry_port: int, no_tls: bool,
            latency_ms: float, error_rate: float, rate_429: float, drop_rate: float) -> None:
    """Start local stand-ins of Mender and of the Cloud IoT registry, write DIR/bridge.toml
    for them, and serve until Ctrl-C. Faults can be changed at run time with
    `POST /_sandbox/faults` on either server."""
    def faults() -> Faults:
        return Faults(latency_ms=latency_ms, error_rate=error_rate, rate_429=rate_429,
                      drop_rate=drop_rate)

    try:
        box = Sandbox(data_dir, host=host, mender_port=mender_port,
                      registry_port=registry_port, tls=not no_tls, mender_faults=faults(),
                      registry_faults=faults())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    try:
        with box:
            _explain(box)
            threading.Event().wait()
    except OSError as exc:  # typically a port already in use
        raise click.ClickException(f"cannot start the sandbox: {exc}") from None
    except KeyboardInterrupt:
        # Caught around the whole `with`: Ctrl-C right after start still stops cleanly.
        click.echo("\nsandbox stopped", err=True)


def _explain(box: Sandbox) -> None:
    token = box.token.reveal()
    config = shlex.quote(str(box.config_path))
    click.echo(f"Mender stand-in:    {box.mender_url}")
    click.echo(f"registry stand-in:  {box.registry_url}  (project sandbox-project, "
               "location us-central1, registry sandbox-registry)")
    if box.ca_cert is not None:
        click.echo(f"TLS certificate:    {box.ca_cert}  (trust it on a device as its CA)")
    click.echo(f"admin login:        {box.admin_email} / {box.admin_password}")
    # Printing the token is intended: it belongs to this local sandbox, nothing else.
    click.echo(f"access token (PAT): {token}")
    click.echo(f"bridge config:      {box.config_path}")
    click.echo("")
    click.echo(f"  mender-bridge sync --config {config}")
    trust = (f"SSL_CERT_FILE={shlex.quote(str(box.ca_cert))} " if box.ca_cert else "")
    click.echo(f"  {trust}mender-cli --server {box.mender_url} --token-value "
               f"{shlex.quote(token)} devices list")
    if box.ca_cert is not None:
        click.echo("  (or pass --skip-verify to mender-cli instead of SSL_CERT_FILE)")
    click.echo("")
    click.echo("Ctrl-C stops the sandbox; its state stays in the data directory.")
