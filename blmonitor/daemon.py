"""The daemon: one monitoring run (`run_once`) and the loop that repeats it (`serve`).

Wires the parts together — config, public-IP discovery, the check engine, the monitor logic,
the history database and the notifier — and is, with cli.py, the only place that does. A run
is written to the database in one transaction before anything is sent, so a failed delivery
is retried next run and a kill at any point loses nothing committed. SIGTERM lets the current
run finish its write, then exits; SIGHUP reloads the config between runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import ClassVar

import schedule

from . import dnsbl, engine, monitor
from .bounces import watch
from .bounces.attribution import attribute_record, embedded_rules
from .bounces.models import Attribution, BounceRecord, BounceVerdict
from .config import Config, load_config
from .errors import BlmonitorError, UsageError
from .models import Event, Report, Verdict
from .notify import Message, Notifier, render_batch
from .resolver import system_nameservers
from .store import RunRecord, Store
from .zones import Catalog, catalog_from, read_dqs_key, select_zones

log = logging.getLogger("blmonitor")

Clock = Callable[[], datetime]
Discover = Callable[[float], list[str]]

# A message that could not be delivered for this long is old news: it is kept, marked
# expired and logged, and no longer retried on every run.
NOTIFICATION_EXPIRY = timedelta(days=7)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def discover_public(timeout: float) -> list[str]:
    from . import publicip

    return [str(a) for a in asyncio.run(publicip.discover(timeout=timeout))]


@dataclass(frozen=True, slots=True)
class RunSummary:
    verdict: Verdict
    events: tuple[Event, ...]
    delivered: int
    failed: int
    error: str = ""


def check_once(config: Config, catalog: Catalog, targets: list[str]) -> Report:
    """One check of `targets` with the config's zones, resolvers and limits."""
    zones, warnings = select_zones(
        catalog, config.monitor.zones, dqs_key=read_dqs_key(config.dns.dqs_key_file)
    )
    for warning in warnings:
        log.warning("%s", warning)
    if not zones:
        raise UsageError(f"{config.source}: [monitor] zones: no zone to check")
    parsed = dnsbl.expand_targets(targets)
    if not parsed:
        raise UsageError(f"{config.source}: [monitor] targets: nothing to check")
    return engine.scan(
        parsed,
        zones,
        list(config.dns.resolver) or system_nameservers(),
        timeout=config.dns.timeout,
        concurrency=config.dns.concurrency or None,
        fail_on=config.monitor.fail_on,
    )


def read_bounces(
    config: Config, store: Store
) -> tuple[list[tuple[BounceRecord, Attribution]], dict[str, str]]:
    """Bounces new in the watched places since the last run, attributed, never seen before."""
    if not config.bounces.watch:
        return [], {}
    records, positions = watch.collect(config.bounces.watch, store.watch_positions())
    rules, catalog = embedded_rules(), catalog_from(config.monitor.lists)
    attributed = [(r, attribute_record(r, rules=rules, catalog=catalog)) for r in records]
    fresh = store.unseen(attributed)
    named = sum(1 for _, a in fresh if a.verdict is BounceVerdict.LISTED)
    if records:
        log.info("bounces: %d new record(s), %d naming a listing", len(fresh), named)
    return fresh, positions


def run_once(
    config: Config,
    store: Store,
    notifier: Notifier | None,
    *,
    catalog: Catalog | None = None,
    clock: Clock = utcnow,
    discover: Discover = discover_public,
    host: str = "",
) -> RunSummary:
    """Check, compare with the stored state, store the run, then send what is pending."""
    with store.run_lock():
        return _run_locked(config, store, notifier, catalog, clock, discover, host)


def _run_locked(
    config: Config,
    store: Store,
    notifier: Notifier | None,
    catalog: Catalog | None,
    clock: Clock,
    discover: Discover,
    host: str,
) -> RunSummary:
    started = clock()
    before = store.load_state()
    silent = config.monitor.silent_first_run and before.empty
    confirm = config.monitor.confirm
    found: list[str] = []
    report: Report | None = None
    error = ""
    try:
        if config.monitor.discover:
            found = discover(config.dns.timeout)
            log.info("public address(es): %s", ", ".join(found))
        report = check_once(
            config,
            catalog or catalog_from(config.monitor.lists),
            [*config.monitor.fixed_targets, *found],
        )
    except BlmonitorError as exc:
        error = str(exc)
        log.error("run failed: %s", error)
    finished = clock()
    if report is None:
        after, events = monitor.evaluate_failure(before, error, now=finished, confirm=confirm)
    else:
        after, events = monitor.evaluate(
            report, before, now=finished, confirm=confirm, silent=silent
        )
        if config.monitor.discover:
            after, moved = monitor.evaluate_addresses(after, found, now=finished)
            events += moved
    evidence, positions = read_bounces(config, store)
    if evidence or after.bounces:
        expire = timedelta(seconds=config.bounces.expire)
        after, seen = monitor.evaluate_bounces(after, evidence, now=finished, expire=expire)
        events += seen
    for event in events:
        log.warning("%s", " ".join(filter(None, [f"{event.kind}:", event.target, event.zone,
                                                 event.detail])))  # fmt: skip
    queued = []
    if events and notifier is not None:
        message = render_batch(
            events, host=host or socket.getfqdn(), title_prefix=config.notify.title_prefix
        )
        if message.severity >= config.notify.min_severity:
            queued.append((message.title, message.body, message.severity, message.kinds))
    store.record_run(
        RunRecord(started, finished, report, error),
        before,
        after,
        events,
        queued,
        evidence=[(r, a) for r, a in evidence if a.verdict is not BounceVerdict.OTHER],
        positions=positions,
    )
    store.prune(finished - timedelta(seconds=config.monitor.retention))
    delivered, failed = deliver_pending(store, notifier, clock)
    verdict = report.verdict if report is not None else Verdict.UNKNOWN
    log.info(
        "run done: %s, %d event(s), %d notification(s) sent, %d failed",
        verdict, len(events), delivered, failed,
    )  # fmt: skip
    return RunSummary(verdict, tuple(events), delivered, failed, error)


