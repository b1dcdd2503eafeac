"""One monitoring run as a service: check, compare with the stored state, store, notify.

`run_once` wires the parts — config, public-IP discovery, the check engine, the monitor logic
(pure, `state.py`), the history store and the notifier — and then lets the smart host and the
cause finder act on the result, queues the digest when one is due, sends, and pings the
heartbeat. A run is written to the database in one transaction before
anything is sent, so a failed delivery is retried next run and a kill at any point loses
nothing committed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from blmonitor.bounces import watch
from blmonitor.bounces.attribution import attribute_record
from blmonitor.bounces.models import Attribution, BounceRecord, BounceVerdict
from blmonitor.bounces.rules import embedded_rules
from blmonitor.causes.findings import look_for_causes
from blmonitor.config import Config, SmarthostMode
from blmonitor.dnsbl import service as dnsbl_service
from blmonitor.dnsbl.catalog import Catalog, catalog_from
from blmonitor.dnsbl.service import check_settings
from blmonitor.errors import BlmonitorError, StoreError, UsageError
from blmonitor.models import Event, Report, Severity, Verdict
from blmonitor.monitor import state as monitor
from blmonitor.monitor.channels import PERIODS, Digest
from blmonitor.monitor.digest import digest_due, render_digest, start_digest
from blmonitor.monitor.heartbeat import ping, ping_url
from blmonitor.monitor.notify import Message, Notifier, render_batch
from blmonitor.monitor.store import RunRecord, Store
from blmonitor.smarthost.service import route_mail
from blmonitor.sources import service as sources
from blmonitor.sources.models import ReputationRecord

log = logging.getLogger("blmonitor")

Clock = Callable[[], datetime]
Discover = Callable[[float], list[str]]

# A message that could not be delivered for this long is old news: it is kept, marked
# expired and logged, and no longer retried on every run.
NOTIFICATION_EXPIRY = timedelta(days=7)


def server_name(config: Config) -> str:
    """How notifications name this server: [notify] server_name, else its FQDN (a DNS lookup,
    so it is asked only when a run or a command needs it)."""
    return config.notify.server_name or socket.getfqdn()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def discover_public(timeout: float) -> list[str]:
    from blmonitor.dnsbl import publicip

    return [str(a) for a in asyncio.run(publicip.discover(timeout=timeout))]


@dataclass(frozen=True, slots=True)
class RunSummary:
    verdict: Verdict
    events: tuple[Event, ...]
    delivered: int
    failed: int
    error: str = ""


def check_once(config: Config, catalog: Catalog, targets: list[str]) -> Report:
    """One check of `targets` with the config's zones, resolvers and limits (the warnings of
    `blmonitor check` are logged, once per process: a public resolver, a dead zone named)."""
    if not targets:
        raise UsageError(f"{config.source}: [monitor] targets: nothing to check")
    report = dnsbl_service.check(check_settings(config), targets, catalog=catalog)
    log_once(report.warnings)
    return report


# The warnings this process has logged. A check's warnings come from the config (a zone the
# catalog does not know, a dead zone, a public resolver): the same on every run, so the daemon
# logs each once, not every interval into the journal. A reloaded config's new ones are logged.
_WARNED: set[str] = set()


def log_once(warnings: Iterable[str]) -> None:
    """Log each warning the first time this process meets it."""
    for warning in warnings:
        if warning not in _WARNED:
            _WARNED.add(warning)
            log.warning("%s", warning)


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
    """Check, compare with the stored state, store the run, then send what is pending.

    `host` names this server in notifications (default: `server_name`, asked once a run)."""
    host = host or server_name(config)
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
        error = monitor.blind_reason(report, min_share=config.monitor.min_answered)
        if error:
            log.error("nothing checked this run: %s", error)
        after, events = monitor.evaluate(
            report, before, now=finished, confirm=confirm, silent=silent,
            min_share=config.monitor.min_answered,
        )  # fmt: skip
        if config.monitor.discover:
            after, moved = monitor.evaluate_addresses(after, found, now=finished)
            events += moved
    evidence, positions = read_bounces(config, store)
    if evidence or after.bounces:
        expire = timedelta(seconds=config.bounces.expire)
        after, seen = monitor.evaluate_bounces(after, evidence, now=finished, expire=expire)
        events += seen
    # Without this run's public addresses the targets are incomplete: a source polled now
    # would end the listings of the missing ones, so it waits for a run that found them.
    lost = config.monitor.discover and not found
    targets = [] if lost else [*config.monitor.fixed_targets, *found]
    after, told, reputation = poll_sources(config, after, targets, now=finished)
    events += told
    for event in events:
        log.warning("%s", " ".join(filter(None, [f"{event.kind}:", event.target, event.zone,
                                                 event.detail])))  # fmt: skip
    queued = []
    if events and notifier is not None:
        message = render_batch(
            events, host=host, title_prefix=config.notify.title_prefix,
            all_clear=not after.listed,
        )  # fmt: skip
        if message.severity >= config.notify.min_severity:
            queued.append(message.queued())
    try:
        store.record_run(
            RunRecord(started, finished, report, error),
            before,
            after,
            events,
            queued,
            evidence=[(r, a) for r, a in evidence if a.verdict is not BounceVerdict.OTHER],
            positions=positions,
            reputation=reputation,
        )
        store.prune(finished - timedelta(seconds=config.monitor.retention))
    except StoreError as exc:
        # A full disk, a broken file: this run's changes stay unrecorded, so the next run
        # that can write finds (and tells) them again; the failure itself is told once.
        return _unrecorded(config, notifier, str(exc), host=host)
    _UNRECORDED.clear()
    if config.smarthost.mode is not SmarthostMode.OFF:
        try:
            route_mail(config, store, after, now=finished, host=host)
        except BlmonitorError as exc:
            log.error("smart host: %s", exc)
    look_for_causes(config, store, now=finished, host=host)
    if not error and notifier is not None:
        queue_digest(config, store, after, now=finished, host=host)
    delivered, failed = deliver_pending(store, notifier, clock)
    send_heartbeat(config, store, error, now=finished)
    verdict = report.verdict if report is not None and not error else Verdict.UNKNOWN
    if verdict is Verdict.CLEAN and after.sources:  # a receiver's own data blocks us (SNDS)
        verdict = Verdict.LISTED
    if verdict is Verdict.CLEAN and any(h.error for h in after.source_health.values()):
        verdict = Verdict.UNKNOWN  # a receiver's data that cannot be read: not clean
    log.info(
        "run done: %s, %d event(s), %d notification(s) sent, %d failed",
        verdict, len(events), delivered, failed,
    )  # fmt: skip
    return RunSummary(verdict, tuple(events), delivered, failed, error)


def poll_sources(
    config: Config, state: monitor.MonitorState, targets: list[str], *, now: datetime
) -> tuple[monitor.MonitorState, list[Event], list[ReputationRecord]]:
    """The receivers' own data (SNDS…): each enabled source when its poll is due, evaluated
    into the state; a source no longer enabled leaves it. Its reputation rows are returned to
    be stored with the run."""
    enabled = [s.name for s in sources.SOURCES if s.enabled(config)]
    state = monitor.forget_sources(state, enabled)
    results = sources.poll_due(config, targets, state.source_health, now=now)
    if not results:
        return state, [], []
    state, events = monitor.evaluate_sources(state, results, now=now, labels=sources.LABELS)
    return state, events, [record for result in results for record in result.reputation]


_UNRECORDED: set[str] = set()  # the write errors told by this process


def _unrecorded(config: Config, notifier: Notifier | None, error: str, *, host: str) -> RunSummary:
    log.error("history not written, this run is lost: %s", error)
    delivered = failed = 0
    if notifier is not None and error not in _UNRECORDED:
        title = f"{config.notify.title_prefix} {host}: UNKNOWN: history cannot be written"
        body = (f"{error}\nnext step: free space or fix the database file; changes are "
                "found and told again by the first run that can write."
                f"\n\n-- \nblmonitor on {host}")  # fmt: skip
        delivery = notifier.send(Message(title, body, Severity.CRITICAL, ("store-failed",)))
        delivered, failed = (1, 0) if delivery.ok else (0, 1)
    _UNRECORDED.add(error)
    return RunSummary(Verdict.UNKNOWN, (), delivered, failed, f"history not written: {error}")


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
        message = Message(
            pending.title, pending.body, pending.severity, pending.kinds, pending.payload
        )
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


def queue_digest(
    config: Config, store: Store, state: monitor.MonitorState, *, now: datetime, host: str
) -> None:
    """After a run that saw: the digest when one is due ([notify] digest), stored to be sent
    with the run's other notifications; the first such run only starts the first period."""
    if config.notify.digest is Digest.OFF:
        return
    memory = store.load_notices()
    if memory.digest_since is None:
        store.save_notices(start_digest(memory, now=now), at=now)
        return
    if not digest_due(memory, now=now, period=PERIODS[config.notify.digest]):
        return
    runs, blind = store.count_runs(memory.digest_since)
    message = render_digest(
        state, name=str(config.notify.digest), since=memory.digest_since, now=now, runs=runs,
        blind_runs=blind, host=host, severity=config.notify.min_severity,
        title_prefix=config.notify.title_prefix,
    )  # fmt: skip
    store.save_notices(start_digest(memory, now=now), message.queued(), at=now)


def send_heartbeat(config: Config, store: Store, blind: str, *, now: datetime) -> None:
    """Ping [notify] heartbeat_url (see `heartbeat.ping_url` for a blind run). A failed ping
    never fails the run, and is logged once until its error changes."""
    url = config.notify.heartbeat_url and ping_url(config.notify.heartbeat_url, blind=blind)
    if not url:
        return
    problem = ping(url)
    try:
        memory = store.load_notices()
        if problem == memory.heartbeat_error:
            return
        if problem:
            log.error("heartbeat ping failed: %s (told once until it changes)", problem)
        else:
            log.info("heartbeat ping works again")
        store.save_notices(replace(memory, heartbeat_error=problem), at=now)
    except BlmonitorError as exc:
        log.error("heartbeat: %s", exc)


def notifier_for(config: Config) -> Notifier | None:
    if not config.notify.urls and config.notify.apprise_config is None:
        return None
    return Notifier(
        urls=config.notify.urls,
        apprise_config=config.notify.apprise_config,
        min_severity=config.notify.min_severity,
        retries=config.notify.retry,
    )
