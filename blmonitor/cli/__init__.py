"""The blmonitor command line: each command parses its options, builds the adapters, calls the
core and renders the result. Errors from the core become one line on stderr.

Exit codes (one table for every command; Nagios-compatible where it fits):
    0  clean          1  listed          2  usage or config error          3  could not determine
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from blmonitor import __version__
from blmonitor.dnsbl import answers as dnsbl
from blmonitor.dnsbl import engine
from blmonitor.dnsbl import report as render
from blmonitor.dnsbl.catalog import catalog_from, read_dqs_key, select_zones
from blmonitor.dnsbl.resolver import Nameserver, parse_nameserver, system_nameservers
from blmonitor.errors import BlmonitorError, UsageError
from blmonitor.models import Severity, Target, Verdict

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


def _read_targets(targets: Sequence[str], targets_file: Path | None) -> list[str]:
    texts = list(targets)
    if targets_file is not None:
        try:
            text = sys.stdin.read() if str(targets_file) == "-" else targets_file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {targets_file}: {exc.strerror}") from exc
        texts.extend(line.split("#")[0].strip() for line in text.splitlines())
    return [t for t in texts if t]


def _nameservers(
    resolvers: Sequence[str], configured: Sequence[Nameserver] = ()
) -> tuple[list[Nameserver], list[str]]:
    servers = [parse_nameserver(r) for r in resolvers] or list(configured) or system_nameservers()
    warnings = [
        f"resolver {s.host} is a public resolver: Spamhaus and other lists refuse or "
        "rate-limit it; use a local recursive resolver (unbound) with --resolver"
        for s in servers
        if s.host in PUBLIC_RESOLVERS
    ]
    return servers, warnings


def _discover(ip_urls: Sequence[str], timeout: float) -> list[Target]:
    from blmonitor.dnsbl import publicip  # httpx is slow to import and only needed here

    if ip_urls:
        found = asyncio.run(
            publicip.discover(http_urls=ip_urls, dns_sources=(), use_route=False, timeout=timeout)
        )
    else:
        found = asyncio.run(publicip.discover(timeout=timeout))
    return [dnsbl.parse_target(str(address)) for address in found]


def _echo_json(data: Any) -> None:
    """Indented for a person at a terminal; compact for programs (the C encoder is many
    times faster, which matters for a 50,000-result report)."""
    if sys.stdout.isatty():
        click.echo(json.dumps(data, indent=1))
    else:
        click.echo(json.dumps(data, separators=(",", ":")))


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
def check(
    targets: tuple[str, ...],
    zone_specs: tuple[str, ...],
    lists: Path | None,
    resolvers: tuple[str, ...],
    timeout: float | None,
    concurrency: int | None,
    targets_file: Path | None,
    dqs_key_file: Path | None,
    fail_on: str | None,
    ip_urls: tuple[str, ...],
    config_path: Path | None,
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
    from blmonitor.config import config_exists, load_config

    servers: list[Nameserver] = []
    if config_exists(config_path):  # the monitor's settings, unless an option says otherwise
        config = load_config(config_path)
        zone_specs = zone_specs or config.monitor.zones
        lists = lists or config.monitor.lists
        dqs_key_file = dqs_key_file or config.dns.dqs_key_file
        timeout = timeout or config.dns.timeout
        fail_on = fail_on or config.monitor.fail_on.label
        concurrency = concurrency or config.dns.concurrency or None
        servers = [] if resolvers else list(config.dns.resolver)
    timeout = timeout or 5.0
    catalog = catalog_from(lists)
    zones, warnings = select_zones(catalog, zone_specs, dqs_key=read_dqs_key(dqs_key_file))
    servers, resolver_warnings = _nameservers(resolvers, servers)
    texts = _read_targets(targets, targets_file)
    parsed = dnsbl.expand_targets(texts) if texts else _discover(ip_urls, timeout)
    if not zones:
        raise UsageError("no zones to check: give --zone NAME or a catalog with default zones")
    started = time.monotonic()
    progress, close = _progress_bar(len(parsed) * len(zones))
    try:
        report = engine.scan(
            parsed,
            zones,
            servers,
            timeout=timeout,
            concurrency=concurrency,
            fail_on=Severity.parse(fail_on or "warning"),
            progress=progress,
        )
    finally:
        close()
    report = dataclasses.replace(
        report,
        warnings=(*warnings, *resolver_warnings),
        seconds=time.monotonic() - started,
    )
    if as_json:
        if sys.stdout.isatty():
            _echo_json(render.report_json(report))
        else:
            click.echo(render.report_json_text(report))
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
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config whose history gives each zone's last health (default: "
                   "/etc/blmonitor/config.toml).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def zones(lists: Path | None, show_all: bool, config_path: Path | None, as_json: bool) -> None:
    """List the zones of the catalog: the default set, or --all of them, with each zone's
    last health from the monitor's history when there is one.

    \b
    Examples:
      blmonitor zones
      blmonitor zones --all --json
    """
    catalog = catalog_from(lists)
    chosen = catalog.zones if show_all else catalog.defaults
    health: dict[str, Any] = {}
    _, store = _open(config_path)
    if store is not None:
        try:
            health = dict(store.load_state().zones)
        finally:
            store.close()

    def last_health(name: str) -> str | None:
        known = health.get(name)
        return known.health if known is not None else None

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
                "last_health": last_health(z.name),
            }
            for z in chosen
        ]
        _echo_json(entries)
        return
    rows = [["id", "zone", "takes", "kind", "status", "default", "last health"]] + [
        [z.id, z.name, ",".join(sorted(z.takes)), str(z.kind), str(z.status),
         "yes" if z.default else "", last_health(z.name) or "-"]
        for z in chosen
    ]  # fmt: skip
    click.echo("\n".join(line[2:] for line in render.table(rows)))


# --- the monitor ---------------------------------------------------------------------------

_CONFIG_OPTION = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default /etc/blmonitor/config.toml; all defaults when it is missing).",
)  # fmt: skip


def _open(config_path: Path | None) -> tuple[Any, Any]:
    """The config and its history database; None for the store when no run has made one
    yet (reading commands never create a database)."""
    from blmonitor.config import load_config
    from blmonitor.monitor.store import Store

    config = load_config(config_path)
    if not config.monitor.database.exists():
        return config, None
    return config, Store(config.monitor.database)


@main.command()
@_CONFIG_OPTION
@click.option("--once", is_flag=True, help="One run, then exit (for cron and systemd timers).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@click.option("--metrics", default="", metavar="HOST:PORT",
              help="Serve Prometheus metrics on HOST:PORT (:9469 = 127.0.0.1:9469).")  # fmt: skip
def run(config_path: Path | None, once: bool, verbose: bool, metrics: str) -> None:
    """Monitor: check now, then every [monitor] interval; notify changes only.

    Logs go to stderr (journald-friendly). SIGTERM ends after the current run's write;
    SIGHUP reloads the config.

    \b
    Examples:
      blmonitor run --config /etc/blmonitor/config.toml
      blmonitor run --once
      blmonitor run --metrics 127.0.0.1:9469
    """
    from blmonitor.monitor.daemon import serve, setup_logging

    setup_logging(verbose=verbose)
    sys.exit(serve(config_path, once=once, metrics=metrics))


def _ago(moment: str | None, now: Any) -> str:
    from datetime import datetime

    if not moment:
        return "?"
    span = now - datetime.fromisoformat(moment)
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


@main.command()
@_CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path: Path | None, as_json: bool) -> None:
    """What is listed now, since when, and what to do; zone health; last and next check.

    Exit status: 0 nothing listed, 1 listed, 3 no check has run yet or the last one failed.

    \b
    Examples:
      blmonitor status
      blmonitor status --json
    """
    from datetime import UTC, datetime, timedelta

    from blmonitor.monitor.state import MonitorState

    config, store = _open(config_path)
    state, last = MonitorState(), None
    routing: dict[str, Any] | None = None
    findings: list[str] = []
    if store is not None:
        try:
            state = store.load_state()
            last = store.last_run()
            actions = store.smarthost_actions()
            if actions and actions[0]["outcome"] in ("done", "requested", "recommended"):
                routing = actions[0]
            findings = list(store.load_causes().messages)
        finally:
            store.close()
    now = datetime.now(UTC)
    listed = sorted((p for p in state.pairs.values() if p.listed), key=lambda p: (p.target, p.zone))
    bounced = sorted(state.bounces.values(), key=lambda b: (b.target, b.list))
    pending = sorted(
        (p for p in state.pairs.values() if p.candidate is not None),
        key=lambda p: (p.target, p.zone),
    )
    sick = sorted((z for z in state.zones.values() if not z.usable), key=lambda z: z.zone)
    next_run = (
        datetime.fromisoformat(last["started"]) + timedelta(seconds=config.monitor.interval)
        if last
        else None
    )
    data = {
        "listed": [
            {"target": p.target, "zone": p.label, "codes": list(p.codes), "meaning": p.meaning,
             "severity": p.severity.label if p.severity else None,
             "since": p.since.isoformat() if p.since else None, "delist_url": p.delist_url or None}
            for p in listed
        ],
        "pending": [
            {"target": p.target, "zone": p.label, "change": "listed" if p.candidate else "delisted",
             "seen": p.streak, "of": config.monitor.confirm,
             "since": p.candidate_since.isoformat() if p.candidate_since else None}
            for p in pending
        ],
        "zones": [
            {"zone": z.label, "health": z.health, "detail": z.detail,
             "since": z.since.isoformat() if z.since else None}
            for z in sick
        ],
        "bounce_listings": [
            {"target": b.target or None, "list": b.list, "provider": b.provider or None,
             "since": b.since.isoformat(), "last_seen": b.last_seen.isoformat(),
             "bounces": b.count, "delist_url": b.delist_url or None}
            for b in bounced
        ],
        "smarthost": routing,
        "findings": findings,
        "last_run": last,
        "next_run": next_run.isoformat() if next_run else None,
        "database": str(config.monitor.database),
    }  # fmt: skip
    blocked = listed or bounced
    code = EXIT_UNKNOWN if not last or last["error"] else EXIT_LISTED if blocked else EXIT_CLEAN
    if as_json:
        click.echo(json.dumps(data, indent=1))
        sys.exit(code)
    if not last:
        click.echo(f"no check has run yet (database {config.monitor.database}): "
                   "start one with 'blmonitor run --once'")  # fmt: skip
        sys.exit(code)
    if listed:
        click.echo(f"LISTED ({len(listed)})")
        rows = [["target", "zone", "codes", "severity", "since", "for"]]
        for p in listed:
            since = p.since.isoformat(timespec="minutes") if p.since else "?"
            rows.append([p.target, p.label, ",".join(p.codes),
                         p.severity.label if p.severity else "", since,
                         _ago(p.since.isoformat() if p.since else None, now)])  # fmt: skip
        click.echo("\n".join(render.table(rows)))
        for p in listed:
            click.echo(f"  {p.target} on {p.label}: {p.meaning}")
            if p.delist_url:
                click.echo(f"      delist: {p.delist_url}")
        click.echo("")
    if bounced:
        click.echo(f"LISTED, FROM RETURNED MAIL ({len(bounced)})")
        rows = [["target", "list", "bounces", "first", "last"]]
        rows += [[b.target or "?", b.list, str(b.count), b.since.isoformat(timespec="minutes"),
                  b.last_seen.isoformat(timespec="minutes")] for b in bounced]  # fmt: skip
        click.echo("\n".join(render.table(rows)))
        for b in bounced:
            if b.delist_url:
                click.echo(f"  {b.list}: delist: {b.delist_url}")
        click.echo("")
    if pending:
        click.echo("CHANGES NOT CONFIRMED YET")
        for p in pending:
            change = "listed" if p.candidate else "delisted"
            click.echo(f"  {p.target} {change} on {p.label}: seen {p.streak} of "
                       f"{config.monitor.confirm} runs")  # fmt: skip
        click.echo("")
    if sick:
        click.echo("ZONES NOT USABLE")
        click.echo("\n".join(render.table(
            [["zone", "health", "since", "why"]]
            + [[z.label, z.health, z.since.isoformat(timespec="minutes") if z.since else "?",
                z.detail] for z in sick])))  # fmt: skip
        click.echo("")
    if routing is not None and routing["action"] == "apply":
        how = {"done": "goes through", "requested": "was asked to go through",
               "recommended": "should go through (recommended)"}[routing["outcome"]]  # fmt: skip
        click.echo(f"SMART HOST: outbound mail {how} {routing['relay']} since {routing['at']}")
        click.echo("")
    if findings:
        click.echo("SIGNS OF A CAUSE (blmonitor diagnose tells more)")
        click.echo("\n".join(f"  {line}" for line in findings))
        click.echo("")
    verdict = "LISTED" if blocked else "CLEAN"
    failed = f", failed: {last['error']}" if last["error"] else ""
    upcoming = next_run.isoformat(timespec="minutes") if next_run else "?"
    click.echo(
        f"{verdict}: last check {last['finished']} ({_ago(last['finished'], now)} ago, "
        f"{last['verdict']}{failed}); next about {upcoming}"
    )
    sys.exit(code)


@main.command()
@_CONFIG_OPTION
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
    from datetime import UTC, datetime, timedelta

    from blmonitor.config import parse_duration
    from blmonitor.errors import ConfigError

    now = datetime.now(UTC)
    cutoff = None
    if since:
        try:
            cutoff = now - timedelta(seconds=parse_duration(since))
        except ConfigError:
            try:
                cutoff = datetime.fromisoformat(since)
            except ValueError:
                raise UsageError(f"--since {since!r}: give a duration (7d, 24h) or a date "
                                 "(2026-11-01)") from None  # fmt: skip
            if cutoff.tzinfo is None:
                cutoff = cutoff.replace(tzinfo=UTC)
    _, store = _open(config_path)
    episodes: list[dict[str, Any]] = []
    zone_episodes: list[dict[str, Any]] = []
    if store is not None:
        try:
            episodes = store.episodes(since=cutoff, target=target, zone=zone)
            zone_episodes = store.zone_episodes(since=cutoff, zone=zone)
        finally:
            store.close()
    for episode in episodes:
        end = datetime.fromisoformat(episode["ended"] or episode["last_seen"])
        episode["seconds"] = int(
            (end - datetime.fromisoformat(episode["first_seen"])).total_seconds()
        )
        episode["severity"] = Severity(episode["severity"]).label if episode["severity"] else None
    if as_json:
        click.echo(json.dumps({"episodes": episodes, "zone_episodes": zone_episodes}, indent=1))
        return
    if not episodes and not zone_episodes:
        click.echo(
            "no listing episodes"
            + (f" since {cutoff.isoformat(timespec='minutes')}" if cutoff else "")
        )
        return
    if episodes:
        rows = [["target", "zone", "codes", "first seen", "ended", "lasted"]]
        for e in episodes:
            hours, rest = divmod(e["seconds"] // 60, 60)
            rows.append([e["target"], e["zone"], ",".join(e["codes"]), e["first_seen"],
                         e["ended"] or "still listed", f"{hours} h {rest} min"])  # fmt: skip
        click.echo(f"LISTING EPISODES ({len(episodes)})")
        click.echo("\n".join(render.table(rows)))
    if zone_episodes:
        click.echo(f"ZONE EPISODES ({len(zone_episodes)})")
        click.echo("\n".join(render.table(
            [["zone", "health", "first seen", "ended"]]
            + [[z["zone"], z["health"], z["first_seen"], z["ended"] or "ongoing"]
               for z in zone_episodes])))  # fmt: skip


@main.command()
@_CONFIG_OPTION
@click.option("--test", "send_test", is_flag=True, required=True,
              help="Send a test message to every configured target.")  # fmt: skip
def notify(config_path: Path | None, send_test: bool) -> None:
    """Send a test notification to every target in [notify].

    \b
    Example:
      blmonitor notify --test --config /etc/blmonitor/config.toml
    """
    import socket

    from blmonitor.config import load_config
    from blmonitor.monitor.notify import render_test_message
    from blmonitor.monitor.run import notifier_for

    config = load_config(config_path)
    notifier = notifier_for(config)
    if notifier is None:
        raise UsageError(f"{config.source}: [notify] has no urls and no apprise_config")
    for target in notifier.targets():
        click.echo(f"target: {target}")
    delivery = notifier.send(render_test_message(socket.getfqdn(), config.notify.title_prefix))
    if not delivery.ok:
        _fail(f"test notification failed after {delivery.attempts} attempt(s): {delivery.error}",
              EXIT_UNKNOWN)  # fmt: skip
    click.echo(f"sent to {len(notifier.targets())} target(s)")


# --- the smart host while listed ----------------------------------------------------------

_MTA_OPTION = click.option(
    "--mta", type=click.Choice(["postfix", "exim", "sendmail", "opensmtpd", "exchange"]),
    default=None, help="The MTA (default: [smarthost] mta, or the one installed here).",
)  # fmt: skip
_CONFIG_DIR_OPTION = click.option(
    "--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The MTA's configuration directory (default /etc/postfix, /etc/exim4…): a copy works.",
)  # fmt: skip
_DESTINATION_OPTION = click.option(
    "--destination", "destinations", multiple=True, metavar="DOMAIN",
    help="Route only this receiving domain (repeatable; scope = destinations).",
)  # fmt: skip


@main.group()
def smarthost() -> None:
    """Send outbound mail through the ISP's smart host while listed, and back.

    The relay is [smarthost] in the config; the password is read from its password_file.

    \b
    Examples:
      blmonitor smarthost plan
      blmonitor smarthost apply --mta postfix
      blmonitor smarthost revert
    """


def _smarthost_config(config_path: Path | None) -> tuple[Any, Any]:
    from blmonitor.config import load_config
    from blmonitor.monitor.store import Store

    config = load_config(config_path)
    return config, Store(config.monitor.database)


def _destinations(config: Any, store: Any, given: Sequence[str]) -> tuple[str, ...]:
    """The --destination domains, or with scope = destinations those that block us now."""
    from blmonitor.smarthost import policy
    from blmonitor.smarthost.service import wanted_destinations

    if given:
        return tuple(sorted({d.lower().strip(".") for d in given}))
    if store is None:
        return ()
    current = policy.blocking(store.load_state(), min_severity=config.smarthost.min_severity)
    return wanted_destinations(config, store, current)


@smarthost.command("plan")
@_CONFIG_OPTION
@_MTA_OPTION
@_CONFIG_DIR_OPTION
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
    from blmonitor.smarthost.service import relay_of, smarthost_plan

    config, store = _open(config_path)
    action = "revert" if revert_plan else "apply"
    wanted = _destinations(config, store, destinations)
    plan = smarthost_plan(config, action, mta=mta or "", config_dir=config_dir,
                          destinations=wanted)  # fmt: skip
    click.echo(render_plan(plan, relay_of(config)), nl=False)


def _act(config_path: Path | None, action: str, mta: str | None, config_dir: Path | None,
         destinations: Sequence[str], as_json: bool) -> None:  # fmt: skip
    import socket

    from blmonitor.monitor.run import deliver_pending, notifier_for, utcnow
    from blmonitor.smarthost.service import smarthost_act

    config, store = _smarthost_config(config_path)
    wanted = _destinations(config, store, destinations) if action == "apply" else ()
    outcome = smarthost_act(config, store, action, now=utcnow(), host=socket.getfqdn(),
                            reason=f"`blmonitor smarthost {action}` run by hand",
                            destinations=wanted, mta=mta or "", config_dir=config_dir)  # fmt: skip
    deliver_pending(store, notifier_for(config), utcnow)
    result: dict[str, Any] = {
        "action": action, "changed": outcome.changed, "reloaded": outcome.reloaded,
        "mta": str(outcome.plan.mta), "destinations": list(wanted),
        "notes": [*outcome.plan.notes, *outcome.notes],
    }  # fmt: skip
    if as_json:
        _echo_json(result)
        return
    done = {"apply": "mail now goes through the smart host", "revert": "mail goes direct again"}
    click.echo(done[action] if outcome.changed else "nothing to change")
    for note in result["notes"]:
        click.echo(f"note: {note}")


@smarthost.command("apply")
@_CONFIG_OPTION
@_MTA_OPTION
@_CONFIG_DIR_OPTION
@_DESTINATION_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def smarthost_apply(config_path: Path | None, mta: str | None, config_dir: Path | None,
                    destinations: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Route outbound mail through the smart host now (root).

    Every file is saved first; the change is validated, the MTA reloaded if it runs, the
    deferred queue flushed; any failure restores the previous configuration. Recorded in the
    history and notified. Running it twice changes nothing.

    \b
    Example:
      sudo blmonitor smarthost apply
    """
    _act(config_path, "apply", mta, config_dir, destinations, as_json)


