"""The daemon: one monitoring run (`run_once`) and the loop that repeats it (`serve`).

Wires the parts together — config, public-IP discovery, the check engine, the monitor logic,
the history database and the notifier — and is, with cli.py, the only place that does. A run
is written to the database in one transaction before anything is sent, so a failed delivery
is retried next run and a kill at any point loses nothing committed. SIGTERM lets the current
run finish its write, then exits; SIGHUP reloads the config between runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
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

from blmonitor.bounces import watch
from blmonitor.bounces.attribution import attribute_record, embedded_rules
from blmonitor.bounces.models import Attribution, BounceRecord, BounceVerdict
from blmonitor.config import Config, load_config
from blmonitor.dnsbl import answers as dnsbl
from blmonitor.dnsbl import engine
from blmonitor.dnsbl.catalog import Catalog, catalog_from, read_dqs_key, select_zones
from blmonitor.dnsbl.resolver import system_nameservers
from blmonitor.errors import BlmonitorError, UsageError
from blmonitor.models import Event, Report, Severity, Verdict
from blmonitor.monitor import state as monitor
from blmonitor.monitor.notify import (
    Message,
    Notifier,
    render_batch,
    render_findings,
    render_smarthost,
)
from blmonitor.monitor.store import RunRecord, Store
from blmonitor.smarthost import policy
from blmonitor.smarthost.apply import Outcome, Smarthost, detect_mta
from blmonitor.smarthost.plan import Mta, Plan, Relay, Scope, render_plan
from blmonitor.smarthost.policy import Blocking

log = logging.getLogger("blmonitor")

Clock = Callable[[], datetime]
Discover = Callable[[float], list[str]]

# A message that could not be delivered for this long is old news: it is kept, marked
# expired and logged, and no longer retried on every run.
NOTIFICATION_EXPIRY = timedelta(days=7)


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
    if config.smarthost.mode != "off":
        try:
            route_mail(config, store, after, now=finished, host=host or socket.getfqdn())
        except BlmonitorError as exc:
            log.error("smart host: %s", exc)
    look_for_causes(config, store, now=finished, host=host or socket.getfqdn())
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
    from blmonitor.monitor.metrics import MetricsServer, parse_listen, serve_metrics, store_renderer

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


# --- the smart host while listed ----------------------------------------------------------

REQUEST_NAME = "request.json"  # what the unprivileged daemon asks of the root unit


def relay_of(config: Config) -> Relay:
    sh = config.smarthost
    if not sh.host:
        raise UsageError(f"{config.source}: [smarthost] host is not set (the ISP's relay)")
    return Relay(sh.host, sh.port, sh.username, sh.password_file, sh.tls)


def mta_of(config: Config, mta: str = "") -> Mta:
    chosen = mta or config.smarthost.mta
    return detect_mta() if chosen == "auto" else Mta(chosen)


def smarthost_of(
    config: Config,
    *,
    mta: str = "",
    config_dir: Path | None = None,
    destinations: tuple[str, ...] = (),
) -> Smarthost:
    """The smart-host switch the config describes (an MTA that blmonitor can change)."""
    return Smarthost(
        mta_of(config, mta), relay_of(config),
        config_dir=config_dir or config.smarthost.config_dir,
        state_dir=config.smarthost_state_dir, scope=Scope(config.smarthost.scope),
        destinations=destinations, soften=config.smarthost.soften,
    )  # fmt: skip


def smarthost_plan(
    config: Config,
    action: str,
    *,
    mta: str = "",
    config_dir: Path | None = None,
    destinations: tuple[str, ...] = (),
) -> Plan:
    """The exact change (`apply` or `revert`) for this machine's MTA, or Exchange's snippet."""
    if mta_of(config, mta) is Mta.EXCHANGE:
        from blmonitor.smarthost import exchange

        relay = relay_of(config)
        scope = Scope(config.smarthost.scope)
        if action == "apply":
            return exchange.plan_apply(relay, scope=scope, destinations=destinations)
        return exchange.plan_revert()
    switch = smarthost_of(config, mta=mta, config_dir=config_dir, destinations=destinations)
    return switch.plan_apply() if action == "apply" else switch.plan_revert()


def wanted_destinations(
    config: Config, store: Store, current: tuple[Blocking, ...]
) -> tuple[str, ...]:
    """With scope = destinations: the receiving domains that block us now."""
    if config.smarthost.scope != "destinations":
        return ()
    bounced = store.bounced_domains({b.list.removesuffix(" (bounce)") for b in current})
    return policy.destinations(current, receivers=policy.load_receivers(), bounced=bounced)


def smarthost_act(
    config: Config,
    store: Store,
    action: str,
    *,
    now: datetime,
    host: str,
    reason: str,
    destinations: tuple[str, ...] = (),
    mta: str = "",
    config_dir: Path | None = None,
) -> Outcome:
    """Apply or revert, record it and queue its notification; a failure is recorded, notified
    once per distinct error, and raised."""
    switch = smarthost_of(config, mta=mta, config_dir=config_dir, destinations=destinations)
    relay = f"{switch.relay.host}:{switch.relay.port}"
    record = {"action": action, "mta": str(switch.mta), "scope": config.smarthost.scope,
              "relay": relay, "destinations": destinations}  # fmt: skip
    prefix = config.notify.title_prefix
    try:
        outcome = switch.apply(now=now.isoformat()) if action == "apply" else switch.revert()
    except BlmonitorError as exc:
        error = str(exc)
        first = store.meta("smarthost_error") != error
        message = render_smarthost(action, host=host, mta=str(switch.mta), relay=relay,
                                   reason=reason, error=error, title_prefix=prefix)  # fmt: skip
        store.record_smarthost(now, {**record, "outcome": "failed", "detail": error},
                               _queued(message) if first else None)  # fmt: skip
        store.set_meta("smarthost_error", error)
        if action == "apply":  # not applied: the monitor asks again on its next run
            store.set_meta("smarthost_wanted", None)
        raise
    store.set_meta("smarthost_error", None)
    if not outcome.changed:
        store.record_smarthost(now, {**record, "outcome": "unchanged",
                                     "detail": "; ".join(outcome.notes)})  # fmt: skip
        return outcome
    message = render_smarthost(action, host=host, mta=str(switch.mta), relay=relay,
                               reason=reason, notes=outcome.notes, title_prefix=prefix)  # fmt: skip
    store.record_smarthost(now, {**record, "outcome": "done", "detail": reason}, _queued(message))
    log.warning("smart host %s: %s (%s)", action, record["relay"], reason)
    return outcome


def _queued(message: Message) -> tuple[str, str, Severity, tuple[str, ...]]:
    return (message.title, message.body, message.severity, message.kinds)


def route_mail(config: Config, store: Store, state: monitor.MonitorState, *, now: datetime,
               host: str) -> None:  # fmt: skip
    """After a run: recommend, apply (root) or request (unprivileged) the smart-host change the
    policy asks for; changes only, so a listing that stays listed is acted on once."""
    sh = config.smarthost
    current = policy.blocking(state, min_severity=sh.min_severity)
    if current:
        store.set_meta("smarthost_last_listed", now.isoformat())
    wanted = store.meta("smarthost_wanted") or {}
    applied = wanted.get("action") == "apply"
    last = store.meta("smarthost_last_listed")
    decision = policy.decide(
        current, now=now, applied=applied,
        last_listed=datetime.fromisoformat(last) if last else None,
        after=timedelta(seconds=sh.after), revert_after=timedelta(seconds=sh.revert_after),
    )  # fmt: skip
    destinations = wanted_destinations(config, store, current)
    if (
        applied
        and current
        and destinations
        and tuple(wanted.get("destinations", ())) != destinations
    ):
        decision = policy.Decision("apply", "the receivers that block us changed", current)
    if decision.action == "keep":
        return
    action = decision.action
    if action == "apply" and sh.scope == "destinations" and not destinations:
        log.info("smart host: listed, but no receiving domain is known to block us yet")
        return
    if sh.mode == "recommend":
        try:
            text = render_plan(smarthost_plan(config, action, destinations=destinations),
                               relay_of(config))  # fmt: skip
        except BlmonitorError as exc:
            text = f"(the exact change could not be planned here: {exc})"
        try:
            mta = str(mta_of(config))
        except BlmonitorError:
            mta = "your MTA"
        message = render_smarthost(action, host=host, mta=mta,
                                   relay=f"{sh.host}:{sh.port}", reason=decision.reason,
                                   recommend=True, plan_text=text,
                                   title_prefix=config.notify.title_prefix)  # fmt: skip
        store.record_smarthost(now, {"action": action, "outcome": "recommended",
                                     "relay": f"{sh.host}:{sh.port}", "scope": sh.scope,
                                     "destinations": destinations, "detail": decision.reason},
                               _queued(message))  # fmt: skip
    elif os.geteuid() == 0:
        smarthost_act(config, store, action, now=now, host=host, reason=decision.reason,
                      destinations=destinations)  # fmt: skip
    else:
        write_request(config, action, destinations=destinations, reason=decision.reason, now=now)
        record = {
            "action": action,
            "outcome": "requested",
            "relay": f"{sh.host}:{sh.port}",
            "scope": sh.scope,
            "destinations": destinations,
            "detail": decision.reason,
        }
        store.record_smarthost(now, record)
    store.set_meta("smarthost_wanted", {"action": action, "destinations": list(destinations)})


def write_request(config: Config, action: str, *, destinations: tuple[str, ...], reason: str,
                  now: datetime) -> Path:  # fmt: skip
    """Ask the root unit (blmonitor-smarthost.path) to apply or revert."""
    directory = config.smarthost_state_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / REQUEST_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"action": action, "destinations": list(destinations),
                                   "reason": reason, "at": now.isoformat()}))  # fmt: skip
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(
            f"cannot write the smart-host request in {directory}: {exc.strerror}"
        ) from exc
    return path


def sync_smarthost(config: Config, store: Store, *, now: datetime, host: str) -> Outcome | None:
    """`blmonitor smarthost sync` (the root unit): carry out the daemon's latest request."""
    path = config.smarthost_state_dir / REQUEST_NAME
    try:
        request = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the smart-host request {path}: {exc}") from exc
    action = request.get("action")
    if action not in ("apply", "revert"):
        raise UsageError(f"{path}: action {action!r} is neither apply nor revert")
    outcome = smarthost_act(config, store, action, now=now, host=host,
                            reason=str(request.get("reason", "requested by the monitor")),
                            destinations=tuple(request.get("destinations", ())))  # fmt: skip
    return outcome


