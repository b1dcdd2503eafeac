"""`blmonitor check` and `blmonitor zones`: the DNS blocklist check and the catalog."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from blmonitor.cli import EXIT_CODES

if TYPE_CHECKING:
    from blmonitor.dnsbl.engine import ScanWatch


# BLMONITOR_PROGRESS=always shows the progress line and the slow-zone hint even when stderr
# is not a terminal (tests, `script` logs), =never hides them; unset: only at a terminal.
PROGRESS_ENV = "BLMONITOR_PROGRESS"
PROGRESS_DELAY = 2.0  # seconds: a quicker check shows nothing
PROGRESS_EVERY = 0.25


def progress_line(watch: ScanWatch, now: float) -> str:
    """`checking: 120/500 targets, 850 lookups/s, waiting on bl.example.org (2.1 s)`."""
    elapsed = max(now - watch.started, 1e-6)
    line = (
        f"checking: {watch.targets_done}/{watch.targets} targets, "
        f"{watch.done / elapsed:.0f} lookups/s"
    )
    slowest = watch.slowest()
    if slowest is not None:
        line += f", waiting on {slowest.label} ({now - slowest.last:.1f} s)"
    return line


class ProgressDisplay:
    """The progress line on stderr, redrawn from a thread while the scan runs (the scan owns
    the main thread and may be silent for a whole timeout), and the hint once it is over."""

    def __init__(self, watch: ScanWatch, stream: TextIO, *, delay: float = PROGRESS_DELAY) -> None:
        self.watch, self.stream, self.delay = watch, stream, delay
        self.shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    @staticmethod
    def wanted(stream: TextIO) -> bool:
        setting = os.environ.get(PROGRESS_ENV, "").strip().lower()
        if setting in ("always", "never"):
            return setting == "always"
        return stream.isatty()

    def __enter__(self) -> ProgressDisplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.shown:
            from blmonitor.dnsbl.service import slow_zone_hint

            self.stream.write("\r\033[K")
            hint = slow_zone_hint(self.watch)
            if hint and exc[0] is None:
                self.stream.write(f"blmonitor: hint: {hint}\n")
            self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(PROGRESS_EVERY):
            now = self.watch.clock()
            if now - self.watch.started >= self.delay:
                self.stream.write(f"\r\033[K{progress_line(self.watch, now)}")
                self.stream.flush()
                self.shown = True


def _progress(stream: TextIO) -> tuple[ScanWatch | None, AbstractContextManager[object]]:
    """The watch for the scan to fill and the display that shows it, when one is wanted."""
    if not ProgressDisplay.wanted(stream):
        return None, contextlib.nullcontext()
    from blmonitor.dnsbl.engine import ScanWatch

    watch = ScanWatch()
    return watch, ProgressDisplay(watch, stream)


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
    1 listed, 2 usage error, 3 could not determine. Warnings go to stderr (with --json, into
    the document); a check longer than 2 s shows its progress on stderr at a terminal
    (BLMONITOR_PROGRESS=always or never to say otherwise).

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
    watch, display = _progress(sys.stderr)
    with display:
        report = service.check(
            settings, targets, targets_file=targets_file, watch=watch,
            discover=lambda seconds: service.discover_public(
                seconds, ip_urls, local_only=bool(resolvers)
            ),
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
