"""`blmonitor run`, `status`, `history` and `notify`: the monitor and what it has recorded."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from blmonitor.cli import EXIT_CODES, EXIT_UNKNOWN, config_option, fail
from blmonitor.errors import UsageError


@click.command()
@config_option
@click.option("--once", is_flag=True, help="One run, then exit (for cron and systemd timers).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@click.option("--listen", "--metrics", "listen", default="", metavar="HOST:PORT",
              help="Serve the live page, /metrics, /healthz and /api/status on HOST:PORT "
                   "(:9469 = 127.0.0.1:9469); --metrics is the old name.")  # fmt: skip
@click.option("--listen-password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="HTTP basic auth for --listen: the password on the file's first line "
                   "(needed for an address other than loopback).")  # fmt: skip
def run(
    config_path: Path | None,
    once: bool,
    verbose: bool,
    listen: str,
    listen_password_file: Path | None,
) -> None:
    """Monitor: check now, then every [monitor] interval; notify changes only.

    Logs go to stderr (journald-friendly). SIGTERM ends after the current run's write;
    SIGHUP reloads the config.

    \b
    Examples:
      blmonitor run --config /etc/blmonitor/config.toml
      blmonitor run --once
      blmonitor run --listen 127.0.0.1:9469
    """
    from blmonitor.monitor.daemon import serve, setup_logging

    setup_logging(verbose=verbose)
    sys.exit(serve(config_path, once=once, metrics=listen, password_file=listen_password_file))


@click.command()
@config_option
@click.option("--html", "html_path", required=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to FILE: one HTML file, no external assets.")  # fmt: skip
@click.option(
    "--since",
    default="90d",
    show_default=True,
    help="The timeline's window: a duration (30d) or a date (2026-11-01).",
)
def report(config_path: Path | None, html_path: Path, since: str) -> None:
    """The history as one HTML page: verdict, timelines, listings, zones, causes, events.

    Reads the history database only; the file needs no network and no JavaScript, so it can
    be opened from disk or sent by mail.

    \b
    Examples:
      blmonitor report --html /tmp/blmonitor.html
      blmonitor report --html report.html --since 30d -c /etc/blmonitor/config.toml
    """
    from datetime import UTC, datetime

    from blmonitor.config import load_config
    from blmonitor.monitor.page import read_page
    from blmonitor.monitor.page_html import render_page
    from blmonitor.monitor.status import parse_since

    now = datetime.now(UTC).replace(microsecond=0)
    page = read_page(load_config(config_path), now=now, since=parse_since(since, now=now))
    text = render_page(page)
    if html_path.exists() and not html_path.is_file():  # never replace a device or a FIFO
        raise UsageError(f"cannot write {html_path}: not a regular file; name a new file")
    partial = html_path.with_name(f".{html_path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(html_path)  # a reader never sees half a page
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {html_path}: {exc.strerror or exc}") from None
    click.echo(f"{html_path}: {page.headline}, {len(page.timelines)} target(s), "
               f"{len(text) // 1024} KB")  # fmt: skip


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path: Path | None, as_json: bool) -> None:
    """What is listed now, since when, and what to do; zone health; last and next check.

    Exit status: 0 nothing listed, 1 listed (or a listing being confirmed), 3 no check has
    run yet or the last one saw nothing it could trust (UNKNOWN).

    \b
    Examples:
      blmonitor status
      blmonitor status --json
    """
    from datetime import UTC, datetime

    from blmonitor.cli.output import write_json
    from blmonitor.config import load_config
    from blmonitor.monitor.status import read_status, render_status, status_json

    found = read_status(load_config(config_path))
    if as_json:
        write_json(status_json(found))
    else:
        click.echo(render_status(found, now=datetime.now(UTC)))
    sys.exit(EXIT_CODES[found.verdict])


@click.command()
@config_option
@click.option("--since", help="Only episodes open or ended after this: 7d, 24h, or a date "
                              "(2026-11-01).")  # fmt: skip
@click.option("--target", default="", help="Only this address or domain.")
@click.option("--zone", default="", help="Only this zone (as shown, e.g. zen.spamhaus.org).")
@click.option("--json", "as_json", is_flag=True, help="Print the episodes as JSON.")
def history(
    config_path: Path | None, since: str | None, target: str, zone: str, as_json: bool
) -> None:
    """Listing episodes: since when, how often, for how long.

    \b
    Examples:
      blmonitor history
      blmonitor history --since 30d --target 203.0.113.5 --json
    """
    from datetime import UTC, datetime

    from blmonitor.cli.output import write_json
    from blmonitor.config import load_config
    from blmonitor.monitor.status import history_json, parse_since, read_history, render_history

    cutoff = parse_since(since, now=datetime.now(UTC)) if since else None
    found = read_history(load_config(config_path), since=cutoff, target=target, zone=zone)
    if as_json:
        write_json(history_json(found))
    else:
        click.echo(render_history(found))


@click.command()
@config_option
@click.option("--test", "send_test", is_flag=True, required=True,
              help="Send a test message to every configured target.")  # fmt: skip
def notify(config_path: Path | None, send_test: bool) -> None:
    """Send a test notification to every target in [notify].

    \b
    Example:
      blmonitor notify --test --config /etc/blmonitor/config.toml
    """
    from blmonitor.config import load_config
    from blmonitor.monitor.notify import render_test_message
    from blmonitor.monitor.run import notifier_for, server_name

    config = load_config(config_path)
    notifier = notifier_for(config)
    if notifier is None:
        raise UsageError(f"{config.source}: [notify] has no urls and no apprise_config")
    for target in notifier.targets():
        click.echo(f"target: {target}")
    delivery = notifier.send(render_test_message(server_name(config), config.notify.title_prefix))
    if not delivery.ok:
        fail(f"test notification failed after {delivery.attempts} attempt(s): {delivery.error}",
             EXIT_UNKNOWN)  # fmt: skip
    click.echo(f"sent to {len(notifier.targets())} target(s)")
