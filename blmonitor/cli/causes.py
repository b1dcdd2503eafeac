"""`blmonitor relaytest`, `queue` and `diagnose`: finding why an address got listed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from blmonitor.cli import EXIT_CODES, EXIT_UNKNOWN, EXIT_USAGE, config_option, fail

F = TypeVar("F", bound=Callable[..., Any])


def _queue_options(command: F) -> F:
    """--mta, --config-dir and --local-domain: which queue to read, and whose mail is ours."""
    for option in reversed((
        click.option("--mta", type=click.Choice(["postfix", "exim"]), default=None,
                     help="The MTA whose queue to read (default: the one installed)."),
        click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="Postfix's configuration directory (postqueue -c)."),
        click.option("--local-domain", "local_domains", multiple=True, metavar="DOMAIN",
                     help="Your own domain (repeatable; default [diagnose] local_domains)."),
    )):  # fmt: skip
        command = option(command)
    return command


@click.command()
@click.argument("host")
@click.option("--port", default=25, show_default=True, type=click.IntRange(1, 65535),
              help="The SMTP port to probe.")  # fmt: skip
@click.option("--local-domain", default="", metavar="DOMAIN",
              help="A domain the server receives mail for (for the address tricks).")  # fmt: skip
@click.option("--source", default="", metavar="ADDRESS",
              help="Send from this address of this machine (default: the route's).")  # fmt: skip
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Postfix's configuration directory, read when HOST is this machine"
                   " (default /etc/postfix).")  # fmt: skip
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per SMTP reply.")
@click.option("--json", "as_json", is_flag=True, help="Print the attempts as JSON.")
def relaytest(host: str, port: int, local_domain: str, source: str, config_dir: Path | None,
              timeout: float, as_json: bool) -> None:  # fmt: skip
    """Probe HOST for an open relay, from outside your network (the "telnet test").

    Each attempt is EHLO, MAIL FROM, RCPT TO, then RSET: never DATA, so no mail is sent.
    When HOST is this machine, its MTA's trusted networks (Postfix mynetworks, Exim
    relay_from_hosts) are read: a probe sent from one of them is inconclusive, since the MTA
    may relay for it by design. Exit status 1 when an attempt was accepted (open relay), 0 when
    all were refused, 3 when the probe could not finish or was inconclusive. Aim it only at
    your own server.

    \b
    Examples:
      blmonitor relaytest mx.example.com --local-domain example.com
      blmonitor relaytest 127.0.0.1 --source 127.0.0.2   # from outside mynetworks
    """
    from blmonitor.causes import relaytest as probe
    from blmonitor.causes import service
    from blmonitor.cli.output import write_json

    report = service.relaytest(host, port=port, local_domain=local_domain, timeout=timeout,
                               source=source, config_dir=config_dir)  # fmt: skip
    if as_json:
        write_json(probe.report_json(report))
    else:
        click.echo(probe.render_report(report), nl=False)
    sys.exit(EXIT_CODES[service.relay_verdict(report)])


@click.command()
@config_option
@_queue_options
@click.option("--sender", default=None, metavar="ADDRESS",
              help="Select this sender's messages (<> for bounces).")  # fmt: skip
@click.option("--apply", "do_apply", is_flag=True, help="Remove the selected messages.")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
@click.option("--json", "as_json", is_flag=True, help="Print the queue report as JSON.")
def queue(config_path: Path | None, mta: str | None, config_dir: Path | None,
          local_domains: tuple[str, ...], sender: str | None, do_apply: bool, yes: bool,
          as_json: bool) -> None:  # fmt: skip
    """Inspect the mail queue: size, age, an NDR attack, a spam run; print the clean-up.

    The commands that remove exactly the messages of each finding (or of --sender) are
    printed; they run only with --apply, after a confirmation or --yes, and what was removed
    is recorded in the history database. Exit status 1 when something was found.

    \b
    Examples:
      blmonitor queue
      blmonitor queue --apply                 # remove the messages of the findings
      blmonitor queue --sender '<>' --apply --yes
    """
    from datetime import UTC, datetime

    from blmonitor.causes import service
    from blmonitor.cli.output import write_json
    from blmonitor.config import load_config

    config = load_config(config_path)
    found = service.inspect_queue(config, now=datetime.now(UTC), mta=mta, config_dir=config_dir,
                                  local_domains=local_domains, sender=sender)  # fmt: skip
    if as_json:
        write_json(service.queue_json(found))
    else:
        click.echo(service.render_queue(found), nl=False)
    if do_apply and found.commands:
        if not yes and not click.confirm(f"remove {len(found.selected)} message(s)?", err=True):
            fail("nothing removed", EXIT_USAGE)
        removal = service.remove_queued(config, found, now=datetime.now(UTC))
        if not as_json:
            click.echo(f"removed {len(removal.removed)} of {len(removal.requested)} message(s)")
        if removal.error:
            fail(removal.error, EXIT_UNKNOWN)
    sys.exit(EXIT_CODES[found.verdict])


@click.command()
@config_option
@click.option("--log", "logs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An MTA log to analyse with its rotations (repeatable; default [diagnose] logs,"
                   " else /var/log/mail.log or Exim's mainlog).")  # fmt: skip
@click.option("--since", default="7d", show_default=True,
              help="How far back the logs are read: 24h, 7d…")  # fmt: skip
@_queue_options
@click.option("--relaytest", "relay_host", default="", metavar="HOST",
              help="Also probe HOST (your server's public name) for an open relay.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
def diagnose(config_path: Path | None, logs: tuple[Path, ...], since: str, mta: str | None,
             config_dir: Path | None, local_domains: tuple[str, ...], relay_host: str,
             as_json: bool) -> None:  # fmt: skip
    """Why are we listed? Listings, the probable cause with its evidence, and the steps.

    Reads the history (where we are listed, since when), the mail queue (NDR attack, spam
    run), the MTA logs (an account or client sending far more than usual, volume spikes,
    blocklist rejections) and, with --relaytest, probes for an open relay. Exit status 1
    when a listing or a cause was found, 3 when nothing could be checked.

    \b
    Examples:
      blmonitor diagnose
      blmonitor diagnose --log /var/log/mail.log --relaytest mx.example.com --json
    """
    from datetime import UTC, datetime

    from blmonitor.causes import service
    from blmonitor.causes.diagnosis import render_diagnosis
    from blmonitor.cli.output import write_json
    from blmonitor.config import load_config

    now = datetime.now(UTC)
    found = service.run_diagnose(
        load_config(config_path), now=now, logs=logs, since=since, mta=mta,
        config_dir=config_dir, local_domains=local_domains, relay_host=relay_host,
    )  # fmt: skip
    if as_json:
        write_json(service.diagnose_json(found))
    else:
        click.echo(render_diagnosis(found.diagnosis, now=now), nl=False)
    sys.exit(EXIT_CODES[found.verdict])