@smarthost.command("revert")
@_CONFIG_OPTION
@_MTA_OPTION
@_CONFIG_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def smarthost_revert(config_path: Path | None, mta: str | None, config_dir: Path | None,
                     as_json: bool) -> None:  # fmt: skip
    """Go back to direct delivery: the exact configuration saved by apply (root).

    \b
    Example:
      sudo blmonitor smarthost revert
    """
    _act(config_path, "revert", mta, config_dir, (), as_json)


@smarthost.command("status")
@_CONFIG_OPTION
@_MTA_OPTION
@_CONFIG_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def smarthost_status(config_path: Path | None, mta: str | None, config_dir: Path | None,
                     as_json: bool) -> None:  # fmt: skip
    """Whether mail goes through the smart host, since when, and the recent actions.

    \b
    Example:
      blmonitor smarthost status
    """
    from blmonitor.smarthost.service import smarthost_of

    config, store = _open(config_path)
    state = smarthost_of(config, mta=mta or "", config_dir=config_dir).status()
    actions = store.smarthost_actions()[:10] if store is not None else []
    if as_json:
        _echo_json({**state, "actions": actions})
        return
    if state["applied"]:
        relay = state.get("relay", {})
        click.echo(f"smart host: applied since {state.get('applied_at', '?')} "
                   f"({state['mta']} → {relay.get('host')}:{relay.get('port')}, "
                   f"scope {state.get('scope', 'all')})")  # fmt: skip
        if state.get("destinations"):
            click.echo("routed: " + ", ".join(state["destinations"]))
    else:
        click.echo(f"smart host: not applied ({state['mta']} delivers directly)")
    for row in actions:
        click.echo(f"{row['at']}  {row['action']:<7} {row['outcome']:<11} {row['detail']}")


