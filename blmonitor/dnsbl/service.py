"""The check use case: settings from options, else the config; targets from the command line,
a file or discovery; the scan; the warnings a person must see (a public resolver, a dead zone)
and the hint when one slow zone held the batch. Also the zones a config monitors, with their
access, status sources and last health. No click, no printing: faces render.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blmonitor.dnsbl import answers as dnsbl
from blmonitor.dnsbl import engine
from blmonitor.dnsbl.catalog import Catalog, catalog_from, read_dqs_key, select_zones
from blmonitor.dnsbl.report import table
from blmonitor.dnsbl.resolver import Nameserver, parse_nameserver, system_nameservers
from blmonitor.errors import UsageError
from blmonitor.models import Report, Severity, Target, Zone
from blmonitor.userfiles import UnreadableFile, read_text

if TYPE_CHECKING:
    from blmonitor.config import Config

DEFAULT_TIMEOUT = 5.0

# Resolvers that DNSBL operators refuse or rate-limit (dnsbl.md §3.2).
PUBLIC_RESOLVERS = {
    "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112",
    "208.67.222.222", "208.67.220.220", "2001:4860:4860::8888", "2001:4860:4860::8844",
    "2606:4700:4700::1111", "2606:4700:4700::1001", "2620:fe::fe",
}  # fmt: skip

Discover = Callable[[float], list[Target]]


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """How a check is made: each field the option's, else the config's, else the default."""

    zones: tuple[str, ...] = ()
    lists: Path | None = None
    resolvers: tuple[Nameserver, ...] = ()  # empty: the system's resolvers
    dqs_key_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int | None = None  # None: the catalog's polite per-zone limits
    fail_on: Severity = Severity.WARNING


def check_settings(
    config: Config | None,
    *,
    zones: Sequence[str] = (),
    lists: Path | None = None,
    resolvers: Sequence[str] = (),
    dqs_key_file: Path | None = None,
    timeout: float | None = None,
    concurrency: int | None = None,
    fail_on: str | None = None,
) -> CheckSettings:
    """The one "option, else config" merge (`check` with or without a config, and the daemon
    with its config alone). A bad --resolver is a UsageError."""
    parsed = tuple(parse_nameserver(r) for r in resolvers)
    from blmonitor.config import MAX_TIMEOUT  # (only where the option is checked)

    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:  # (nan fails it too)
        raise UsageError(f"--timeout {timeout:g}: give seconds above 0, at most {MAX_TIMEOUT:g}")
    if config is None:
        return CheckSettings(
            zones=tuple(zones), lists=lists, resolvers=parsed, dqs_key_file=dqs_key_file,
            timeout=timeout or DEFAULT_TIMEOUT, concurrency=concurrency,
            fail_on=Severity.parse(fail_on or "warning"),
        )  # fmt: skip
    return CheckSettings(
        zones=tuple(zones) or tuple(config.monitor.zones),
        lists=lists or config.monitor.lists,
        resolvers=parsed or tuple(config.dns.resolver),
        dqs_key_file=dqs_key_file or config.dns.dqs_key_file,
        timeout=timeout or config.dns.timeout or DEFAULT_TIMEOUT,
        concurrency=concurrency or config.dns.concurrency or None,
        fail_on=Severity.parse(fail_on) if fail_on else config.monitor.fail_on,
    )


def resolver_warnings(servers: Sequence[Nameserver]) -> list[str]:
    """A warning per public resolver: its answers from Spamhaus and others are refusals."""
    return [
        f"resolver {s.host} is a public resolver: Spamhaus and other lists refuse or "
        "rate-limit it; use a local recursive resolver (unbound) with --resolver"
        for s in servers
        if s.host in PUBLIC_RESOLVERS
    ]


def read_targets(targets: Sequence[str], targets_file: Path | None) -> list[str]:
    """The targets given, then those of `targets_file` ('-': stdin), one per line, # comments."""
    texts = list(targets)
    if targets_file is not None:
        try:
            text = sys.stdin.read() if str(targets_file) == "-" else read_text(targets_file)
        except (OSError, UnreadableFile, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise UsageError(f"cannot read {targets_file}: {why}") from None
        texts.extend(line.split("#")[0].strip() for line in text.splitlines())
    found = [t.strip() for t in texts if t.strip()]
    if (targets or targets_file is not None) and not found:
        # An empty $IP in a script must not check this machine's address instead.
        raise UsageError("the targets given are empty: give an address, a CIDR block or a "
                         "domain, or none at all to check this machine's public IP")  # fmt: skip
    return found


def discover_public(
    timeout: float, ip_urls: Sequence[str] = (), *, local_only: bool = False
) -> list[Target]:
    """This machine's public addresses: from `ip_urls` alone when given; with `local_only`
    (a resolver was named: the admin keeps the check on that resolver), only from this
    machine's own configuration (Postfix's bind address, the kernel's route), never an outside
    service; else every source."""
    import asyncio

    from blmonitor.dnsbl import publicip  # httpx is slow to import and only needed here
    from blmonitor.errors import DiscoveryError

    if local_only and not ip_urls:
        local = publicip.postfix_addresses() or publicip.route_addresses()
        if not local:
            raise DiscoveryError(
                "this machine shows no public address (Postfix bind address, kernel route), "
                "and with --resolver no outside service is asked: name the address to check, "
                "or give --ip-url"
            )
        return [dnsbl.parse_target(str(address)) for address in local]
    if ip_urls:
        found = asyncio.run(
            publicip.discover(http_urls=ip_urls, dns_sources=(), use_route=False, timeout=timeout)
        )
    else:
        found = asyncio.run(publicip.discover(timeout=timeout))
    return [dnsbl.parse_target(str(address)) for address in found]


def check(
    settings: CheckSettings,
    targets: Sequence[str],
    *,
    targets_file: Path | None = None,
    discover: Discover = discover_public,
    watch: engine.ScanWatch | None = None,
    clock: Callable[[], float] = time.monotonic,
    catalog: Catalog | None = None,
) -> Report:
    """Check `targets` and those of `targets_file` (none at all: the discovered public
    addresses) against the settings' zones (of `catalog`, else the settings' catalog).
    `watch` is kept up to date for a progress display."""
    catalog = catalog or catalog_from(settings.lists)
    zones, warnings = select_zones(
        catalog, settings.zones, dqs_key=read_dqs_key(settings.dqs_key_file)
    )
    servers = list(settings.resolvers) or system_nameservers()
    texts = read_targets(targets, targets_file)
    parsed = dnsbl.expand_targets(texts) if texts else discover(settings.timeout)
    if not zones:
        raise UsageError("no zones to check: give --zone NAME or a catalog with default zones")
    started = clock()
    report = engine.scan(
        parsed, zones, servers, timeout=settings.timeout, concurrency=settings.concurrency,
        fail_on=settings.fail_on, watch=watch,
    )  # fmt: skip
    return dataclasses.replace(
        report,
        warnings=(*warnings, *resolver_warnings(servers)),
        seconds=clock() - started,
    )


def slow_zone_hint(watch: engine.ScanWatch, *, min_gap: float = 1.0) -> str:
    """When one zone held the batch (it finished `min_gap` seconds or more after all the others,
    and a quarter of the run or more): one line saying which and what to do; else ""."""
    finished = sorted(
        ((z.finished, z) for z in watch.zones if z.finished is not None),
        key=lambda pair: pair[0],
    )
    if len(finished) < 2:
        return ""
    (before, _), (end, last) = finished[-2:]
    gap = end - before
    if gap < max(min_gap, (end - watch.started) / 4):
        return ""
    hint = f"zone {last.label} answered last, {gap:.1f} s after the others: consider dropping it"
    if last.timeouts:  # errors, not answers: a longer wait may turn them into answers
        return (
            f"{hint} or raising --timeout ({last.timeouts} of its lookups timed out: it may "
            "answer late or not at all)"
        )
    return f"{hint} from your zones"


@dataclass(frozen=True, slots=True)
class ZoneListing:
    """The zones shown by `zones`, each one's last health in the history (None: unknown), and
    the selection's warnings (a zone named in the config that is dead, or not in the catalog)."""

    zones: tuple[Zone, ...]
    health: Mapping[str, str]
    warnings: tuple[str, ...] = ()
    dqs_key: bool = False  # the config gives a DQS key file: Spamhaus zones are asked through DQS

    def last_health(self, name: str) -> str | None:
        return self.health.get(name)


def list_zones(
    config: Config, *, lists: Path | None = None, specs: Sequence[str] = (), show_all: bool = False
) -> ZoneListing:
    """The zones `check -c CONFIG` and the monitor ask: `specs` (the --zone words), else the
    config's [monitor] zones, through its catalog (`lists` laid over the embedded one, else the
    config's); with `show_all`, every zone of that catalog. Each with its health from the
    history, if there is one."""
    from blmonitor.monitor.status import open_history

    catalog = catalog_from(lists or config.monitor.lists)
    zones: Sequence[Zone]
    warnings: Sequence[str] = ()
    if show_all:
        zones = catalog.zones
    else:  # the DQS key file is a secret that `zones` never reads: only its presence counts
        zones, warnings = select_zones(catalog, specs or config.monitor.zones)
    health: dict[str, str] = {}
    store = open_history(config)
    if store is not None:
        try:
            health = {name: z.health for name, z in store.load_state().zones.items()}
        finally:
            store.close()
    return ZoneListing(
        tuple(zones), health, tuple(warnings), dqs_key=config.dns.dqs_key_file is not None
    )


def zone_access(zone: Zone, *, dqs_key: bool) -> str:
    """How a zone may be asked: free, registration (of the resolver's address) or key, and
    whether its Spamhaus DQS twin is used (a key is configured) or available."""
    if not zone.dqs:
        return zone.access
    return f"{zone.access}, DQS {'key set' if dqs_key else 'available'}"


def zone_status(zone: Zone) -> str:
    """The catalog's status with its date and source: "dead as of 2024-06 (the operator's page)"."""
    if zone.generic:
        return "not in the catalog: plain RFC 5782"
    text = str(zone.status)
    if zone.status_date:
        text += f" as of {zone.status_date}"
    return f"{text} ({zone.status_source})" if zone.status_source else text


def zones_json(listing: ZoneListing) -> list[dict[str, Any]]:
    return [
        {
            "id": z.id,
            "zone": z.name,
            "takes": sorted(z.takes),
            "kind": str(z.kind),
            "default": z.default,
            "status": "generic" if z.generic else str(z.status),
            "status_date": z.status_date or None,
            "status_source": z.status_source or None,
            "access": z.access,
            "dqs": None if not z.dqs else "key set" if listing.dqs_key else "available",
            "fair_use": z.fair_use or None,
            "last_health": listing.last_health(z.name),
        }
        for z in listing.zones
    ]


def render_zones(listing: ZoneListing) -> str:
    """The zones in a table, then each one's access and the source of its status."""
    rows = [["id", "zone", "takes", "kind", "status", "default", "last health"]] + [
        [z.id, z.name, ",".join(sorted(z.takes)), str(z.kind),
         "generic" if z.generic else str(z.status), "yes" if z.default else "",
         listing.last_health(z.name) or "-"]
        for z in listing.zones
    ]  # fmt: skip
    facts = [["id", "access", "status as of (source)"]] + [
        [z.id, zone_access(z, dqs_key=listing.dqs_key), zone_status(z)] for z in listing.zones
    ]
    return "\n".join(line[2:] for line in [*table(rows), "  ", *table(facts)])
