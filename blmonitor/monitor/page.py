"""The report page as data: the verdict now, a timeline per target, the listings in force, zone
health, the receivers' own data (SNDS, Gmail Postmaster: read or not, each subject's latest
rating, the poor and bad days), causes and recent events — a typed `Page` read from the history
database (read-only) by `read_page`. `page_html` renders it; the timeline's lanes are built here
from the rows, by `build_timelines`, which is pure.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from blmonitor.models import Event, EventKind, Severity
from blmonitor.monitor.notify import next_step  # the notifications' own advice, word for word
from blmonitor.monitor.run import server_name
from blmonitor.monitor.state import MonitorState, SourceHealth, ZoneState
from blmonitor.monitor.status import Status, open_history, read_status
from blmonitor.sources.models import Rating
from blmonitor.sources.service import LABELS

if TYPE_CHECKING:
    from blmonitor.config import Config
    from blmonitor.monitor.store import Store

DEFAULT_WINDOW = timedelta(days=90)
RECENT_EVENTS = 20
OTHER_ZONES = "other zones: unusable"  # the lane of zone problems on no listing's lane


class Period(enum.StrEnum):
    """What a span on the timeline is."""

    LISTING = "listing"
    UNUSABLE = "unusable"  # the zone's answers were not trusted
    BLIND = "blind"  # the runs saw nothing
    SMARTHOST = "smarthost"  # mail went through the smart host


@dataclass(frozen=True, slots=True)
class Span:
    """A period on a lane: a listing (by severity), the zone unusable, a blind stretch."""

    start: datetime
    end: datetime
    kind: Period
    severity: str = ""  # info, warning, critical (listings)
    detail: str = ""
    open: bool = False  # still going at the end of the window


@dataclass(frozen=True, slots=True)
class Lane:
    """One zone or provider list on one target's timeline."""

    name: str
    spans: tuple[Span, ...]
    marks: tuple[datetime, ...] = ()  # bounces that named this list


@dataclass(frozen=True, slots=True)
class Timeline:
    target: str
    start: datetime
    end: datetime
    lanes: tuple[Lane, ...]
    blind: tuple[Span, ...]  # across every lane: runs that saw nothing
    smarthost: tuple[Span, ...]  # mail through the smart host (for every target)


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing in force, from DNS or from returned mail."""

    target: str
    zone: str
    codes: tuple[str, ...]
    meaning: str
    txt: tuple[str, ...]
    severity: str
    since: datetime | None
    delist_url: str
    next_step: str


@dataclass(frozen=True, slots=True)
class EventRow:
    at: str
    kind: str
    severity: str
    target: str
    zone: str
    detail: str


@dataclass(frozen=True, slots=True)
class Reading:
    """A subject's latest rating at a source: ours (good…bad) and the source's own word."""

    subject: str
    day: str  # the day it rates (ISO)
    rating: str  # good, fair, poor, bad
    raw: str  # GREEN/YELLOW/RED, HIGH/MEDIUM/LOW/BAD


@dataclass(frozen=True, slots=True)
class Receiver:
    """One receiver data source as the last poll left it: read, or UNKNOWN since when and why
    (then its readings are what it said when it was last read — never a clean bill)."""

    label: str
    read: bool
    error: str
    since: datetime | None  # when the current error began
    polled: datetime | None  # the last poll, good or failed
    ok_at: datetime | None  # the last poll that read it
    readings: tuple[Reading, ...]
    unknown: tuple[str, ...]  # subjects it has no data for


@dataclass(frozen=True, slots=True)
class PoorDay:
    """A poor or bad reputation day in the window, from the store's reputation table."""

    source: str  # its label
    subject: str
    day: str
    rating: str
    raw: str
    note: str


