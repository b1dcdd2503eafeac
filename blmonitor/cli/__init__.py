"""The blmonitor command line: the root group, the one exit-code table and the error handling.

Each command lives in the module of its group (check, monitor, smarthost, causes, bounces) and
is imported only when it runs or --help lists it, so `check` pays for no other command's
imports. A command parses its options, calls one service and renders the result.

Exit codes (one table for every command; Nagios-compatible where it fits):
    0  clean          1  listed          2  usage or config error          3  could not determine
    (a crash is 3 with one line, its traceback only with --debug; Ctrl-C is 130)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from blmonitor import __version__
from blmonitor.errors import BlmonitorError
from blmonitor.models import Verdict

EXIT_CLEAN = 0
EXIT_LISTED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_CODES = {Verdict.CLEAN: EXIT_CLEAN, Verdict.LISTED: EXIT_LISTED, Verdict.UNKNOWN: EXIT_UNKNOWN}

# Command name -> "module:attribute", in the order --help lists them.
COMMANDS = {
    "bounces": "blmonitor.cli.bounces:bounces",
    "check": "blmonitor.cli.check:check",
    "diagnose": "blmonitor.cli.causes:diagnose",
    "explain": "blmonitor.cli.bounces:explain",
    "gmail-postmaster": "blmonitor.cli.gmail:gmail_postmaster",
    "history": "blmonitor.cli.monitor:history",
    "notify": "blmonitor.cli.monitor:notify",
    "posture": "blmonitor.cli.posture:posture",
    "queue": "blmonitor.cli.causes:queue",
    "relaytest": "blmonitor.cli.causes:relaytest",
    "report": "blmonitor.cli.monitor:report",
    "run": "blmonitor.cli.monitor:run",
    "smarthost": "blmonitor.cli.smarthost:smarthost",
    "status": "blmonitor.cli.monitor:status",
    "zones": "blmonitor.cli.check:zones",
}


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then the exit code (blmonitor's own errors all end here)."""
    click.echo(f"blmonitor: error: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Imports a command's module only when that command is wanted (click's LazyGroup), and
    turns blmonitor's own errors into one line and their exit code (traceback with --debug)."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, name = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        debug = ctx.params.get("debug")
        try:
            return super().invoke(ctx)
        except BlmonitorError as exc:
            if debug:
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("blmonitor: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug: one line and "could not determine", never "listed"
            if debug:
                raise
            fail(f"internal error: {type(exc).__name__}: {exc}; run with --debug for the "
                 "traceback", EXIT_UNKNOWN)  # fmt: skip


@click.group(cls=_Group, lazy=COMMANDS)
@click.version_option(__version__, prog_name="blmonitor")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """Keep a mail server off DNS blocklists.

    Example: blmonitor check 203.0.113.5 example.com
    """


config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default /etc/blmonitor/config.toml; all defaults when it is missing).",
)  # fmt: skip
