"""`mender-bridge demo`: play the whole story on the built-in sandbox."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import click

from bridge.demo import Narrator, World, run, table
from bridge.demo.world import REF


@click.command()
@click.option("--devices", "-n", "fleet_size", default=8, show_default=True,
              type=click.IntRange(1, 500), help="Size of the main fleet (six devices with "
              "special roles are added).")
@click.option("--keep", is_flag=True, help="Leave the sandbox and the function running "
              "afterwards, and print how to use them (Ctrl-C stops).")
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the sandbox's data (default: a temporary directory, "
                   "removed at the end unless --keep).")
def demo(fleet_size: int, keep: bool, data: Path | None) -> None:
    """Run the product end to end on the local sandbox, with no cloud account.

    Starts the registry and Mender stand-ins, runs the real Cloud Function under
    functions-framework with the registry's audit-log events pointed at it, and plays the
    story: a fleet registered with the google-cloud-iot client is preauthorized in Mender;
    every device authenticates to Mender and publishes telemetry with its one key; a device
    that booted before it was registered is accepted; a key rotation, a blocked and a deleted
    device are propagated; `sync` backfills devices that existed before the bridge, and a
    second sync changes nothing. Ends with a table of every device; exits 1 if any check
    failed.
    """
    data_dir = data or Path(tempfile.mkdtemp(prefix="mender-bridge-demo-"))
    narrator = Narrator()
    click.echo("Starting the sandbox (registry + Mender) and the Cloud Function "
               "(functions-framework)…")
    world = World(data_dir)
    ok = False
    try:
        world.start()
        click.echo(f"   Mender:   {world.sandbox.mender_url}\n   registry: "
                   f"{world.sandbox.registry_url}\n   function: "
                   f"{world.function.url if world.function else '-'}")
        rows = run(data_dir, fleet_size, narrator, world)
        click.echo("\n" + table(rows))
        ok = not narrator.failures and all(r.ok for r in rows)
        verdict = "all checks passed" if ok else f"{len(narrator.failures)} check(s) failed"
        click.echo(f"\n{len(rows)} devices, {narrator.checks} checks: {verdict}.")
        if keep:
            _keep(world, data_dir)
    finally:
        world.stop()
        if data is None and not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def _keep(world: World, data_dir: Path) -> None:
    box = world.sandbox
    click.echo(f"""
The sandbox keeps running (data in {data_dir}). Try:
  mender-bridge sync --config {box.config_path} --dry-run
  mender-bridge device demo-001 --config {box.config_path}
  mender-cli --server {box.mender_url} --skip-verify \\
      --token-value "$(cat {data_dir / 'sandbox-token'})" devices list
  curl -s {box.registry_url}/v1/{REF.path}/devices
Later, `mender-bridge sandbox --data {data_dir}` starts the same sandbox again.
Press Ctrl-C to stop.""")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopping")
