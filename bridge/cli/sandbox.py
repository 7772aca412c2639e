"""`mender-bridge sandbox`: run the local Mender and registry stand-ins (and the Pub/Sub
emulator, where installed) until Ctrl-C; `sandbox add-device` registers a device in it."""

from __future__ import annotations

import shlex
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from bridge.cli import BridgeFailure
from bridge.pubsub.emulator import EmulatorError
from bridge.pubsub.local import EventPath, PubsubMode
from bridge.sandbox.faults import Faults
from bridge.sandbox.launcher import Sandbox, SandboxError

_HINTS = {"mender_port": "choose another with --mender-port (0: any free port)",
          "registry_port": "choose another with --registry-port (0: any free port)",
          "host": "change --host", "data": "stop that one, or choose another --data folder"}
DATA = click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
                    default=Path("sandbox-data"), show_default=True,
                    help="Directory holding the databases, keys, certificate and bridge.toml; "
                         "state survives restarts.")


class SandboxFailure(BridgeFailure):
    exit_code = 2


def _fault_options(function: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0,
                     help="Delay every request of both stand-ins by this many milliseconds."),
        click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0,
                     help="Fraction of requests answered with 500/503 (both stand-ins)."),
        click.option("--rate-429", type=click.FloatRange(0, 1), default=0.0,
                     help="Fraction of requests answered 429 with Retry-After: 1 (both)."),
        click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0,
                     help="Fraction of connections closed without an answer (both)."),
        click.option("--decommission-delay-ms", type=click.FloatRange(min=0), default=0.0,
                     help="Mender: a decommissioned device lingers this long (a preauthorize "
                          "for its identity meanwhile answers 409)."),
        click.option("--lose-authset-on-preauth", is_flag=True,
                     help="Mender: a new device's preauthorization answers 500 after writing "
                          "the device but not its auth set (Mender 4.1.3)."),
        click.option("--rate-limit-quota", type=click.IntRange(min=0), default=0,
                     help="Mender: requests per interval and caller, then 429 (0: no limit)."),
        click.option("--rate-limit-interval-s", type=click.FloatRange(min=0.001), default=60.0,
                     show_default=True, help="Mender: the rate limit's interval."),
        click.option("--inventory-delay-ms", type=click.FloatRange(min=0), default=50.0,
                     show_default=True,
                     help="Mender: how long a change takes to reach the inventory."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group(invoke_without_command=True)
@DATA
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
@click.option("--pubsub", type=click.Choice([m.value for m in PubsubMode]), default="auto",
              show_default=True, envvar="SANDBOX_PUBSUB",
              help="Audit events through Google's Pub/Sub emulator (PUBSUB_EMULATOR_HOST, or "
                   "one started here), or posted directly by the registry; auto: the "
                   "emulator where it is installed.")
@click.option("--push-endpoint", "push_endpoints", multiple=True, metavar="URL",
              help="Also deliver the events to this URL as Pub/Sub push (a push "
                   "subscription on the emulator); repeatable.")
@_fault_options
@click.pass_context
def sandbox(ctx: click.Context, data_dir: Path, host: str, mender_port: int,
            registry_port: int, no_tls: bool, pubsub: str, push_endpoints: tuple[str, ...],
            latency_ms: float, error_rate: float, rate_429: float, drop_rate: float,
            decommission_delay_ms: float, lose_authset_on_preauth: bool,
            rate_limit_quota: int, rate_limit_interval_s: float,
            inventory_delay_ms: float) -> None:
    """Start local stand-ins of Mender and of the Cloud IoT registry, write DIR/bridge.toml
    for them, and serve until Ctrl-C. Faults can be changed at run time with
    `POST /_sandbox/faults` on either server."""
    if ctx.invoked_subcommand is not None:
        return
    import os

    def faults() -> Faults:
        return Faults(latency_ms=latency_ms, error_rate=error_rate, rate_429=rate_429,
                      drop_rate=drop_rate)

    mender = Faults(latency_ms=latency_ms, error_rate=error_rate, rate_429=rate_429,
                    drop_rate=drop_rate, decommission_delay_ms=decommission_delay_ms,
                    lose_authset_on_preauth=lose_authset_on_preauth,
                    rate_limit_quota=rate_limit_quota,
                    rate_limit_interval_s=rate_limit_interval_s,
                    inventory_delay_ms=inventory_delay_ms)
    try:
        box = Sandbox(data_dir, host=host, mender_port=mender_port,
                      registry_port=registry_port, tls=not no_tls,
                      audit_endpoints=push_endpoints, mender_faults=mender,
                      registry_faults=faults(), pubsub=pubsub,
                      pubsub_emulator_host=os.environ.get("PUBSUB_EMULATOR_HOST") or None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    _run(box)


def _run(box: Sandbox) -> None:
    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # the same clean stop as Ctrl-C

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        with box:
            _explain(box)
            threading.Event().wait()
    except SandboxError as exc:
        raise SandboxFailure(f"{exc}; {_HINTS[exc.option]}") from None
    except EmulatorError as exc:
        raise SandboxFailure(f"{exc} (or run with --pubsub direct)") from None
    except KeyboardInterrupt:
        # Caught around the whole `with`: Ctrl-C right after start still stops cleanly.
        click.echo("\nsandbox stopped", err=True)


@sandbox.command(name="add-device")
@click.argument("device_id")
@click.option("--key", "key_file", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The device's public key or certificate (PEM; RSA or EC P-256).")
@DATA
def add_device(device_id: str, key_file: Path, data_dir: Path) -> None:
    """Register DEVICE_ID with the key of --key in the running sandbox's registry, through
    the Cloud IoT REST call; the bridge then admits it to Mender (event or sync)."""
    from bridge.sandbox.registry.enroll import EnrollError
    from bridge.sandbox.registry.enroll import add_device as enroll

    try:
        device = enroll(data_dir / "bridge.toml", device_id, key_file)
    except EnrollError as exc:
        raise BridgeFailure(str(exc)) from None
    click.echo(f"registered {device['id']} (numeric id {device['numId']}) in {device['name']}")


def _explain_events(path: EventPath, config: str) -> None:
    if path.mode is not PubsubMode.EMULATOR:
        click.echo(f"events:             posted by the registry stand-in ({path.note})")
        return
    click.echo(f"Pub/Sub emulator:   {path.emulator_host}  "
               f"(export PUBSUB_EMULATOR_HOST={path.emulator_host})")
    click.echo(f"  topic:                    {path.topic}")
    click.echo(f"  pull subscription:        {path.subscription}")
    for name in path.push_subscriptions:
        click.echo(f"  push subscription:        {name}")
    click.echo(f"  dead-letter topic:        {path.dead_letter_topic}")
    click.echo(f"  dead-letter subscription: {path.dead_letter_subscription}")
    click.echo(f"  mender-bridge listen --config {config}")
    click.echo(f"  mender-bridge dead-letters list --config {config} --subscription "
               f"{path.dead_letter_subscription}")


def _explain(box: Sandbox) -> None:
    token = box.token.reveal()
    config = shlex.quote(str(box.config_path))
    click.echo(f"Mender stand-in:    {box.mender_url}")
    click.echo(f"registry stand-in:  {box.registry_url}  (project sandbox-project, "
               "location us-central1, registry sandbox-registry)")
    _explain_events(box.pubsub, config)
    if box.ca_cert is not None:
        click.echo(f"TLS certificate:    {box.ca_cert}  (trust it on a device as its CA)")
    click.echo(f"admin login:        {box.admin_email} / {box.admin_password}")
    # Printing the token is intended: it belongs to this local sandbox, nothing else.
    click.echo(f"access token (PAT): {token}")
    click.echo(f"bridge config:      {box.config_path}")
    click.echo("")
    data = shlex.quote(str(box.data_dir))
    click.echo("add a device:")
    click.echo("  mender-bridge keys generate --out device-key --device-id my-device")
    click.echo(f"  mender-bridge sandbox add-device my-device --key device-key/device-public.pem "
               f"--data {data}")
    click.echo(f"  mender-bridge sync --config {config}")
    trust = (f"SSL_CERT_FILE={shlex.quote(str(box.ca_cert))} " if box.ca_cert else "")
    click.echo(f"  {trust}mender-cli --server {box.mender_url} --token-value "
               f"{shlex.quote(token)} devices list")
    if box.ca_cert is not None:
        click.echo("  (or pass --skip-verify to mender-cli instead of SSL_CERT_FILE)")
    click.echo("")
    click.echo("Ctrl-C stops the sandbox; its state stays in the data directory.")