@dataclass(frozen=True, slots=True)
class Page:
    server: str
    headline: str
    verdict: str  # clean, listed, unknown: the header's colour and pattern
    last_check: str | None
    last_error: str
    next_check: datetime | None
    generated: datetime
    timelines: tuple[Timeline, ...]
    listings: tuple[Listing, ...]
    zones: tuple[ZoneState, ...]
    causes: tuple[str, ...]
    events: tuple[EventRow, ...]
    run_id: int | None = None  # the last run's, for the live page's cache
    receivers: tuple[Receiver, ...] = ()
    poor_days: tuple[PoorDay, ...] = ()  # newest first

    @property
    def unread(self) -> tuple[Receiver, ...]:
        """The receivers' data sources the last poll could not read."""
        return tuple(r for r in self.receivers if not r.read)

    @property
    def read(self) -> tuple[Receiver, ...]:
        """The receivers' data sources the last poll read."""
        return tuple(r for r in self.receivers if r.read)


# --- the timeline (pure) ---------------------------------------------------------------------


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _clip(
    start: datetime, end: datetime | None, window: tuple[datetime, datetime]
) -> tuple[datetime, datetime, bool] | None:
    """The part of [start, end) inside the window (end None: still going); None if outside."""
    low, high = window
    still = end is None or end > high
    stop = high if end is None else min(end, high)
    begin = max(start, low)
    return (begin, stop, still) if begin < stop else None


def _periods(
    changes: Iterable[tuple[datetime, bool, str]], kind: Period, window: tuple[datetime, datetime]
) -> list[Span]:
    """Spans from (moment, opens, detail) changes in time order: a period opens at the first
    opening change and closes at the next closing one; one still open runs to the window's end."""
    spans: list[Span] = []
    start: datetime | None = None
    why = ""
    for moment, opens, detail in changes:
        if opens and start is None:
            start, why = moment, detail
        elif not opens and start is not None:
            clipped = _clip(start, moment, window)
            if clipped:
                spans.append(Span(clipped[0], clipped[1], kind, detail=why))
            start = None
    if start is not None:
        clipped = _clip(start, None, window)
        if clipped:
            spans.append(Span(clipped[0], clipped[1], kind, detail=why, open=True))
    return spans


def blind_spans(runs: Sequence[Mapping[str, Any]], window: tuple[datetime, datetime]) -> list[Span]:
    """Runs in a row that saw nothing, as periods: from the first blind run's start to the
    next good run's start (or the window's end when the last run is blind)."""
    ordered = sorted(runs, key=lambda r: r["started"])
    changes = [(datetime.fromisoformat(r["started"]), bool(r["error"]), r["error"] or "")
               for r in ordered]  # fmt: skip
    return _periods(changes, Period.BLIND, window)


def smarthost_spans(
    actions: Sequence[Mapping[str, Any]], window: tuple[datetime, datetime]
) -> list[Span]:
    """Mail through the smart host: from an apply done to the next revert done (failed and
    recommended actions changed nothing)."""
    done = sorted((a for a in actions if a["outcome"] == "done" and a["action"] in
                   ("apply", "revert")), key=lambda a: (a["at"], a["id"]))  # fmt: skip
    changes = [(datetime.fromisoformat(a["at"]), a["action"] == "apply", a["relay"] or "")
               for a in done]  # fmt: skip
    return _periods(changes, Period.SMARTHOST, window)