@smarthost.command("sync")
@_CONFIG_OPTION
def smarthost_sync(config_path: Path | None) -> None:
    """Carry out the monitor's latest request (the root unit blmonitor-smarthost runs this).

    The daemon runs unprivileged; in mode = "apply" it writes its request to the state
    directory, and blmonitor-smarthost.path starts this command as root.

    \b
    Example:
      sudo blmonitor smarthost sync
    """
    import socket

    from blmonitor.monitor.run import deliver_pending, notifier_for, utcnow
    from blmonitor.smarthost.service import sync_smarthost

    config, store = _smarthost_config(config_path)
    outcome = sync_smarthost(config, store, now=utcnow(), host=socket.getfqdn())
    deliver_pending(store, notifier_for(config), utcnow)
    if outcome is None:
        click.echo("no request")
    else:
        click.echo(f"{outcome.plan.action}: {'done' if outcome.changed else 'nothing to change'}")


# --- finding the cause ---------------------------------------------------------------------


def _resolve(host: str) -> str:
    """The host's address (for the [ip] forms of the relay attempts); "" when it has none."""
    import ipaddress
    import socket

    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, 25, proto=socket.IPPROTO_TCP)[0][4][0])
    except OSError:
        return ""


@main.command()
@click.argument("host")
@click.option("--port", default=25, show_default=True, help="The SMTP port to probe.")
@click.option("--local-domain", default="", metavar="DOMAIN",
              help="A domain the server receives mail for (for the address tricks).")  # fmt: skip
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per SMTP reply.")
@click.option("--json", "as_json", is_flag=True, help="Print the attempts as JSON.")
def relaytest(host: str, port: int, local_domain: str, timeout: float, as_json: bool) -> None:
    """Probe HOST for an open relay, from outside your network (the "telnet test").

    Each attempt is EHLO, MAIL FROM, RCPT TO, then RSET: never DATA, so no mail is sent.
    Exit status 1 when an attempt was accepted (open relay), 0 when all were refused, 3 when
    the probe could not finish. Aim it only at your own server.

    \b
    Example:
      blmonitor relaytest mx.example.com --local-domain example.com
    """
    from blmonitor.causes import relaytest as probe

    attempts = probe.build_attempts(host, local_domain=local_domain, target_ip=_resolve(host))
    report = probe.probe(host, port, attempts, timeout=timeout)
    if as_json:
        _echo_json(probe.report_json(report))
    else:
        click.echo(probe.render_report(report), nl=False)
    codes = {probe.RelayVerdict.OPEN: EXIT_LISTED, probe.RelayVerdict.CLOSED: EXIT_CLEAN}
    sys.exit(codes.get(report.verdict, EXIT_UNKNOWN))


