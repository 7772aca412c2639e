"""The `mender-bridge` command line: a thin layer over the library.

Subcommands live in their own modules and are imported only when run, so `--help` and
`keys` stay fast. Expected errors print one line each on stderr: exit 2 for usage,
configuration, key, name and credential errors, 1 for anything else that failed, 130 when
interrupted.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from bridge import __version__
from bridge.errors import (
    AuthError,
    BridgeError,
    ConfigError,
    IdentityError,
    InputError,
    InvalidKeyError,
)

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


PROG = "mender-bridge"
# Exit 2: the user must change something (usage, settings, a key, a name, credentials).
_USAGE = (ConfigError, InvalidKeyError, IdentityError, InputError, AuthError)


def error_lines(error: BaseException) -> list[str]:
    """The one-line messages an error is shown as (a ConfigError: one per problem)."""
    if isinstance(error, ConfigError):
        return list(error.problems)
    message = str(error)
    if isinstance(error, AuthError) and "MENDER_TOKEN" not in message:
        message += " (check the credentials in the settings)"
    return [message]


def exit_code(error: BaseException) -> int:
    return 2 if isinstance(error, _USAGE) else 1


class BridgeFailure(click.ClickException):
    """A failure a command reports itself: one line, exit 1 (subclasses set exit_code)."""

    exit_code = 1


class LazyGroup(click.Group):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Every failure in one shape, `mender-bridge: error: …` (one line per problem),
        then its exit code; 130 when interrupted."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name or PROG, complete_var, False, **extra)
        except click.UsageError as exc:
            hint = f"{exc.ctx.command_path} --help" if exc.ctx else f"{PROG} --help"
            click.echo(f"{PROG}: error: {exc.format_message()}", err=True)
            click.echo(f"(see {hint})", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            _fail([exc.format_message()], exc.exit_code)
        except BridgeError as exc:
            _fail(error_lines(exc), exit_code(exc))
        except (KeyboardInterrupt, click.Abort):
            click.echo(f"{PROG}: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

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


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        click.echo(f"{PROG}: error: {line}", err=True)
    sys.exit(code)


@click.group(PROG, cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mender-bridge")
def cli() -> None:
    """Admit the devices of a Cloud IoT registry (Google, ClearBlade) to Mender with the
    same identity and the same key, and keep Mender in step with the registry."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name=PROG)
