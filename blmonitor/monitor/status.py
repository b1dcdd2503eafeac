"""What the history says: the status now (listings, pending changes, sick zones, smart-host
routing, signs of a cause, last and next run, the verdict) and the listing episodes. Each is a
typed result with a text and a JSON renderer, for the command line and any other face.
Reading never creates a database: without one, the result is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blmonitor.dnsbl.report import table
from blmonitor.errors import UsageError
from blmonitor.models import Severity, Verdict
from blmonitor.monitor.notify import format_duration
from blmonitor.monitor.state import (
    BounceListing,
    CauseMemory,
    MonitorState,
    PairState,
    SourceHealth,
    SourceListingState,
    ZoneState,
)
from blmonitor.sources.models import Rating

if TYPE_CHECKING:
    from blmonitor.config import Config
    from blmonitor.monitor.store import Store

# The smart-host outcomes that mean mail goes (or should go) through the relay.
_ROUTED = {"done": "goes through", "requested": "was asked to go through",
           "recommended": "should go through (recommended)"}  # fmt: skip


def open_history(config: Config) -> Store | None:
    """The config's history database; None when no run has made one yet."""
    from blmonitor.monitor.store import Store  # sqlite_utils: only for commands that read it

    if not config.monitor.database.exists():
        return None
    return Store(config.monitor.database, readonly=True)


@dataclass(frozen=True, slots=True)
class Status:
    listed: tuple[PairState, ...]
    pending: tuple[PairState, ...]  # changes seen, not confirmed yet
    bounced: tuple[BounceListing, ...]  # listings named by returned mail
    sick: tuple[ZoneState, ...]  # zones not usable
    routing: dict[str, Any] | None  # the last smart-host action, when it routes mail
    findings: tuple[str, ...]  # the last run's signs of a cause
    last_run: dict[str, Any] | None
    next_run: datetime | None
    confirm: int  # runs that confirm a change
    database: Path
    blind_since: datetime | None = None  # the first of the blind runs in a row, if any
    sourced: tuple[SourceListingState, ...] = ()  # listings from receivers' data (SNDS…)
    sources: tuple[SourceHealth, ...] = ()  # each receiver data source: read or not, ratings
    # the parts the daily posture check could not answer, and since when (tried hourly)
    posture_unanswered: tuple[str, ...] = ()
    posture_unanswered_since: datetime | None = None

    @property
    def confirming(self) -> tuple[PairState, ...]:
        """New listings seen, not confirmed yet."""
        return tuple(p for p in self.pending if p.candidate)

    @property
    def verdict(self) -> Verdict:
        """Unknown without a run or when the last one was blind; listed by DNS or by bounces,
        or about to be (a listing seen and being confirmed)."""
        if not self.last_run or self.last_run["error"]:
            return Verdict.UNKNOWN
        if self.listed or self.bounced or self.sourced or self.confirming:
            return Verdict.LISTED
        # clean on the DNS lists, but a receiver's own data that could not be read says nothing
        return Verdict.UNKNOWN if self.unread else Verdict.CLEAN

    @property
    def unread(self) -> tuple[SourceHealth, ...]:
        """The receivers' data sources whose last poll failed."""
        return tuple(h for h in self.sources if h.error)

    @property
    def headline(self) -> str:
        """The first word a person reads: never CLEAN when the last run could not see."""
        if self.verdict is Verdict.UNKNOWN and self.last_run and not self.last_run["error"]:
            unread = ", ".join(
                f"{h.label or h.source} since {_minutes(h.since)}" if h.since else h.label
                for h in self.unread
            )
            return f"UNKNOWN: cannot read {unread}; the DNS lists are clean"
        if self.verdict is Verdict.UNKNOWN:
            since = _minutes(self.blind_since) if self.blind_since else "the last run"
            known = len(self.listed) + len(self.bounced) + len(self.sourced)
            still = f" (still LISTED: {known} listing(s) known before)" if known else ""
            return f"UNKNOWN{still}: nothing checked since {since}"
        if self.listed or self.bounced or self.sourced:
            return "LISTED"
        if self.confirming:
            return f"LISTED? (confirming: {len(self.confirming)})"
        return "CLEAN"