def _local_domains(config: Any, given: Sequence[str]) -> tuple[str, ...]:
    return tuple(d.lower() for d in given) or config.diagnose.local_domains


def _read_queue(mta: str, config_dir: Path | None) -> Any:
    from blmonitor.causes import queue as mailqueue

    if mta == "exim":
        return mailqueue.read_exim_queue(exim="exim4" if _which("exim4") else "exim")
    return mailqueue.read_postfix_queue(config_dir=config_dir)


def _which(program: str) -> bool:
    import shutil

    return shutil.which(program) is not None


def _queue_mta(mta: str | None) -> str:
    if mta:
        return mta
    if _which("postqueue"):
        return "postfix"
    if _which("exim4") or _which("exim"):
        return "exim"
    raise UsageError("found neither postqueue (Postfix) nor exim: pass --mta")


@main.command()
@_CONFIG_OPTION
@click.option("--mta", type=click.Choice(["postfix", "exim"]), default=None,
              help="The MTA whose queue to read (default: the one installed).")  # fmt: skip
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Postfix's configuration directory (postqueue -c).")  # fmt: skip
@click.option("--local-domain", "local_domains", multiple=True, metavar="DOMAIN",
              help="Your own domain (repeatable; default [diagnose] local_domains).")  # fmt: skip
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

    from blmonitor.causes import queue as mailqueue
    from blmonitor.config import load_config

    config = load_config(config_path)
    chosen = _queue_mta(mta)
    messages = _read_queue(chosen, config_dir)
    domains = _local_domains(config, local_domains)
    report = mailqueue.analyse_queue(messages, now=datetime.now(UTC), local_domains=domains)
    if sender is not None:
        ids = mailqueue.select_queue_ids(messages, sender="" if sender == "<>" else sender)
    else:
        ids = tuple(dict.fromkeys(i for f in report.findings for i in f.queue_ids))
    commands = mailqueue.removal_commands(chosen, ids, config_dir=config_dir)
    if as_json:
        _echo_json({**mailqueue.queue_report_json(report), "selected": list(ids),
                    "commands": [c.shell() for c in commands]})  # fmt: skip
    else:
        click.echo(mailqueue.render_queue_report(report), nl=False)
        if commands:
            click.echo(f"clean-up ({len(ids)} message(s)):")
            for command in commands:
                click.echo(f"  {command.summary()}")
    if do_apply and commands:
        if not yes and not click.confirm(f"remove {len(ids)} message(s)?", err=True):
            _fail("nothing removed", EXIT_USAGE)
        removal = mailqueue.run_removal(commands)
        _record_removal(config, chosen, sender, removal)
        if not as_json:
            click.echo(f"removed {len(removal.removed)} of {len(removal.requested)} message(s)")
        if removal.error:
            _fail(removal.error, EXIT_UNKNOWN)
    sys.exit(EXIT_LISTED if report.findings else EXIT_CLEAN)


