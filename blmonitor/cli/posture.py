"""`blmonitor posture`: what receivers judge before any list (PTR, FCrDNS, HELO, SPF, DMARC,
MX), each finding with its fix."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from blmonitor.cli import EXIT_CODES, config_option


@click.command()
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@config_option
@click.option("--resolver", "resolvers", multiple=True, metavar="HOST[:PORT]",
              help="The resolver to ask (repeatable; default [dns] resolver, else the "
                   "system's).")  # fmt: skip
@click.option(
    "--helo",
    default="",
    metavar="NAME",
    help="The HELO name your MTA sends (default: [posture] helo, else Postfix's "
    "smtp_helo_name, else Exim's primary_hostname).",
)
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Postfix's configuration directory, for its HELO name (default: [diagnose] "
    "config_dir, else /etc/postfix).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def posture(targets: tuple[str, ...], config_path: Path | None, resolvers: tuple[str, ...],
            helo: str, config_dir: Path | None, as_json: bool) -> None:  # fmt: skip
    """Check the sender posture receivers judge before any list.

    For each sending IP: a PTR record, forward-confirmed (its name resolves back to the IP),
    not a generic or dynamic-looking name, and the MTA's HELO name resolving to the IP. For
    each sending domain (the domain TARGETs, [posture] domains, else [diagnose]
    local_domains, else [gmail_postmaster] domains): an SPF record that parses, stays within
    10 DNS lookups and covers every sending IP, a DMARC record, an MX. With no TARGET, the
    config's targets. Exit status 1 when a finding is a warning or worse, 0 when there is
    nothing to fix, 3 when a lookup went unanswered.

    \b
    Examples:
      blmonitor posture 203.0.113.5 example.com
      blmonitor posture --helo mail.example.com --resolver 127.0.0.1 --json
    """
    from blmonitor.causes import service
    from blmonitor.causes.posture import posture_json, render_posture
    from blmonitor.cli.output import write_json
    from blmonitor.config import load_config

    report = service.posture(load_config(config_path), targets, resolvers=resolvers, helo=helo,
                             config_dir=config_dir)  # fmt: skip
    if as_json:
        write_json(posture_json(report))
    else:
        click.echo(render_posture(report), nl=False)
    sys.exit(EXIT_CODES[report.verdict])
