"""`blmonitor explain` and `blmonitor bounces scan`: which blocklist rejected our mail."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from blmonitor.cli import EXIT_CODES


@click.command()
@click.argument("text")
@click.option("--remote-mta", default="", metavar="HOST",
              help="The receiving server, when known (e.g. mx.outlook.com).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the attribution as JSON.")
def explain(text: str, remote_mta: str, as_json: bool) -> None:
    """Which blocklist a pasted SMTP rejection names, and what to do, in plain words.

    TEXT is the rejection as the bounce or log shows it; '-' reads it from stdin. Exit status:
    1 when it names a listing of ours, else 0.

    \b
    Examples:
      blmonitor explain "554 5.7.1 Client host [203.0.113.5] blocked using zen.spamhaus.org"
      blmonitor explain - --json < rejection.txt
    """
    from blmonitor.bounces import service
    from blmonitor.cli.output import write_json

    attribution = service.explain(sys.stdin.read() if text == "-" else text, remote_mta=remote_mta)
    if as_json:
        write_json(service.attribution_json(attribution))
    else:
        rendered = service.render_explanation(attribution)
        if rendered:
            click.echo(rendered)
    sys.exit(EXIT_CODES[service.verdict_of([attribution])])


@click.group()
def bounces() -> None:
    """Read returned bounces and MTA logs: which blocklist rejected our mail.

    Example: blmonitor bounces scan /var/mail/postmaster
    """


@bounces.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, allow_dash=True, path_type=Path))  # fmt: skip
@click.option("--json", "as_json", is_flag=True,
              help="One object per recipient record, with its attribution.")  # fmt: skip
def scan(paths: tuple[Path, ...], as_json: bool) -> None:
    """Scan .eml files, mbox files, Maildirs, directories or MTA logs ('-' for stdin).

    Prints a table per blocklist: how many bounces, first and last seen, the listed IPs and
    the delist link. Exit status: 1 when some bounce names a listing of ours, else 0.

    \b
    Examples:
      blmonitor bounces scan ~/Maildir/.bounces /var/mail/postmaster
      blmonitor bounces scan /var/log/mail.log --json
    """
    from blmonitor.bounces import service
    from blmonitor.cli.output import write_json

    found = service.scan_bounces(paths)
    if as_json:
        write_json(service.scan_json(found))
    else:
        click.echo(service.render_scan(found))
    sys.exit(EXIT_CODES[found.verdict])
