"""`blmonitor smarthost`: send outbound mail through the ISP's smart host while listed, and back.

The use cases (plan, act, status, sync) are `smarthost/service.py`'s; this module parses, calls
one of them and renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from blmonitor.cli import config_option

if TYPE_CHECKING:
    from blmonitor.config import Config
    from blmonitor.monitor.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def _mta_options(command: F) -> F:
    """-c, --mta and --config-dir: the config, and which MTA's configuration to read or change."""
    for option in reversed((
        config_option,
        click.option("--mta", type=click.Choice(["postfix", "exim", "sendmail", "opensmtpd",
                     "exchange"]), default=None,
                     help="The MTA (default: [smarthost] mta, or the one installed here)."),
        click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="The MTA's configuration directory (default "
                     "/etc/postfix, /etc/exim4…): a copy works."),
    )):  # fmt: skip
        command = option(command)
    return command


_DESTINATION_OPTION = click.option(
    "--destination", "destinations", multiple=True, metavar="DOMAIN",
    help="Route only this receiving domain (repeatable; scope = destinations).",
)  # fmt: skip


@click.group()
def smarthost() -> None:
    """Send outbound mail through the ISP's smart host while listed, and back.

    The relay is [smarthost] in the config; the password is read from its password_file.

    \b
    Examples:
      blmonitor smarthost plan
      blmonitor smarthost apply --mta postfix
      blmonitor smarthost revert
    """


def _reading(config_path: Path | None) -> tuple[Config, Store | None]:
    """The config and its history; None when no run has made one yet (never created here)."""
    from blmonitor.config import load_config
    from blmonitor.monitor.status import open_history

    config = load_config(config_path)
    return config, open_history(config)


def _writing(config_path: Path | None) -> tuple[Config, Store]:
    """The config and its history database, created if need be (an action is recorded)."""
    from blmonitor.config import load_config
    from blmonitor.monitor.store import Store

    config = load_config(config_path)
    return config, Store(config.monitor.database)


@smarthost.command("plan")
@_mta_options
@_DESTINATION_OPTION
@click.option("--revert", "revert_plan", is_flag=True, help="Show the way back instead.")
def smarthost_plan_command(
    config_path: Path | None,
    mta: str | None,
    config_dir: Path | None,
    destinations: tuple[str, ...],
    revert_plan: bool,
) -> None:
    """Print the exact change (files, settings, commands), changing nothing.

    For Exchange it prints PowerShell to paste; the password is always masked.

    \b
    Examples:
      blmonitor smarthost plan
      blmonitor smarthost plan --mta exchange
      blmonitor smarthost plan --revert --config-dir /tmp/postfix-copy
    """
    from blmonitor.smarthost.plan import render_plan
    from blmonitor.smarthost.service import destinations_for, relay_of, smarthost_plan

    config, store = _reading(config_path)
    action = "revert" if revert_plan else "apply"
    wanted = destinations_for(config, store, destinations)
    plan = smarthost_plan(config, action, mta=mta or "", config_dir=config_dir,
                          destinations=wanted)  # fmt: skip
    click.echo(render_plan(plan, relay_of(config)), nl=False)


def _act(action: str, *, config_path: Path | None, mta: str | None, config_dir: Path | None,
         destinations: Sequence[str] = (), as_json: bool) -> None:  # fmt: skip
    from blmonitor.cli.output import write_json
    from blmonitor.monitor.run import deliver_pending, notifier_for, server_name, utcnow
    from blmonitor.smarthost.service import act_by_hand

    config, store = _writing(config_path)
    done = act_by_hand(config, store, action, now=utcnow(), host=server_name(config), mta=mta or "",
                       config_dir=config_dir, destinations=destinations)  # fmt: skip
    deliver_pending(store, notifier_for(config), utcnow)
    if as_json:
        write_json(done.json())
    else:
        click.echo(done.render())


@smarthost.command("apply")
@_mta_options
@_DESTINATION_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def smarthost_apply(**options: Any) -> None:
    """Route outbound mail through the smart host now (root).

    Every file is saved first; the change is validated, the MTA reloaded if it runs, the
    deferred queue flushed; any failure restores the previous configuration. Recorded in the
    history and notified. Running it twice changes nothing.

    \b
    Example:
      sudo blmonitor smarthost apply
    """
    _act("apply", **options)


@smarthost.command("revert")
@_mta_options
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def smarthost_revert(**options: Any) -> None:
    """Go back to direct delivery: the exact configuration saved by apply (root).

    \b
    Example:
      sudo blmonitor smarthost revert
    """
    _act("revert", **options)


@smarthost.command("status")
@_mta_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def smarthost_status(config_path: Path | None, mta: str | None, config_dir: Path | None,
                     as_json: bool) -> None:  # fmt: skip
    """Whether mail goes through the smart host, since when, and the recent actions.

    \b
    Example:
      blmonitor smarthost status
    """
    from blmonitor.cli.output import write_json
    from blmonitor.smarthost.service import render_status, smarthost_of

    config, store = _reading(config_path)
    state = smarthost_of(config, mta=mta or "", config_dir=config_dir).status()
    actions = store.smarthost_actions()[:10] if store is not None else []
    if as_json:
        write_json({**state, "actions": actions})
    else:
        click.echo(render_status(state, actions))


@smarthost.command("sync")
@config_option
def smarthost_sync(config_path: Path | None) -> None:
    """Carry out the monitor's latest request (the root unit blmonitor-smarthost runs this).

    The daemon runs unprivileged; in mode = "apply" it writes its request to the state
    directory, and blmonitor-smarthost.path starts this command as root.

    \b
    Example:
      sudo blmonitor smarthost sync
    """
    from blmonitor.monitor.run import deliver_pending, notifier_for, server_name, utcnow
    from blmonitor.smarthost.service import sync_smarthost

    config, store = _writing(config_path)
    outcome = sync_smarthost(config, store, now=utcnow(), host=server_name(config))
    deliver_pending(store, notifier_for(config), utcnow)
    if outcome is None:
        click.echo("no request")
    else:
        click.echo(f"{outcome.plan.action}: {'done' if outcome.changed else 'nothing to change'}")
