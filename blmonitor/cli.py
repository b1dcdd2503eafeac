"""The blmonitor command line: each command parses its options, builds the adapters, calls the
core and renders the result. Errors from the core become one line on stderr.

Exit codes (one table for every command; Nagios-compatible where it fits):
    0  clean          1  listed          2  usage or config error          3  could not determine
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__, dnsbl, engine, render
from .errors import BlmonitorError, UsageError
from .models import Report, Severity, Target, Verdict, Zone
from .resolver import DnsClient, Nameserver, parse_nameserver, system_nameservers
from .zones import Catalog, embedded_catalog, load_catalog, select_zones

EXIT_CLEAN = 0
EXIT_LISTED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_CODES = {Verdict.CLEAN: EXIT_CLEAN, Verdict.LISTED: EXIT_LISTED, Verdict.UNKNOWN: EXIT_UNKNOWN}

# Resolvers that DNSBL operators refuse or rate-limit (dnsbl.md §3.2).
PUBLIC_RESOLVERS = {
    "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112",
    "208.67.222.222", "208.67.220.220", "2001:4860:4860::8888", "2001:4860:4860::8844",
    "2606:4700:4700::1111", "2606:4700:4700::1001", "2620:fe::fe",
}  # fmt: skip


class _Group(click.Group):
    """Turns blmonitor's own errors into one line and their exit code (traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BlmonitorError as exc:
            if ctx.params.get("debug"):
                raise
            _fail(str(exc), exc.exit_code)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"blmonitor: error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="blmonitor")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """Keep a mail server off DNS blocklists.

    Example: blmonitor check 203.0.113.5 example.com
    """


def _catalog(lists: Path | None) -> Catalog:
    return load_catalog(lists) if lists is not None else embedded_catalog()


def _read_key(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text("utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read the DQS key file {path}: {exc.strerror}") from exc


def _read_targets(targets: Sequence[str], targets_file: Path | None) -> list[str]:
    texts = list(targets)
    if targets_file is not None:
        try:
            text = sys.stdin.read() if str(targets_file) == "-" else targets_file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {targets_file}: {exc.strerror}") from exc
        texts.extend(line.split("#")[0].strip() for line in text.splitlines())
    return [t for t in texts if t]


def _nameservers(resolvers: Sequence[str]) -> tuple[list[Nameserver], list[str]]:
    servers = [parse_nameserver(r) for r in resolvers] or system_nameservers()
    warnings = [
        f"resolver {s.host} is a public resolver: Spamhaus and other lists refuse or "
        "rate-limit it; use a local recursive resolver (unbound) with --resolver"
        for s in servers
        if s.host in PUBLIC_RESOLVERS
    ]
    return servers, warnings


def _discover(ip_urls: Sequence[str], timeout: float) -> list[Target]:
    from . import publicip  # httpx is slow to import and only needed here

    if ip_urls:
        found = asyncio.run(
            publicip.discover(http_urls=ip_urls, dns_sources=(), use_route=False, timeout=timeout)
        )
    else:
        found = asyncio.run(publicip.discover(timeout=timeout))
    return [dnsbl.parse_target(str(address)) for address in found]


def _progress_bar(total: int) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    if total < 500 or not sys.stderr.isatty():
        return None, lambda: None
    bar = click.progressbar(length=total, label="checking", file=sys.stderr)
    bar.__enter__()
    state = {"shown": 0}

    def update(done: int, _total: int) -> None:
        if done - state["shown"] >= 100 or done == _total:
            bar.update(done - state["shown"])
            state["shown"] = done

    return update, lambda: bar.__exit__(None, None, None)


async def _run_check(
    targets: list[Target],
    zones: list[Zone],
    servers: list[Nameserver],
    *,
    timeout: float,
    concurrency: int,
    zone_concurrency: int | None,
    fail_on: Severity,
) -> Report:
    total = len(targets) * len(zones)
    progress, close = _progress_bar(total)
    try:
        async with DnsClient(servers, timeout=timeout) as client:
            report = await engine.check(
                targets,
                zones,
                client,
                concurrency=concurrency,
                zone_concurrency=zone_concurrency,
                fail_on=fail_on,
                progress=progress,
            )
            return dataclasses.replace(report, queries=client.queries, retries=client.retries)
    finally:
        close()


@main.command()
@click.argument("targets", nargs=-1)
@click.option(
    "-z",
    "--zone",
    "zone_specs",
    multiple=True,
    metavar="NAME",
    help="Zone to check: catalog id or name, 'default', or any zone as "
    "NAME[:ipv4,ipv6,domain] (repeatable; default: the catalog's default set).",
)
@click.option(
    "--lists",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this zone catalog (TOML) instead of the embedded one.",
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
    default=5.0,
    show_default=True,
    help="Seconds one lookup may take, retries included.",
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
    default="warning",
    show_default=True,
    help="Lowest listing severity that makes the verdict 'listed'.",
)
@click.option(
    "--ip-url",
    "ip_urls",
    multiple=True,
    metavar="URL",
    help="HTTP endpoint that returns this machine's public IP (repeatable; "
    "replaces the built-in discovery when no TARGET is given).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(
    targets: tuple[str, ...],
    zone_specs: tuple[str, ...],
    lists: Path | None,
    resolvers: tuple[str, ...],
    timeout: float,
    concurrency: int | None,
    targets_file: Path | None,
    dqs_key_file: Path | None,
    fail_on: str,
    ip_urls: tuple[str, ...],
    as_json: bool,
) -> None:
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
    catalog = _catalog(lists)
    zones, warnings = select_zones(catalog, zone_specs, dqs_key=_read_key(dqs_key_file))
    servers, resolver_warnings = _nameservers(resolvers)
    texts = _read_targets(targets, targets_file)
    parsed = dnsbl.expand_targets(texts) if texts else _discover(ip_urls, timeout)
    if not zones:
        raise UsageError("no zones to check: give --zone NAME or a catalog with default zones")
    started = time.monotonic()
    report = asyncio.run(
        _run_check(
            parsed,
            zones,
            servers,
            timeout=timeout,
            concurrency=concurrency or 256,
            zone_concurrency=concurrency,
            fail_on=Severity.parse(fail_on),
        )
    )
    report = dataclasses.replace(
        report,
        warnings=(*warnings, *resolver_warnings),
        seconds=time.monotonic() - started,
    )
    if as_json:
        click.echo(json.dumps(render.report_json(report), indent=1))
    else:
        click.echo(render.render_text(report))
    sys.exit(EXIT_CODES[report.verdict])


@main.command()
@click.option(
    "--lists",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Show this catalog instead of the embedded one.",
)
@click.option("--all", "show_all", is_flag=True, help="Include dead and non-default zones.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def zones(lists: Path | None, show_all: bool, as_json: bool) -> None:
    """List the zones of the catalog: the default set, or --all of them.

    \b
    Examples:
      blmonitor zones
      blmonitor zones --all --json
    """
    catalog = _catalog(lists)
    chosen = catalog.zones if show_all else catalog.defaults
    if as_json:
        entries = [
            {
                "id": z.id,
                "zone": z.name,
                "takes": sorted(z.takes),
                "kind": str(z.kind),
                "default": z.default,
                "status": str(z.status),
                "status_date": z.status_date,
                "access": z.access,
                "fair_use": z.fair_use,
            }
            for z in chosen
        ]
        click.echo(json.dumps(entries, indent=1))
        return
    rows = [["id", "zone", "takes", "kind", "status", "default"]] + [
        [z.id, z.name, ",".join(sorted(z.takes)), str(z.kind), str(z.status),
         "yes" if z.default else ""]
        for z in chosen
    ]  # fmt: skip
    click.echo("\n".join(line[2:] for line in render.table(rows)))