def build_timelines(
    *,
    targets: Iterable[str],
    episodes: Sequence[Mapping[str, Any]],
    zone_episodes: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    bounces: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
    window: tuple[datetime, datetime],
) -> tuple[Timeline, ...]:
    """One timeline per target: a lane per zone or list that listed it, was unusable while it
    was checked, or was named by a bounce — the store's rows in, no I/O."""
    blind = tuple(blind_spans(runs, window))
    routed = tuple(smarthost_spans(actions, window))
    unusable: dict[str, list[Span]] = {}
    for z in zone_episodes:
        clipped = _clip(_at(z["first_seen"]) or window[0], _at(z["ended"]), window)
        if clipped:
            unusable.setdefault(z["zone"], []).append(
                Span(clipped[0], clipped[1], Period.UNUSABLE, detail=z["detail"] or z["health"],
                     open=clipped[2])
            )  # fmt: skip
    per_target: dict[str, dict[str, list[Span]]] = {t: {} for t in targets}
    for e in episodes:
        clipped = _clip(_at(e["first_seen"]) or window[0], _at(e["ended"]), window)
        lanes = per_target.setdefault(e["target"], {})
        spans = lanes.setdefault(e["zone"], [])
        if clipped:
            severity = Severity(e["severity"]).label if e["severity"] else "warning"
            spans.append(Span(clipped[0], clipped[1], Period.LISTING, severity=severity,
                              detail=", ".join(e["codes"]), open=clipped[2]))  # fmt: skip
    marks: dict[tuple[str, str], list[datetime]] = {}
    for b in bounces:
        target = b["listed_ip"] or b["listed_domain"]
        moment = _at(b["date"]) or _at(b["seen"])
        if not target or moment is None or not window[0] <= moment <= window[1]:
            continue
        lanes = per_target.setdefault(target, {})
        name = f"{b['list']} (bounce)" if f"{b['list']} (bounce)" in lanes else b["zone"]
        if name not in lanes:
            name = f"{b['list']} (bounce)" if b["list"] else b["zone"]
        lanes.setdefault(name, [])
        marks.setdefault((target, name), []).append(moment)
    timelines = []
    for target, lanes in sorted(per_target.items()):
        for zone, spans in unusable.items():
            if zone in lanes:
                spans_here = lanes[zone]
                spans_here.extend(spans)
        built = tuple(
            Lane(name, tuple(sorted(spans, key=lambda s: s.start)),
                 tuple(sorted(marks.get((target, name), ()))))
            for name, spans in sorted(lanes.items())
        )  # fmt: skip
        # Zones unusable that never listed this target share one lane (named after the zone
        # when it is the only one): a year of short outages would otherwise give every
        # timeline a lane per zone.
        others = sorted(
            (replace(span, detail=f"{zone}: {span.detail}")
             for zone, spans in unusable.items() if zone not in lanes for span in spans),
            key=lambda s: s.start,
        )  # fmt: skip
        alone = {zone for zone in unusable if zone not in lanes}
        name = alone.pop() if len(alone) == 1 else OTHER_ZONES
        extra = (Lane(name, tuple(others)),) if others else ()
        timelines.append(Timeline(target, window[0], window[1], built + extra, blind, routed))
    return tuple(timelines)


# --- the listings in force, the events (pure) ------------------------------------------------


def listings_in_force(status: Status, now: datetime) -> tuple[Listing, ...]:
    listings = []
    for p in status.listed:
        severity = p.severity or Severity.WARNING
        event = Event(EventKind.LISTED, severity, now, target=p.target, zone=p.label,
                      codes=p.codes, meaning=p.meaning, delist_url=p.delist_url)  # fmt: skip
        listings.append(Listing(p.target, p.label, p.codes, p.meaning, p.txt, severity.label,
                                p.since, p.delist_url, next_step(event)))  # fmt: skip
    for b in status.bounced:
        event = Event(EventKind.LISTED, Severity.WARNING, now, target=b.target, zone=b.list,
                      meaning=b.meaning, delist_url=b.delist_url)  # fmt: skip
        words = (f"{b.count} bounce(s) from {b.provider or b.list} named this list",)
        listings.append(Listing(b.target or "?", f"{b.list} (bounce)", (), b.meaning, words,
                                "warning", b.since, b.delist_url, next_step(event)))  # fmt: skip
    for s in status.sourced:  # a receiver's own data (SNDS)
        event = Event(EventKind.LISTED, Severity.CRITICAL, now, target=s.target, zone=s.zone,
                      meaning=s.listing.reason, delist_url=s.listing.delist_url)  # fmt: skip
        says = tuple(filter(None, [f"{s.listing.who} blocks it ({s.label})", s.listing.detail]))
        listings.append(Listing(s.target, s.zone, (), s.listing.reason, says, "critical",
                                s.since, s.listing.delist_url, next_step(event)))  # fmt: skip
    return tuple(listings)