def read_status(config: Config) -> Status:
    """The status as the history database holds it."""
    state, last = MonitorState(), None
    routing: dict[str, Any] | None = None
    findings: list[str] = []
    causes = CauseMemory()
    store = open_history(config)
    if store is not None:
        try:
            state = store.load_state()
            last = store.last_run()
            actions = store.smarthost_actions()
            if actions and actions[0]["outcome"] in _ROUTED:
                routing = actions[0]
            causes = store.load_causes()
            findings = list(causes.messages)
        finally:
            store.close()
    next_run = (
        datetime.fromisoformat(last["started"]) + timedelta(seconds=config.monitor.interval)
        if last
        else None
    )
    return Status(
        listed=tuple(sorted((p for p in state.pairs.values() if p.listed),
                            key=lambda p: (p.target, p.zone))),
        pending=tuple(sorted((p for p in state.pairs.values() if p.candidate is not None),
                             key=lambda p: (p.target, p.zone))),
        bounced=tuple(sorted(state.bounces.values(), key=lambda b: (b.target, b.list))),
        sick=tuple(sorted((z for z in state.zones.values() if not z.usable),
                          key=lambda z: z.zone)),
        routing=routing, findings=tuple(findings), last_run=last, next_run=next_run,
        confirm=config.monitor.confirm, database=config.monitor.database,
        blind_since=state.failing_since if state.failing_runs else None,
        sourced=tuple(sorted(state.sources.values(), key=lambda s: (s.target, s.zone))),
        sources=tuple(sorted(state.source_health.values(), key=lambda h: h.source)),
        posture_unanswered=causes.posture_unanswered,
        posture_unanswered_since=causes.posture_unanswered_since,
    )  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _nulls(data: Any) -> Any:
    """One convention for what is missing: null, never "" (the store's rows keep "")."""
    if isinstance(data, dict):
        return {key: _nulls(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_nulls(value) for value in data]
    return None if data == "" else data


def status_json(status: Status) -> dict[str, Any]:
    data: dict[str, Any] = _nulls({
        "listed": [
            {"target": p.target, "zone": p.label, "codes": list(p.codes), "meaning": p.meaning,
             "txt": list(p.txt),
             "severity": p.severity.label if p.severity else None, "since": _iso(p.since),
             "delist_url": p.delist_url or None}
            for p in status.listed
        ],
        "pending": [
            {"target": p.target, "zone": p.label, "change": "listed" if p.candidate else "delisted",
             "seen": p.streak, "of": status.confirm, "since": _iso(p.candidate_since)}
            for p in status.pending
        ],
        "zones": [
            {"zone": z.label, "health": z.health, "detail": z.detail, "since": _iso(z.since)}
            for z in status.sick
        ],
        "bounce_listings": [
            {"target": b.target or None, "list": b.list, "provider": b.provider or None,
             "since": b.since.isoformat(), "last_seen": b.last_seen.isoformat(),
             "bounces": b.count, "delist_url": b.delist_url or None}
            for b in status.bounced
        ],
        "source_listings": [
            {"target": s.target, "list": s.listing.list, "source": s.label,
             "receiver": s.listing.who, "provider": s.listing.provider,
             "kind": str(s.listing.kind), "reason": s.listing.reason, "detail": s.listing.detail,
             "since": s.since.isoformat(), "delist_url": s.listing.delist_url}
            for s in status.sourced
        ],
        "sources": [
            {"source": h.label or h.source, "usable": h.usable, "error": h.error,
             "error_since": _iso(h.since), "last_poll": _iso(h.polled),
             "last_read": _iso(h.ok_at), "unknown": list(h.unknown),
             "reputation": [{"subject": subject, "day": day.isoformat(), "rating": str(rating),
                             "raw": raw}
                            for subject, (day, rating, raw) in sorted(h.ratings.items())]}
            for h in status.sources
        ],
        "smarthost": status.routing,
        "findings": list(status.findings),
        "posture_unanswered": {"since": _iso(status.posture_unanswered_since),
                               "parts": list(status.posture_unanswered)}
                              if status.posture_unanswered else None,
        "verdict": str(status.verdict),
        "headline": status.headline,
        "blind_since": _iso(status.blind_since),
        "last_run": status.last_run,
        "next_run": _iso(status.next_run),
        "database": str(status.database),
    })  # fmt: skip
    return data


def ago(moment: str | None, now: datetime) -> str:
    """How long ago, in the largest units that read well: "5 min", "3 h 20 min", "2 d 4 h"."""
    if not moment:
        return "?"
    span = now - datetime.fromisoformat(moment)
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


def _minutes(moment: datetime | None) -> str:
    return moment.isoformat(timespec="minutes") if moment else "?"


def _listed_lines(listed: tuple[PairState, ...], now: datetime) -> list[str]:
    rows = [["target", "zone", "codes", "severity", "since", "for"]]
    rows += [[p.target, p.label, ",".join(p.codes), p.severity.label if p.severity else "",
              _minutes(p.since), ago(_iso(p.since), now)] for p in listed]  # fmt: skip
    lines = [f"LISTED ({len(listed)})", *table(rows)]
    for p in listed:
        lines.append(f"  {p.target} on {p.label}: {p.meaning}")
        lines += [f"      says: {text}" for text in p.txt]  # the list's own words
        if p.delist_url:
            lines.append(f"      delist: {p.delist_url}")
    return [*lines, ""]


def _bounced_lines(bounced: tuple[BounceListing, ...]) -> list[str]:
    rows = [["target", "list", "bounces", "first", "last"]]
    rows += [[b.target or "?", b.list, str(b.count), b.since.isoformat(timespec="minutes"),
              b.last_seen.isoformat(timespec="minutes")] for b in bounced]  # fmt: skip
    lines = [f"LISTED, FROM RETURNED MAIL ({len(bounced)})", *table(rows)]
    lines += [f"  {b.list}: delist: {b.delist_url}" for b in bounced if b.delist_url]
    return [*lines, ""]


def _sourced_lines(sourced: tuple[SourceListingState, ...], now: datetime) -> list[str]:
    lines = [f"LISTED BY RECEIVERS' OWN DATA ({len(sourced)})"]
    for s in sourced:
        lines.append(f"  {s.listing.who}: blocked ({s.label}, since {_minutes(s.since)}, for "
                     f"{ago(_iso(s.since), now)}) — {s.target}: {s.listing.reason}")  # fmt: skip
        if s.listing.detail:
            lines.append(f"      {s.listing.detail}")
        if s.listing.delist_url:
            lines.append(f"      delist: request delisting at {s.listing.delist_url}")
    return [*lines, ""]


def _source_lines(sources: tuple[SourceHealth, ...]) -> list[str]:
    lines = []
    for h in sources:
        name = h.label or h.source
        if h.error:
            lines.append(f"  {name}: UNKNOWN since {_minutes(h.since)}: {h.error}")
        else:
            lines.append(f"  {name}: read {_minutes(h.ok_at)}")
        for subject, (day, rating, raw) in sorted(h.ratings.items()):
            if rating in (Rating.POOR, Rating.BAD):
                lines.append(f"  {name}: {subject} {raw} ({rating}) on {day.isoformat()}")
        if h.unknown:
            lines.append(f"  {name}: no data for {', '.join(h.unknown)} (register it there)")
    return ["RECEIVERS' DATA", *lines, ""] if lines else []


def render_status(status: Status, *, now: datetime) -> str:
    """The status for a person: what is listed, what is pending, and the last and next run."""
    last = status.last_run
    if not last:
        return (f"no check has run yet (database {status.database}): "
                "start one with 'blmonitor run --once'")  # fmt: skip
    lines: list[str] = []
    if status.listed:
        lines += _listed_lines(status.listed, now)
    if status.bounced:
        lines += _bounced_lines(status.bounced)
    if status.sourced:
        lines += _sourced_lines(status.sourced, now)
    lines += _source_lines(status.sources)
    if status.pending:
        lines.append("CHANGES NOT CONFIRMED YET")
        lines += [f"  {p.target} {'listed' if p.candidate else 'delisted'} on {p.label}: "
                  f"seen {p.streak} of {status.confirm} runs" for p in status.pending]  # fmt: skip
        lines.append("")
    if status.sick:
        lines.append("ZONES NOT USABLE")
        lines += table([["zone", "health", "since", "why"]]
                       + [[z.label, z.health, _minutes(z.since), z.detail]
                          for z in status.sick])  # fmt: skip
        lines.append("")
    routing = status.routing
    if routing is not None and routing["action"] == "apply":
        how = _ROUTED[routing["outcome"]]
        lines += [f"SMART HOST: outbound mail {how} {routing['relay']} since {routing['at']}", ""]
    if status.findings or status.posture_unanswered:
        lines.append("SIGNS OF A CAUSE (blmonitor diagnose tells more)")
        lines += [f"  {line}" for line in status.findings]
        if status.posture_unanswered:
            lines.append(f"  the posture check could not answer since "
                         f"{_minutes(status.posture_unanswered_since)} (tried again hourly): "
                         f"{'; '.join(status.posture_unanswered)}")  # fmt: skip
        lines.append("")
    failed = f", failed: {last['error']}" if last["error"] else ""
    upcoming = _minutes(status.next_run)
    lines.append(f"{status.headline}: last check {last['finished']} "
                 f"({ago(last['finished'], now)} ago, {last['verdict']}{failed}); "
                 f"next about {upcoming}")  # fmt: skip
    return "\n".join(lines)


# --- listing episodes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class History:
    cutoff: datetime | None  # --since, as a moment
    episodes: tuple[dict[str, Any], ...]  # the store's rows, with "seconds" and the severity
    zone_episodes: tuple[dict[str, Any], ...]
    reputation: tuple[dict[str, Any], ...] = ()  # the poor and bad days the sources gave


def parse_since(text: str, *, now: datetime) -> datetime:
    """`--since`: a duration back from now (7d, 24h) or a date (2026-11-01, UTC if no zone)."""
    from blmonitor.config.table import parse_duration

    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        cutoff = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: give a duration (7d, 24h) or a date "
                         "(2026-11-01)") from None  # fmt: skip
    return cutoff if cutoff.tzinfo is not None else cutoff.replace(tzinfo=UTC)