def _record_removal(config: Any, mta: str, sender: str | None, removal: Any) -> None:
    from datetime import UTC, datetime

    from blmonitor.monitor.store import Store

    store = Store(config.monitor.database)
    try:
        selection = f"sender {sender}" if sender is not None else "the findings' messages"
        store.record_cleanup(datetime.now(UTC), mta=mta, selection=selection,
                             removed=removal.removed, error=removal.error)  # fmt: skip
    finally:
        store.close()


@main.command()
@_CONFIG_OPTION
@click.option("--log", "logs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An MTA log to analyse with its rotations (repeatable; default [diagnose] logs,"
                   " else /var/log/mail.log or Exim's mainlog).")  # fmt: skip
@click.option("--since", default="7d", show_default=True,
              help="How far back the logs are read: 24h, 7d…")  # fmt: skip
@click.option("--mta", type=click.Choice(["postfix", "exim"]), default=None,
              help="The MTA whose queue to read (default: the one installed).")  # fmt: skip
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Postfix's configuration directory (postqueue -c).")  # fmt: skip
@click.option("--local-domain", "local_domains", multiple=True, metavar="DOMAIN",
              help="Your own domain (repeatable; default [diagnose] local_domains).")  # fmt: skip
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
    from datetime import UTC, datetime, timedelta

    from blmonitor.causes import diagnosis
    from blmonitor.causes import logs as logstats
    from blmonitor.causes import queue as mailqueue
    from blmonitor.causes import relaytest as probe
    from blmonitor.config import parse_duration

    config, store = _open(config_path)
    now = datetime.now(UTC)
    domains = _local_domains(config, local_domains)
    checked: list[str] = []
    skipped: list[str] = []
    listings = []
    smarthost_applied = False
    if store is not None:
        for row in store.episodes():
            if row["ended"] is None:
                listings.append(diagnosis.Listing(
                    row["target"], row["zone"],
                    datetime.fromisoformat(row["first_seen"]) if row["first_seen"] else None,
                    row["delist_url"] or "", row["meaning"] or ""))  # fmt: skip
        smarthost_applied = store.load_smarthost().applied
        checked.append("listings in the history")
    else:
        skipped.append(f"no history database yet ({config.monitor.database}): run blmonitor run")
    queue_report = growth = None
    try:
        chosen = _queue_mta(mta)
        queue_report = mailqueue.analyse_queue(_read_queue(chosen, config_dir), now=now,
                                               local_domains=domains)  # fmt: skip
        checked.append(f"the {chosen} queue")
    except BlmonitorError as exc:
        skipped.append(f"queue: {exc}")
    last = store.load_causes() if store is not None else None
    if queue_report is not None and last is not None and last.queue_at is not None:
        # the daemon's snapshot from its last run: how fast the queue grows
        earlier = mailqueue.QueueSnapshot(last.queue_at, last.queue_messages)
        later = mailqueue.QueueSnapshot(now, queue_report.messages)
        growth = mailqueue.growth_finding(mailqueue.queue_growth(earlier, later))
    log_report = None
    paths = (
        list(logs)
        or list(config.diagnose.logs)
        or [p for p in (Path("/var/log/mail.log"), Path("/var/log/exim4/mainlog")) if p.exists()]
    )
    if paths:
        try:
            window = now - timedelta(seconds=parse_duration(since))
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from exc
        try:
            files = [f for p in paths for f in logstats.log_files(p)]
            log_report = logstats.analyse_log_files(files, since=window, local_domains=domains)
            checked.append("logs: " + ", ".join(str(p) for p in paths))
        except BlmonitorError as exc:
            skipped.append(f"logs: {exc}")
    else:
        skipped.append("logs: none found (pass --log /var/log/mail.log)")
    relay_report = None
    if relay_host:
        attempts = probe.build_attempts(relay_host, local_domain=domains[0] if domains else "",
                                        target_ip=_resolve(relay_host))  # fmt: skip
        relay_report = probe.probe(relay_host, 25, attempts, timeout=30.0)
        checked.append(f"open relay at {relay_host}:25")
    found = diagnosis.diagnose(
        listings=listings, queue=queue_report, growth=growth, log=log_report,
        relay=relay_report, smarthost_applied=smarthost_applied, checked=checked,
        skipped=skipped,
    )  # fmt: skip
    if as_json:
        data = diagnosis.diagnosis_json(found)
        if queue_report is not None:
            data["queue"] = mailqueue.queue_report_json(queue_report)
        if log_report is not None:
            data["logs"] = logstats.log_report_json(log_report)
        if relay_report is not None:
            data["relaytest"] = probe.report_json(relay_report)
        _echo_json(data)
    else:
        click.echo(diagnosis.render_diagnosis(found, now=now), nl=False)
    if not found.healthy:
        sys.exit(EXIT_LISTED)
    sys.exit(EXIT_CLEAN if checked else EXIT_UNKNOWN)  # nothing checked: nothing is known


