"""The `mender-bridge` command line: a thin layer over the library.

Subcommands live in their own modules and are imported only when run, so `--help` and
`keys` stay fast. Expected errors print one line on stderr: exit 2 for usage, configuration
and key errors, 1 for anything else that failed.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

import click

from bridge import __version__
from bridge.errors import BridgeError, ConfigError, IdentityError, InvalidKeyError

# name → "module:attribute"; each module owns its command.
COMMANDS: dict[str, str] = {
    "keys": "bridge.cli.keys:keys",
    "sandbox": "bridge.cli.sandbox:sandbox",
    "serve": "bridge.cli.serve:serve",
    "sync": "bridge.cli.sync:sync",
    "device": "bridge.cli.sync:device",
    "demo": "bridge.cli.demo:demo",
    "listen": "bridge.cli.listen:listen",
    "dead-letters": "bridge.cli.deadletters:dead_letters",
}


class BridgeFailure(click.ClickException):
    """A BridgeError shown as one line; exit 1 (something failed)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"mender-bridge: error: {self.format_message()}", err=True)


class BridgeUsageFailure(BridgeFailure):
    """A configuration, key or identity error: exit 2, like a usage error."""

    exit_code = 2


def failure(error: BridgeError) -> BridgeFailure:
    usage = (ConfigError, InvalidKeyError, IdentityError)
    return (BridgeUsageFailure if isinstance(error, usage) else BridgeFailure)(str(error))


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BridgeError as exc:
            raise failure(exc) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mender-bridge")
def cli() -> None:
    """Admit the devices of a Cloud IoT registry (Google, ClearBlade) to Mender with the
    same identity and the same key, and keep Mender in step with the registry."""


def main() -> None:
    """Console-script entry point."""
    # google-api-core warns about the Python version on import; not the user's concern here.
    warnings.filterwarnings("ignore", message="You are using a Python version",
                            category=FutureWarning)
    sys.exit(cli.main(prog_name="mender-bridge"))