def read_history(
    config: Config, *, since: datetime | None = None, target: str = "", zone: str = ""
) -> History:
    """The listing and zone episodes open or ended after `since`, with how long each lasted."""
    episodes: list[dict[str, Any]] = []
    zone_episodes: list[dict[str, Any]] = []
    reputation: list[dict[str, Any]] = []
    store = open_history(config)
    if store is not None:
        try:
            episodes = store.episodes(since=since, target=target, zone=zone)
            zone_episodes = store.zone_episodes(since=since, zone=zone)
            reputation = store.reputation(since=since, subject=target, worse_than_good=True)
        finally:
            store.close()
    for episode in episodes:
        end = datetime.fromisoformat(episode["ended"] or episode["last_seen"])
        episode["seconds"] = (end - datetime.fromisoformat(episode["first_seen"])).total_seconds()
        episode["severity"] = Severity(episode["severity"]).label if episode["severity"] else None
    return History(since, tuple(episodes), tuple(zone_episodes), tuple(reputation))


def history_json(history: History) -> dict[str, Any]:
    data: dict[str, Any] = _nulls(
        {
            "episodes": history.episodes,
            "zone_episodes": history.zone_episodes,
            "reputation": history.reputation,
        }
    )
    return data


def render_history(history: History) -> str:
    if not history.episodes and not history.zone_episodes and not history.reputation:
        cutoff = history.cutoff
        return "no listing episodes" + (
            f" since {cutoff.isoformat(timespec='minutes')}" if cutoff else ""
        )
    lines: list[str] = []
    if history.episodes:
        rows = [["target", "zone", "codes", "first seen", "ended", "lasted"]]
        for e in history.episodes:
            ended = e["ended"] or "still listed"
            if e.get("end_reason") == "unmonitored":
                ended = f"no longer monitored since {e['ended']}"
            lasted = format_duration(timedelta(seconds=e["seconds"]))
            rows.append([e["target"], e["zone"], ",".join(e["codes"]), e["first_seen"],
                         ended, lasted])  # fmt: skip
        lines += [f"LISTING EPISODES ({len(history.episodes)})", *table(rows)]
    if history.zone_episodes:
        lines.append(f"ZONE EPISODES ({len(history.zone_episodes)})")
        lines += table([["zone", "health", "first seen", "ended"]]
                       + [[z["zone"], z["health"], z["first_seen"], z["ended"] or "ongoing"]
                          for z in history.zone_episodes])  # fmt: skip
    if history.reputation:
        from blmonitor.sources.service import LABELS

        lines.append(f"POOR OR BAD REPUTATION DAYS ({len(history.reputation)})")
        lines += table([["source", "subject", "day", "rating", "note"]]
                       + [[LABELS.get(r["source"], r["source"]), r["subject"], r["day"],
                           r["raw"] or r["rating"], r["note"]]
                          for r in history.reputation])  # fmt: skip
    return "\n".join(lines)