# --- bounce evidence -----------------------------------------------------------------------

_REPLY = re.compile(r"^\s*(?P<code>[245]\d\d)(?:[ -]+(?P<status>[245]\.\d{1,3}\.\d{1,3}))?")


def _attribution_json(attribution: Any) -> dict[str, Any]:
    return {
        "verdict": str(attribution.verdict),
        "list": attribution.list or None,
        "zone": attribution.zone or None,
        "provider": attribution.provider or None,
        "kind": str(attribution.kind) if attribution.kind else None,
        "listed_ip": attribution.listed_ip or None,
        "listed_domain": attribution.listed_domain or None,
        "temporary": attribution.temporary,
        "delist_url": attribution.delist_url or None,
        "reason": attribution.reason or None,
    }


@main.command()
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
    from blmonitor.bounces.attribution import attribute, embedded_rules
    from blmonitor.bounces.models import BounceVerdict
    from blmonitor.dnsbl.catalog import embedded_catalog

    if text == "-":
        text = sys.stdin.read()
    text = " ".join(text.split())
    if not text:
        raise UsageError("nothing to explain: paste the rejection text, or '-' for stdin")
    reply = _REPLY.match(text)
    attribution = attribute(
        text,
        remote_mta=remote_mta,
        status=(reply.group("status") or "") if reply else "",
        reply_code=reply.group("code") if reply else "",
        rules=embedded_rules(),
        catalog=embedded_catalog(),
    )
    if as_json:
        _echo_json(_attribution_json(attribution))
    else:
        rows = [
            ("verdict", str(attribution.verdict)),
            ("list", attribution.list),
            ("zone", attribution.zone),
            ("provider", attribution.provider),
            ("kind", str(attribution.kind or "")),
            ("listed IP", attribution.listed_ip),
            ("listed domain", attribution.listed_domain),
            ("temporary", "yes (4xx: the sender retries)" if attribution.temporary else ""),
            ("delist", attribution.delist_url),
        ]
        for label, value in rows:
            if value:
                click.echo(f"{label + ':':15}{value}")
        if attribution.reason:
            click.echo(attribution.reason)
    sys.exit(EXIT_LISTED if attribution.verdict is BounceVerdict.LISTED else EXIT_CLEAN)


