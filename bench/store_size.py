"""How big the history database grows: a year of checks every 15 min, simulated without DNS.

    python3 bench/store_size.py [--days 365] [--ips 5] [--zones 30] [--out DIR]

Each run does what `daemon.run_once` does after its DNS check, with the real code: load the
state, `monitor.evaluate` (or `evaluate_failure`), render the notification, `Store.record_run`
(one transaction), `Store.prune` with the default retention, then deliver what is pending
(every delivery succeeds). The reports are synthetic but shaped like real ones: IPv4 targets
× alive IPv4 zones of the embedded catalog, a few listing episodes per IP per year lasting
hours to days (some on two zones at once, some whose codes change), one-run flaps, one zone
dead for a week, short zone outages, timeouts, and runs that fail whole (a 4-hour outage
included). Time advances 15 minutes per run; the seed makes it repeatable.

Prints a Markdown table (stdout; progress on stderr): database size after
`PRAGMA wal_checkpoint(TRUNCATE)`, rows and bytes per table, and milliseconds per run, per
step. With --out DIR the database (DIR/store-size.db, replaced) and a JSON of the figures stay
there; without it they go to a temporary directory that is removed. The full year took 7 min
on a busy 2-core machine (about 12 ms per run, nearly all of it in the store and monitor code);
`--days 30` gives the rate in half a minute.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from blmonitor.config import DEFAULT_RETENTION  # noqa: E402
from blmonitor.dnsbl import answers as dnsbl  # noqa: E402
from blmonitor.dnsbl.catalog import embedded_catalog  # noqa: E402
from blmonitor.models import (  # noqa: E402
    Code,
    Event,
    Health,
    Report,
    Result,
    Severity,
    Status,
    Target,
    TargetKind,
    Zone,
    ZoneHealth,
    ZoneStatus,
)
from blmonitor.monitor import state as monitor  # noqa: E402
from blmonitor.monitor.notify import render_batch  # noqa: E402
from blmonitor.monitor.store import RunRecord, Store  # noqa: E402

RUN_MINUTES = 15
RUNS_PER_DAY = 24 * 60 // RUN_MINUTES
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIRM = 2  # the config's default
HOST = "mx1.example.net"
STEPS = ("load_state", "evaluate", "record_run", "prune", "deliver")

# The change pattern, per year (scaled to --days).
EPISODES_PER_IP = 3.0  # listing episodes; each on 1-3 zones at once
EPISODE_HOURS = (2.0, 120.0)  # log-uniform: hours to five days
FLAPS_PER_PAIR = 1.0  # one-run "listed" answers that are never confirmed
ZONE_BLIPS_PER_ZONE = 2.0  # a zone unreachable for 1-3 runs
DEAD_ZONE_DAYS = 7.0  # the last zone dies for a week
LOOKUP_ERROR_RATE = 0.001  # per lookup: a timeout, an error is no observation
RUN_FAILURE_RATE = 0.002  # per run: no resolver, no public IP
OUTAGE_RUNS = 16  # plus one 4-hour outage where every run fails


# --- the synthetic world -------------------------------------------------------------------


def zones_for(count: int) -> list[Zone]:
    """Alive IPv4 zones of the embedded catalog (real names and codes), then made-up ones."""
    alive = [
        z
        for z in embedded_catalog().zones
        if TargetKind.IPV4 in z.takes and z.status is not ZoneStatus.DEAD and not z.bitmask
    ]
    zones = alive[:count]
    for n in range(len(zones), count):
        zones.append(
            Zone(
                f"bench{n}",
                f"z{n:02d}.bench.test",
                frozenset({TargetKind.IPV4}),
                codes=(Code("listed", Severity.CRITICAL, value="127.0.0.2"),),
            )
        )
    return zones


def targets_for(count: int) -> list[Target]:
    base = ipaddress.IPv4Address("198.18.0.10")  # RFC 2544 benchmarking range
    return [Target(str(base + 7 * n), TargetKind.IPV4) for n in range(count)]


def listed_result(target: Target, zone: Zone, *, second_code: bool) -> Result:
    codes = [c for c in zone.codes if c.value] or [Code("listed", Severity.CRITICAL, "127.0.0.2")]
    chosen = codes[:2] if second_code and len(codes) > 1 else codes[:1]
    url = (chosen[0].delist_url or zone.delist_url).replace("{target}", target.text)
    return Result(
        target,
        zone,
        Status.LISTED,
        codes=tuple(c.value or "127.0.0.2" for c in chosen),
        meanings=tuple(c.meaning for c in chosen),
        severity=max(c.severity for c in chosen),
        txt=(f"Listed by {zone.name}: {target.text} sent spam, see {url or zone.lookup_url}",),
        delist_url=url,
    )


@dataclass
class Plan:
    """What changes at which run; everything not in here stays as it was."""

    runs: int
    changes: dict[int, list[tuple[int, Result]]] = field(default_factory=lambda: defaultdict(list))
    flaps: dict[int, list[tuple[int, Result]]] = field(default_factory=lambda: defaultdict(list))
    zone_changes: dict[int, list[tuple[int, Health]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    zone_blips: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    failed: set[int] = field(default_factory=set)
    episodes: int = 0


def plan_for(targets: list[Target], zones: list[Zone], runs: int, rng: random.Random) -> Plan:
    plan = Plan(runs)
    years = runs / (365 * RUNS_PER_DAY)
    busy: dict[int, list[tuple[int, int]]] = defaultdict(list)  # pair → listed intervals

    def free(pair: int, start: int, end: int) -> bool:
        return all(end + 2 < s or e + 2 < start for s, e in busy[pair])

    low, high = (math.log(h * 60 / RUN_MINUTES) for h in EPISODE_HOURS)
    for t, target in enumerate(targets):
        for _ in range(_poisson(rng, EPISODES_PER_IP * years)):
            start = rng.randrange(runs)
            length = max(1, round(math.exp(rng.uniform(low, high))))
            end = min(start + length, runs)
            for z in rng.sample(range(len(zones)), k=min(rng.choice((1, 1, 2, 3)), len(zones))):
                pair = t * len(zones) + z
                if not free(pair, start, end):
                    continue
                busy[pair].append((start, end))
                plan.episodes += 1
                plan.changes[start].append(
                    (pair, listed_result(target, zones[z], second_code=False))
                )
                if end - start > 8 and rng.random() < 0.25:  # a second code while listed
                    middle = (start + end) // 2
                    two = listed_result(target, zones[z], second_code=True)
                    plan.changes[middle].append((pair, two))
                if end < runs:
                    plan.changes[end].append((pair, clean_result(target, zones[z])))
    for t, target in enumerate(targets):
        for z, zone in enumerate(zones):
            pair = t * len(zones) + z
            for _ in range(_poisson(rng, FLAPS_PER_PAIR * years)):
                run = rng.randrange(runs)
                if free(pair, run, run):
                    plan.flaps[run].append((pair, listed_result(target, zone, second_code=False)))
    dead = len(zones) - 1
    dead_from = int(runs * 0.3)
    dead_to = min(dead_from + round(DEAD_ZONE_DAYS * RUNS_PER_DAY), runs)
    plan.zone_changes[dead_from].append((dead, Health.DEAD))
    plan.zone_changes[dead_to].append((dead, Health.OK))
    for z in range(len(zones)):
        for _ in range(_poisson(rng, ZONE_BLIPS_PER_ZONE * years)):
            start = rng.randrange(runs)
            for run in range(start, min(start + rng.choice((1, 1, 2, 3)), runs)):
                plan.zone_blips[run].append(z)
    plan.failed = {run for run in range(1, runs) if rng.random() < RUN_FAILURE_RATE}
    outage = int(runs * 0.6)
    plan.failed |= set(range(outage, min(outage + OUTAGE_RUNS, runs)))
    return plan


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0) if mean > 0 else math.inf
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


def clean_result(target: Target, zone: Zone) -> Result:
    return Result(target, zone, Status.CLEAN)


_HEALTH_DETAIL = {
    Health.OK: "",
    Health.DEAD: "the listed test point 127.0.0.2 is not listed: the zone is dead or gone",
    Health.UNREACHABLE: "the health check timed out (3 attempts)",
}


def reports(
    targets: list[Target], zones: list[Zone], plan: Plan, rng: random.Random
) -> Iterator[Report | None]:
    """One report per run (None: the run failed whole), in the engine's order."""
    nz = len(zones)
    current = [clean_result(t, z) for t in targets for z in zones]
    timeout = [
        Result(t, z, Status.ERROR, error=f"timed out after 5 s asking {z.name}")
        for t in targets
        for z in zones
    ]
    healthy = [ZoneHealth(z, Health.OK) for z in zones]
    sick = {
        health: [ZoneHealth(z, health, _HEALTH_DETAIL[health]) for z in zones]
        for health in (Health.DEAD, Health.UNREACHABLE)
    }
    not_asked = {
        health: [
            Result(t, z, Status.ERROR, error=f"not asked: zone {health}: {_HEALTH_DETAIL[health]}")
            for t in targets
            for z in zones
        ]
        for health in sick
    }
    zone_health = list(healthy)
    for run in range(plan.runs):
        for pair, result in plan.changes.get(run, ()):
            current[pair] = result
        for z, health in plan.zone_changes.get(run, ()):
            zone_health[z] = healthy[z] if health is Health.OK else sick[health][z]
        if run in plan.failed:
            yield None
            continue
        results = list(current)
        for pair, result in plan.flaps.get(run, ()):
            results[pair] = result
        healths = list(zone_health)
        for z in plan.zone_blips.get(run, ()):
            if healths[z].health is Health.OK:
                healths[z] = sick[Health.UNREACHABLE][z]
        for z, state in enumerate(healths):
            if not state.health.trusted:  # the engine asks nothing of a zone that failed
                for t in range(len(targets)):
                    results[t * nz + z] = not_asked[state.health][t * nz + z]
        if rng.random() < LOOKUP_ERROR_RATE * len(results):
            pair = rng.randrange(len(results))
            if results[pair].status is not Status.ERROR:
                results[pair] = timeout[pair]
        verdict = dnsbl.decide(results, healths, fail_on=Severity.WARNING)
        lookups = len(results)
        yield Report(
            tuple(results),
            tuple(healths),
            verdict,
            queries=lookups + 3 * nz,
            retries=sum(r.status is Status.ERROR for r in results),
            seconds=round(rng.uniform(1.0, 4.0), 3),
        )


