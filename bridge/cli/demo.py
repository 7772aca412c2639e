"""`mender-bridge demo`: play the whole story on the built-in sandbox.

Exit 0 when every check held, 1 when one did not, 2 for a folder it cannot use, 130 when
stopped (Ctrl-C, SIGTERM, SIGHUP) before the end; stopping a `--keep` demo is its normal end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from bridge.demo import Narrator, World, run, table
from bridge.demo.events import Delivery
from bridge.demo.folder import Folder, FolderError, Prepared, prepare
from bridge.demo.narrate import Row, result
from bridge.demo.world import REF
from bridge.pubsub.emulator import EmulatorError
from bridge.sandbox.launcher import SandboxError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@click.command()
@click.option("--devices", "-n", "fleet_size", default=8, show_default=True,
              type=click.IntRange(1, 500), help="Size of the main fleet (six devices with "
              "special roles are added).")
@click.option("--keep", is_flag=True, help="Leave the sandbox and the function running "
              "afterwards, and print how to use them (Ctrl-C stops).")
@click.option("--data", "data", type=click.Path(path_type=Path),
              help="Folder for the sandbox's data: new, empty, or one an earlier demo left "
                   "(reset). Default: a temporary folder, removed at the end unless --keep.")
@click.option("--pubsub", type=click.Choice(["auto", "emulator", "direct"]), default="auto",
              show_default=True, help="How audit-log events reach the function: through "
                   "Google's Pub/Sub emulator (auto: where it is installed), or posted "
                   "directly by the registry stand-in.")
@click.option("--json", "as_json", is_flag=True, help="Print the final table and the checks "
              "as one JSON object (the story goes to stderr).")
def demo(fleet_size: int, keep: bool, data: Path | None, pubsub: str, as_json: bool) -> None:
    """Run the product end to end on the local sandbox, with no cloud account.

    Starts the registry and Mender stand-ins, runs the real Cloud Function's Pub/Sub push
    entry under functions-framework, delivers the registry's audit-log events to it through
    Google's Pub/Sub emulator (or directly where it is not installed), and plays the story: a
    fleet registered with the google-cloud-iot client is preauthorized in Mender; every device
    authenticates to Mender and publishes telemetry with its one key; a device that booted
    before it was registered is accepted; a key rotation, a blocked and a deleted device are
    propagated; `sync` backfills devices that existed before the bridge, and a second sync
    changes nothing. Ends with a table of every device; exits 1 if any check failed.
    """
    try:
        folder = prepare(data)
    except FolderError as exc:
        raise click.BadParameter(str(exc), param_hint="--data") from None
    narrator = Narrator(err=as_json)
    narrator.line(folder.describe())
    with _stop_signals_interrupt():
        world = World(folder.path, pubsub=pubsub)
        try:
            rows, outcome = _play(world, folder, fleet_size, narrator)
            _print(rows, outcome, as_json, narrator)
            if keep:
                _keep(world, folder.path, narrator)
        except (SandboxError, EmulatorError) as exc:
            raise DemoFailure(str(exc)) from None
        finally:
            _stop(world, narrator)
            if folder.prepared is Prepared.TEMPORARY and not keep:
                shutil.rmtree(folder.path, ignore_errors=True)
    sys.exit(0 if outcome["ok"] else 1)


class DemoFailure(click.ClickException):
    """The sandbox or the emulator could not start: one line, exit 2."""

    exit_code = 2


def _play(world: World, folder: Folder, fleet_size: int, narrator: Narrator
          ) -> tuple[list[Row], dict[str, Any]]:
    started = time.monotonic()
    narrator.line("Starting the sandbox (registry + Mender), the Pub/Sub emulator where it is "
                  "installed, and the Cloud Function (functions-framework)…")
    world.start()
    function = world.function
    assert function is not None
    narrator.line(f"   Mender:   {world.sandbox.mender_url}\n   registry: "
                  f"{world.sandbox.registry_url}\n   function: {function.url}, on_push of "
                  f"{function.source_name}\n   events:   {world.events.describe()}")
    rows = run(folder.path, fleet_size, narrator, world)
    return rows, result(
        rows, narrator, data={"path": str(folder.path), "prepared": folder.prepared},
        events={"path": world.events.path, "detail": world.events.describe()},
        function={"source": function.source_name, "target": "on_push"},
        elapsed_s=round(time.monotonic() - started, 1))


def _print(rows: list[Row], outcome: dict[str, Any], as_json: bool, narrator: Narrator
           ) -> None:
    if as_json:
        click.echo(json.dumps(outcome, indent=2))
        return
    click.echo("\n" + table(rows))
    failed = len(narrator.failures)
    verdict = "all checks passed" if outcome["ok"] else f"{failed} check(s) failed"
    path = ("events over the Pub/Sub emulator" if outcome["events"]["path"] == Delivery.EMULATOR
            else "events delivered directly, without Pub/Sub")
    click.echo(f"\n{len(outcome['devices'])} devices, {narrator.checks} checks: {verdict} "
               f"({path}; {outcome['elapsed_s']:.0f} s).")


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the demo as Ctrl-C does (KeyboardInterrupt), so whatever it
    started is stopped on the way out; the handlers are restored afterwards."""
    terminals = [fd for fd in (1, 2) if os.isatty(fd)]  # a hung-up terminal is no tty

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            _detach(terminals)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS[1:]}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _detach(terminals: list[int]) -> None:
    """The terminal hung up: what is still written to it would fail (EIO) and cut the
    cleanup short, so those of stdout and stderr that were on it go nowhere from now on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in terminals:
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _stop(world: World, narrator: Narrator) -> None:
    """Stop the world; a stop signal that arrives meanwhile does not cut the cleanup short
    (it is bounded: a child that ignores SIGTERM is killed after a few seconds)."""
    def _already(signum: int, frame: FrameType | None) -> None:
        narrator.say("already stopping")

    for sig in STOP_SIGNALS:
        signal.signal(sig, _already)
    try:
        world.stop()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _listen_hint(world: World) -> str:
    if world.events.path is not Delivery.EMULATOR:
        return ""
    return (f"\n  mender-bridge listen --config {world.sandbox.config_path}   # the pull "
            "subscription: every event again")


def _keep(world: World, data_dir: Path, narrator: Narrator) -> None:
    box = world.sandbox
    narrator.line(f"""
The sandbox keeps running (data in {data_dir}). Try:
  mender-bridge sync --config {box.config_path} --dry-run
  mender-bridge device demo-001 --config {box.config_path}
  mender-bridge keys generate --out {data_dir / 'my-device'} --device-id my-device
  mender-bridge sandbox add-device my-device --data {data_dir} \\
      --key {data_dir / 'my-device' / 'device-cert.pem'}{_listen_hint(world)}
  mender-cli --server {box.mender_url} --skip-verify \\
      --token-value "$(cat {data_dir / 'sandbox-token'})" devices list
  curl -s {box.registry_url}/v1/{REF.path}/devices
Later, `mender-bridge demo --data {data_dir}` plays the story again from nothing, and
`mender-bridge sandbox --data {data_dir}` starts this sandbox again.
Press Ctrl-C to stop.""")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        narrator.line("stopping")