def receivers(sources: Iterable[SourceHealth]) -> tuple[Receiver, ...]:
    """Each source's health and latest readings, worst rating first (then by subject)."""
    worst = {rating: i for i, rating in enumerate(reversed(Rating))}
    out = []
    for h in sources:
        readings = sorted(
            (Reading(subject, day.isoformat(), str(rating), raw)
             for subject, (day, rating, raw) in h.ratings.items()),
            key=lambda r: (worst[Rating(r.rating)], r.subject),
        )  # fmt: skip
        name = h.label or h.source
        error = h.error.removeprefix(f"{name}: ")  # the block is headed by the name already
        out.append(Receiver(name, h.usable, error, h.since, h.polled, h.ok_at,
                            tuple(readings), tuple(h.unknown)))  # fmt: skip
    return tuple(out)


def poor_days(rows: Iterable[Mapping[str, Any]], labels: Mapping[str, str]) -> tuple[PoorDay, ...]:
    return tuple(
        PoorDay(labels.get(r["source"], r["source"]), r["subject"], r["day"], r["rating"],
                r["raw"] or r["rating"], r["note"] or "")
        for r in rows
    )  # fmt: skip


def event_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[EventRow, ...]:
    out = []
    for row in rows:
        codes = ", ".join(json.loads(row["codes"] or "[]"))
        detail = "; ".join(part for part in (codes, row["meaning"], row["detail"]) if part)
        severity = Severity(row["severity"]).label if row["severity"] else ""
        out.append(EventRow(row["at"], row["kind"], severity, row["target"] or "",
                            row["zone"] or "", detail))  # fmt: skip
    return tuple(out)


# --- the service -----------------------------------------------------------------------------


def _window_rows(store: Store, since: datetime) -> dict[str, list[dict[str, Any]]]:
    """The rows of the window the page draws: runs, bounce evidence, recent events."""
    return {
        "runs": store.runs_since(since),
        "bounces": store.listed_bounces_since(since),
        "events": store.events_since(since, limit=RECENT_EVENTS),
    }


def read_page(config: Config, *, now: datetime, since: datetime | None = None) -> Page:
    """The page as the history database holds it; an empty page without a database."""
    window = (since or now - DEFAULT_WINDOW, now)
    status = read_status(config)
    state = MonitorState()
    causes: tuple[str, ...] = ()
    timelines: tuple[Timeline, ...] = ()
    events: tuple[EventRow, ...] = ()
    bad_days: tuple[PoorDay, ...] = ()
    store = open_history(config)
    if store is not None:
        try:
            state = store.load_state()
            causes = store.load_causes().messages
            rows = _window_rows(store, window[0])
            timelines = build_timelines(
                targets=sorted({p.target for p in state.pairs.values()}),
                episodes=store.episodes(since=window[0]),
                zone_episodes=store.zone_episodes(since=window[0]),
                runs=rows["runs"], bounces=rows["bounces"],
                actions=store.smarthost_actions(), window=window,
            )  # fmt: skip
            events = event_rows(rows["events"])
            bad_days = poor_days(store.reputation(since=window[0], worse_than_good=True), LABELS)
        finally:
            store.close()
    last = status.last_run
    return Page(
        server=server_name(config), headline=status.headline, verdict=str(status.verdict),
        last_check=last["finished"] if last else None, last_error=last["error"] if last else "",
        next_check=status.next_run, generated=now, timelines=timelines,
        listings=listings_in_force(status, now),
        zones=tuple(sorted(state.zones.values(), key=lambda z: (z.usable, z.label or z.zone))),
        causes=tuple(causes), events=events, run_id=last["id"] if last else None,
        receivers=receivers(status.sources), poor_days=bad_days,
    )  # fmt: skip


def last_run_id(config: Config) -> int | None:
    """The id of the last run (None before the first): what the live page's cache keys on."""
    store = open_history(config)
    if store is None:
        return None
    try:
        last = store.last_run()
    finally:
        store.close()
    return int(last["id"]) if last else None


def cached_page(
    config: Callable[[], Config], render: Callable[[Page], str], *, clock: Callable[[], datetime]
) -> Callable[[], str]:
    """The live page: rendered again only when a new run was recorded (at most once a run)."""
    memo: dict[str, Any] = {}

    def page() -> str:
        current = config()
        key = (last_run_id(current), id(current))
        if memo.get("key") != key:
            memo["text"] = render(read_page(current, now=clock()))
            memo["key"] = key
        text: str = memo["text"]
        return text

    return page