# --- the daemon's work, timed --------------------------------------------------------------


def simulate(
    store: Store, targets: list[Target], zones: list[Zone], plan: Plan, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    timings: dict[str, list[float]] = {step: [] for step in STEPS}
    kinds: dict[str, int] = defaultdict(int)
    retention = timedelta(seconds=DEFAULT_RETENTION)
    clock = time.perf_counter
    wall = clock()
    for run, report in enumerate(reports(targets, zones, plan, rng)):
        started = T0 + timedelta(minutes=RUN_MINUTES * run)
        finished = started + timedelta(seconds=report.seconds if report else 0.5)
        finished = finished.replace(microsecond=0)
        t0 = clock()
        before = store.load_state()
        t1 = clock()
        events: list[Event]
        if report is None:
            after, events = monitor.evaluate_failure(
                before, "no public address found", now=finished, confirm=CONFIRM
            )
        else:
            after, events = monitor.evaluate(
                report, before, now=finished, confirm=CONFIRM, silent=before.empty
            )
        queued = []
        if events:
            message = render_batch(events, host=HOST)
            queued.append((message.title, message.body, message.severity, message.kinds))
        t2 = clock()
        error = "" if report is not None else "no public address found"
        store.record_run(RunRecord(started, finished, report, error), before, after, events, queued)
        t3 = clock()
        store.prune(finished - retention)
        t4 = clock()
        for pending in store.pending_notifications():
            store.mark_notification(pending.id, ok=True, attempts=1, error="", now=finished)
        t5 = clock()
        for step, spent in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            timings[step].append(spent * 1000)
        for event in events:
            kinds[str(event.kind)] += 1
        if run and run % 2000 == 0:
            recent = [sum(v[-2000:]) / 2000 for v in timings.values()]
            print(
                f"run {run}/{plan.runs}: {sum(recent):.2f} ms/run over the last 2000 "
                f"({clock() - wall:.0f} s so far)",
                file=sys.stderr,
                flush=True,
            )
    return {"timings": timings, "events": dict(sorted(kinds.items())), "wall": clock() - wall}


def measure(path: Path) -> dict[str, Any]:
    """File size after a WAL checkpoint, rows per table and, when SQLite has dbstat, bytes."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            )
        ]
        rows = {t: conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0] for t in tables}
        try:
            stat = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        except sqlite3.OperationalError:
            stat = {}
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
        indexes = dict(
            conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").fetchall()
        )
    conn.close()
    table_bytes: dict[str, int] = defaultdict(int)
    for name, size in stat.items():
        table_bytes[indexes.get(name, name)] += size  # an index counts for its table
    wal = path.with_name(path.name + "-wal")
    return {
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "page_size": page_size,
        "free_pages": freelist,
        "rows": rows,
        "table_bytes": dict(table_bytes),
    }


# --- output --------------------------------------------------------------------------------


def _mb(size: float) -> str:
    return f"{size / 1e6:.2f} MB"


def report_markdown(
    args: argparse.Namespace, plan: Plan, sim: dict[str, Any], size: dict[str, Any]
) -> str:
    runs = plan.runs
    timings = sim["timings"]
    per_run = [sum(step) for step in zip(*timings.values(), strict=True)]
    tenth = max(runs // 10, 1)
    lines = [
        f"## History database: {args.days:g} days × {RUNS_PER_DAY} runs/day = {runs:,} runs, "
        f"{args.ips} IPs × {args.zones} zones",
        "",
        "| figure | value |",
        "|---|---|",
        f"| database file (after `wal_checkpoint(TRUNCATE)`) | {_mb(size['file_bytes'])} "
        f"({size['file_bytes']:,} bytes; WAL {size['wal_bytes']:,} bytes) |",
        f"| per run | {size['file_bytes'] / runs:,.0f} bytes |",
        f"| per day | {size['file_bytes'] / args.days / 1e3:,.1f} kB |",
        f"| time per run, mean / median / p99 | {statistics.fmean(per_run):.2f} / "
        f"{statistics.median(per_run):.2f} / {_quantile(per_run, 0.99):.2f} ms |",
        f"| time per run, first / last tenth of the runs | "
        f"{statistics.fmean(per_run[:tenth]):.2f} / {statistics.fmean(per_run[-tenth:]):.2f} ms |",
        *(
            f"| … of which `{step}` (mean / last tenth) | {statistics.fmean(values):.2f} / "
            f"{statistics.fmean(values[-tenth:]):.2f} ms |"
            for step, values in timings.items()
        ),
        f"| whole simulation (synthetic reports included) | {sim['wall']:.0f} s |",
        f"| listing episodes planned | {plan.episodes} |",
        f"| events | {', '.join(f'{k} {v}' for k, v in sim['events'].items()) or 'none'} |",
        "",
        "| table | rows | bytes (with its indexes) |",
        "|---|---:|---:|",
        *(
            f"| {table} | {rows:,} | "
            f"{size['table_bytes'][table]:,} |" if table in size["table_bytes"] else
            f"| {table} | {rows:,} | n/a |"
            for table, rows in size["rows"].items()
        ),
    ]  # fmt: skip
    return "\n".join(lines)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=365, help="simulated days (default 365)")
    parser.add_argument("--ips", type=int, default=5, help="IPv4 targets (default 5)")
    parser.add_argument("--zones", type=int, default=30, help="zones (default 30)")
    parser.add_argument("--out", type=Path, help="keep DIR/store-size.db and DIR/store-size.json")
    parser.add_argument("--seed", type=int, default=5782)
    args = parser.parse_args(argv)
    if args.days <= 0 or args.ips < 1 or args.zones < 1:
        parser.error("--days, --ips and --zones must be positive")
    runs = max(round(args.days * RUNS_PER_DAY), 1)
    rng = random.Random(args.seed)
    targets, zones = targets_for(args.ips), zones_for(args.zones)
    plan = plan_for(targets, zones, runs, rng)
    with tempfile.TemporaryDirectory(prefix="blmonitor-store-size-") as scratch:
        directory = args.out or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "store-size.db"
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        print(f"{runs:,} runs of {args.ips} × {args.zones} into {path}", file=sys.stderr)
        store = Store(path)
        try:
            sim = simulate(store, targets, zones, plan, args.seed)
        finally:
            store.close()
        size = measure(path)
        print(report_markdown(args, plan, sim, size))
        if args.out is not None:
            figures = {
                "args": {k: str(v) for k, v in vars(args).items()},
                "runs": runs,
                "size": size,
                "events": sim["events"],
                "wall_seconds": sim["wall"],
                "ms_per_run": {k: statistics.fmean(v) for k, v in sim["timings"].items()},
            }
            (directory / "store-size.json").write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