# --- signs of the cause: the queue and the logs ----------------------------------------------

LOG_WINDOW = timedelta(hours=24)
POSTFIX_DIR = Path("/etc/postfix")


def queue_source(config: Config) -> str:
    """Which queue the daemon can read: "postfix", "exim", or "" (none configured here)."""
    postfix_dir = config.diagnose.config_dir or POSTFIX_DIR
    if shutil.which("postqueue") and (postfix_dir / "main.cf").exists():
        return "postfix"
    if shutil.which("exim4") or shutil.which("exim"):
        return "exim"
    return ""


def look_for_causes(config: Config, store: Store, *, now: datetime, host: str) -> list[str]:
    """The queue and the logs, on each run: new findings become events and one notification
    (a finding that stays is not told again). Returns the findings' messages."""
    from blmonitor.causes import logs as logstats
    from blmonitor.causes import queue as mailqueue

    found: list[tuple[str, str, str]] = []  # kind, who or what it is about, the message
    local = config.diagnose.local_domains
    source = queue_source(config) if config.diagnose.queue else ""
    if source:
        try:
            if source == "postfix":
                messages = mailqueue.read_postfix_queue(config_dir=config.diagnose.config_dir)
            else:
                exim = "exim4" if shutil.which("exim4") else "exim"
                messages = mailqueue.read_exim_queue(now=now, exim=exim)
        except BlmonitorError as exc:
            if store.meta("queue_error") != str(exc):
                log.warning("queue not read: %s", exc)
                store.set_meta("queue_error", str(exc))
        else:
            store.set_meta("queue_error", None)
            report = mailqueue.analyse_queue(messages, now=now, local_domains=local)
            found += [(f"queue-{f.kind}", f.sender, f.message) for f in report.findings]
            snapshot = mailqueue.QueueSnapshot(now, report.messages)
            before = store.meta("queue_snapshot")
            if before:
                earlier = mailqueue.QueueSnapshot(datetime.fromisoformat(before["at"]),
                                                  before["messages"])  # fmt: skip
                grew = mailqueue.growth_finding(mailqueue.queue_growth(earlier, snapshot))
                if grew is not None:
                    found.append((f"queue-{grew.kind}", "", grew.message))
            store.set_meta("queue_snapshot", {"at": now.isoformat(), "messages": report.messages})
    logs = [p for p in config.diagnose.logs if p.exists()]
    if logs:
        try:
            window = now - LOG_WINDOW
            report_log = logstats.analyse_log_files(logs, since=window, local_domains=local)
        except BlmonitorError as exc:
            log.warning("logs not read: %s", exc)
        else:
            found += [(f"log-{f.kind}", f.subject, f.message) for f in report_log.findings]
    # a finding stays the same finding while its kind and subject do (its counts change)
    known = set(store.meta("cause_findings") or ())
    keys = {f"{kind}:{subject}" for kind, subject, _ in found}
    fresh = [(kind, text) for kind, subject, text in found if f"{kind}:{subject}" not in known]
    if fresh:
        message = render_findings(fresh, host=host, title_prefix=config.notify.title_prefix)
        queued = _queued(message) if message.severity >= config.notify.min_severity else None
        store.record_findings(now, fresh, queued)
        for kind, text in fresh:
            log.warning("%s: %s", kind, text)
    if keys != known:
        store.set_meta("cause_findings", sorted(keys))
    messages_now = [text for _, _, text in found]
    if messages_now != (store.meta("cause_messages") or []):
        store.set_meta("cause_messages", messages_now)
    return messages_now