def deliver_pending(store: Store, notifier: Notifier | None, clock: Clock) -> tuple[int, int]:
    """Send every stored notification not sent yet (this run's and earlier failures)."""
    if notifier is None:
        return 0, 0
    delivered = failed = 0
    now = clock()
    for pending in store.pending_notifications():
        if now - pending.created > NOTIFICATION_EXPIRY:
            why = f"given up after {NOTIFICATION_EXPIRY.days} days: {pending.last_error}"
            store.expire_notification(pending.id, error=why)
            log.error("notification %d (%s) %s", pending.id, pending.title, why)
            failed += 1
            continue
        message = Message(pending.title, pending.body, pending.severity, pending.kinds)
        # A retry goes only to the targets that did not get it, never twice to the others.
        delivery = notifier.send(message, only=set(pending.owed) or None)
        store.mark_notification(
            pending.id,
            ok=delivery.ok,
            attempts=delivery.attempts,
            error=delivery.error,
            now=clock(),
            owed=delivery.failed,
        )
        if delivery.ok:
            delivered += 1
        else:
            failed += 1
            log.error("notification %d not delivered: %s", pending.id, delivery.error)
    return delivered, failed


def notifier_for(config: Config) -> Notifier | None:
    if not config.notify.urls and config.notify.apprise_config is None:
        return None
    return Notifier(
        urls=config.notify.urls,
        apprise_config=config.notify.apprise_config,
        min_severity=config.notify.min_severity,
        retries=config.notify.retry,
    )


# --- the loop ------------------------------------------------------------------------------


class _Signals:
    """SIGTERM/SIGINT ask to stop after the current run; SIGHUP asks for a reload."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload = True


def serve(config_path: Path | None, *, once: bool = False, metrics: str = "") -> int:
    """`blmonitor run`: run now, then every interval (with jitter) until SIGTERM.

    With `metrics` (HOST:PORT), Prometheus metrics are served from the database meanwhile.
    """
    from .metrics import MetricsServer, parse_listen, serve_metrics, store_renderer

    config = load_config(config_path)
    listen = parse_listen(metrics) if metrics else None
    signals = _Signals()
    signals.install()
    store = Store(config.monitor.database)
    exporter: MetricsServer | None = None
    if listen is not None and not once:
        exporter = serve_metrics(*listen, store_renderer(config.monitor.database))
        log.info("metrics on %s", exporter.url)
    try:
        summary = run_once(config, store, notifier_for(config))
        if once:
            return 0 if not summary.error else 3
        if signals.stop:
            log.info("stopping")
            return 0
        scheduler = schedule.Scheduler()

        def plan(cfg: Config) -> None:
            scheduler.clear()
            low = max(int(cfg.monitor.interval), 1)
            scheduler.every(low).to(low + int(cfg.monitor.jitter)).seconds.do(job)
            log.info("next run at %s", scheduler.next_run)

        def job() -> None:
            run_once(config, store, notifier_for(config))

        plan(config)
        while not signals.stop:
            if signals.reload:
                signals.reload = False
                try:
                    fresh = load_config(config_path)
                except BlmonitorError as exc:
                    log.error("reload failed, keeping the running config: %s", exc)
                else:
                    if fresh.monitor.database != config.monitor.database:
                        log.warning("[monitor] database changes only with a restart")
                    config = replace(
                        fresh, monitor=replace(fresh.monitor, database=config.monitor.database)
                    )
                    plan(config)
                    log.info("config reloaded from %s", config.source)
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            time.sleep(min(max(idle if idle is not None else 1.0, 0.05), 1.0))
        log.info("stopping")
        return 0
    finally:
        if exporter is not None:
            exporter.close()
        store.close()


class _JournalFormatter(logging.Formatter):
    """journald reads a `<N>` syslog priority at the start of each stderr line."""

    PRIORITY: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
        logging.CRITICAL: 2,
    }  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup_logging(*, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
