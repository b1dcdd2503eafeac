"""`blmonitor check` and `blmonitor zones`: the DNS blocklist check and the catalog."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from blmonitor.cli import EXIT_CODES


def _progress_bar(total: int) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A bar on stderr for a big check at a terminal; nothing otherwise."""
    if total < 500 or not sys.stderr.isatty():
        return None, lambda: None
    bar = click.progressbar(length=total, label="checking", file=sys.stderr)
    bar.__enter__()
    shown = [0]

    def update(done: int, _total: int) -> None:
        if done - shown[0] >= 100 or done == _total:
            bar.update(done - shown[0])
            shown[0] = done

    return update, lambda: bar.__exit__(None, None, None)


@click.command()
@click.argument("targets", nargs=-1)
@click.option(
    "-z",
    "--zone",
    "zone_specs",
    multiple=True,
    metavar="NAME",
    help="Zone to check: catalog id or name; 'default' (the default set), 'alive' (every "
    "zone known alive) or 'all' (every zone not known dead); or any zone as "
    "NAME[:ipv4,ipv6,domain] (repeatable; default: the default set).",
)
@click.option(
    "--lists",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Zone catalog (TOML) laid over the embedded one: its zones replace those with the "
    "same id or name and add the others; its default zones, if it has any, are the default set.",
)
@click.option(
    "-r",
    "--resolver",
    "resolvers",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Recursive resolver to ask (repeatable; default: /etc/resolv.conf).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds one lookup may take, retries included (default 5).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Lookups in flight, total and per zone (default 256 total, the catalog's "
    "polite limit per zone); raise it for a local mirror.",
)
@click.option(
    "-f",
    "--targets-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read more targets from FILE, one per line ('-' for stdin).",
)
@click.option(
    "--dqs-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Spamhaus DQS key: Spamhaus zones are then asked through DQS.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["info", "warning", "critical"]),
    default=None,
    help="Lowest listing severity that makes the verdict 'listed' (default warning).",
)
@click.option(
    "--ip-url",
    "ip_urls",
    multiple=True,
    metavar="URL",
    help="HTTP endpoint that returns this machine's public IP (repeatable; "
    "replaces the built-in discovery when no TARGET is given).",
)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Take zones, catalog, resolvers, DQS key, timeout and --fail-on from this "
                   "config when not given as options (default: /etc/blmonitor/config.toml, if "
                   "it exists).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(targets: tuple[str, ...], zone_specs: tuple[str, ...], lists: Path | None,
          resolvers: tuple[str, ...], timeout: float | None, concurrency: int | None,
          targets_file: Path | None, dqs_key_file: Path | None, fail_on: str | None,
          ip_urls: tuple[str, ...], config_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Check IPs, CIDR blocks and domains against DNS blocklists.

    With no TARGET, the public IP of this machine is checked. Exit status: 0 clean,
    1 listed, 2 usage error, 3 could not determine.

    \b
    Examples:
      blmonitor check
      blmonitor check 203.0.113.5 2001:db8::25 example.com
      blmonitor check 203.0.113.0/28 --zone zen.spamhaus.org --resolver 127.0.0.1
      blmonitor check -f ips.txt --resolver 10.0.0.53 --concurrency 2000 --json
    """
    from blmonitor.config import config_exists, load_config
    from blmonitor.dnsbl import service

    # the monitor's settings, unless an option says otherwise
    config = load_config(config_path) if config_exists(config_path) else None
    settings = service.check_settings(
        config, zones=zone_specs, lists=lists, resolvers=resolvers, dqs_key_file=dqs_key_file,
        timeout=timeout, concurrency=concurrency, fail_on=fail_on,
    )  # fmt: skip
    report = service.check(
        settings, targets, targets_file=targets_file, progress_for=_progress_bar,
        discover=lambda seconds: service.discover_public(seconds, ip_urls),
    )  # fmt: skip
    if as_json:  # the document keeps its "warnings": a program reads them there
        from blmonitor.cli.output import write_report_json

        write_report_json(report)
    else:  # warnings are about the run, not results: stderr, so stdout stays the report
        from dataclasses import replace

        from blmonitor.dnsbl.report import render_text

        click.echo(render_text(replace(report, warnings=())))
        for warning in report.warnings:
            click.echo(f"blmonitor: warning: {warning}", err=True)
    sys.exit(EXIT_CODES[report.verdict])


@click.command()
@click.option(
    "--lists",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Zone catalog (TOML) laid over the embedded one (as for check --lists).",
)
@click.option("-z", "--zone", "zone_specs", multiple=True, metavar="NAME",
              help="Show these zones, as check --zone takes them: 'default', 'alive', 'all', "
                   "ids or names (default: the config's [monitor] zones).")  # fmt: skip
@click.option("--all", "show_all", is_flag=True,
              help="Every zone of the catalog, dead ones included.")  # fmt: skip
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config whose [monitor] zones (through its catalog) are shown, with each "
                   "zone's last health from its history (default: /etc/blmonitor/config.toml, "
                   "all defaults when it is missing).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the zones as JSON.")
def zones(lists: Path | None, zone_specs: tuple[str, ...], show_all: bool,
          config_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """List the zones the monitor asks (the config's [monitor] zones; without a config, the
    default set), or --all of the catalog: kind, status with its date and source, access
    (registration, key, Spamhaus DQS), and each zone's last health from the history.

    \b
    Examples:
      blmonitor zones
      blmonitor zones -c /etc/blmonitor/config.toml
      blmonitor zones -z alive
      blmonitor zones --all --json
    """
    from blmonitor.cli.output import write_json
    from blmonitor.config import load_config
    from blmonitor.dnsbl import service

    listing = service.list_zones(
        load_config(config_path), lists=lists, specs=zone_specs, show_all=show_all
    )
    if as_json:
        write_json(service.zones_json(listing))
    else:
        click.echo(service.render_zones(listing))
    for warning in listing.warnings:
        click.echo(f"blmonitor: warning: {warning}", err=True)
