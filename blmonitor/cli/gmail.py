"""`blmonitor gmail-postmaster`: the one-time OAuth login for Gmail Postmaster Tools, and one
poll shown now. The flow is `sources/gmail_login.py`'s, the poll `sources/gmail.py`'s."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from blmonitor.cli import EXIT_CODES, config_option


@click.group("gmail-postmaster")
def gmail_postmaster() -> None:
    """Gmail Postmaster Tools: the reputation Gmail gives your domains and IPs.

    Set it up once with `login`, then list the domains in [gmail_postmaster].

    \b
    Examples:
      blmonitor gmail-postmaster login --client-secrets client_secret.json
      blmonitor gmail-postmaster show
    """


@gmail_postmaster.command("login")
@config_option
@click.option(
    "--client-secrets",
    required=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Desktop app OAuth client's JSON, from the Google Cloud console.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the credentials (default: [gmail_postmaster] credentials_file).",
)
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The loopback port Google redirects to (0: any free one).",
)
@click.option(
    "--wait",
    default="5m",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for the browser.",
)
@click.option("--auth-url", default="https://accounts.google.com/o/oauth2/auth",
              show_default=True, help="Google's consent endpoint.")  # fmt: skip
def login(config_path: Path | None, client_secrets: Path, out: Path | None, force: bool,
          port: int, wait: str, auth_url: str) -> None:  # fmt: skip
    """Grant blmonitor read access to your Postmaster Tools data, once.

    Prints a URL to open in a browser on this machine (on a server: forward the port with
    `ssh -L PORT:127.0.0.1:PORT` and give --port). Google redirects to a listener on
    127.0.0.1; the refresh token is written to a 0600 file. Nothing secret is printed.

    \b
    Example:
      blmonitor gmail-postmaster login --client-secrets client_secret.json \\
          --out /var/lib/blmonitor/gmail-postmaster.json
    """
    from blmonitor.config import load_config
    from blmonitor.config.table import parse_duration
    from blmonitor.errors import UsageError
    from blmonitor.sources.gmail_login import login as run_login

    settings = load_config(config_path).gmail_postmaster
    target = out or settings.credentials_file
    if target is None:
        raise UsageError("give --out FILE, or set [gmail_postmaster] credentials_file")
    try:
        seconds = parse_duration(wait)
    except ValueError as exc:
        raise UsageError(f"--wait: {exc}") from None

    def show(url: str) -> None:
        click.echo(f"Open this URL in a browser on this machine and allow access:\n\n{url}\n")

    written = run_login(client_secrets, target, token_url=settings.token_url, auth_url=auth_url,
                        port=port, wait=seconds, force=force, show=show)  # fmt: skip
    click.echo(f"Wrote {written} (mode 0600). Set [gmail_postmaster] credentials_file to it.")


@gmail_postmaster.command("show")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the poll as JSON.")
def show(config_path: Path | None, as_json: bool) -> None:
    """Poll Gmail Postmaster Tools now and print what it says.

    Each [gmail_postmaster] domain's latest day: its reputation, SPF/DKIM/DMARC and spam
    ratios, delivery errors, and the rating of your IPs among those Gmail samples. Exit
    status 1 for a blocklist error or a LOW/BAD rating, 3 when it could not be read.

    \b
    Examples:
      blmonitor gmail-postmaster show
      blmonitor gmail-postmaster show --json
    """
    from datetime import UTC, datetime

    from blmonitor.cli.output import write_json
    from blmonitor.config import load_config
    from blmonitor.sources import postmaster
    from blmonitor.sources.gmail import our_addresses, poll_gmail

    config = load_config(config_path)
    result = poll_gmail(config, our_addresses(config), now=datetime.now(UTC))
    if as_json:
        write_json(postmaster.result_json(result))
    else:
        click.echo(postmaster.render_result(result), nl=False)
    sys.exit(EXIT_CODES[postmaster.verdict(result)])