@main.group()
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
    from blmonitor.bounces.attribution import attribute_record, embedded_rules
    from blmonitor.bounces.extract import read_path
    from blmonitor.bounces.models import BounceRecord, BounceVerdict
    from blmonitor.bounces.watch import looks_like_log, read_log
    from blmonitor.dnsbl.catalog import embedded_catalog

    rules, catalog = embedded_rules(), embedded_catalog()

    def records(path: Path) -> Iterator[BounceRecord]:
        if str(path) != "-" and path.is_file() and looks_like_log(path):
            yield from read_log(path)
        else:
            yield from read_path(path)

    found = [(r, attribute_record(r, rules=rules, catalog=catalog)) for p in paths
             for r in records(p)]  # fmt: skip
    listed = [(r, a) for r, a in found if a.verdict is BounceVerdict.LISTED]
    if as_json:
        _echo_json(
            [
                {
                    "recipient": r.recipient, "action": r.action or None,
                    "status": r.status or None, "reply_code": r.reply_code or None,
                    "remote_mta": r.remote_mta or None, "diagnostic": r.diagnostic or None,
                    "command": r.command or None,
                    "date": r.date.isoformat() if r.date else None,
                    "message_id": r.message_id or None, "source": r.source,
                    "format": r.format or None, "attribution": _attribution_json(a),
                }
                for r, a in found
            ]
        )  # fmt: skip
        sys.exit(EXIT_LISTED if listed else EXIT_CLEAN)
    groups: dict[tuple[str, str], list[tuple[BounceRecord, Any]]] = {}
    for r, a in found:
        if a.verdict is BounceVerdict.LISTED or a.verdict is BounceVerdict.REPUTATION:
            groups.setdefault((str(a.verdict), a.list or a.provider or "?"), []).append((r, a))
    if groups:
        rows = [["verdict", "list", "bounces", "first seen", "last seen", "IPs", "delist"]]
        for (verdict, name), items in sorted(groups.items(), key=lambda g: -len(g[1])):
            dates = sorted(r.date.isoformat(timespec="minutes") for r, _ in items if r.date)
            ips = sorted({a.listed_ip for _, a in items if a.listed_ip})
            link = next((a.delist_url for _, a in items if a.delist_url), "")
            first, last = (dates[0], dates[-1]) if dates else ("?", "?")
            rows.append([verdict, name, str(len(items)), first, last, ",".join(ips) or "-",
                         link or "-"])  # fmt: skip
        click.echo("\n".join(line[2:] for line in render.table(rows)))
    grouped = (BounceVerdict.LISTED, BounceVerdict.REPUTATION)
    others = Counter(str(a.verdict) for _, a in found if a.verdict not in grouped)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(others.items()))
    click.echo(f"{len(found)} bounce record(s): {len(listed)} blocklist listing(s)"
               + (f", {summary}" if summary else ""))  # fmt: skip
    sys.exit(EXIT_LISTED if listed else EXIT_CLEAN)
