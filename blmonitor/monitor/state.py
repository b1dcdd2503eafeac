"""Monitor logic, pure: a new Report plus the stored state give the new state and the events.

A change counts only after `confirm` runs in a row agree on it (no flapping); an error or a
zone that failed its health check is no observation at all, so it neither confirms nor breaks
a streak. Zone health gets the same treatment, and so do whole runs that fail. No clock and no
storage here: `now` and the previous MonitorState come in, the next MonitorState goes out.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from blmonitor.bounces.models import Attribution, BounceRecord, BounceVerdict
from blmonitor.models import Event, EventKind, Health, Report, Result, Severity, Status, ZoneHealth
from blmonitor.sources.models import Rating, ReputationRecord, SourceListing, SourceResult

PairKey = tuple[str, str]  # (target, zone name)


@dataclass(frozen=True, slots=True)
class PairState:
    """Confirmed listing state of one (target, zone) pair, and a change in the making."""

    target: str
    zone: str
    listed: bool = False
    codes: tuple[str, ...] = ()
    meaning: str = ""
    severity: Severity | None = None
    txt: tuple[str, ...] = ()
    delist_url: str = ""
    since: datetime | None = None  # when the confirmed state began
    candidate: bool | None = None  # an observed state that differs from the confirmed one
    streak: int = 0  # runs in a row that observed the candidate
    candidate_since: datetime | None = None
    label: str = ""  # the zone as people see it


@dataclass(frozen=True, slots=True)
class ZoneState:
    """Confirmed health of one zone (usable or not), and a change in the making."""

    zone: str
    usable: bool = True
    health: Health = Health.OK
    detail: str = ""
    since: datetime | None = None
    candidate: bool | None = None
    streak: int = 0
    candidate_since: datetime | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class BounceListing:
    """A listing known from returned mail: a receiver named a list that holds our address."""

    target: str  # the listed IP or domain ("" when the bounce does not say)
    list: str  # the list id or zone the bounce names, e.g. "microsoft-s3150"
    provider: str
    since: datetime
    last_seen: datetime
    count: int = 1
    delist_url: str = ""
    meaning: str = ""

    @property
    def label(self) -> str:
        """How it shows in events and episodes: apart from a DNS check of the same zone."""
        return f"{self.list} (bounce)"


@dataclass(frozen=True, slots=True)
class SourceListingState:
    """A listing a receiver's own data source reports (an SNDS blocked range), since when."""

    listing: SourceListing
    source: str  # "snds"
    label: str  # "SNDS"
    since: datetime

    @property
    def target(self) -> str:
        return self.listing.target

    @property
    def zone(self) -> str:
        """How it shows in events and episodes, beside the DNS zones: "microsoft-snds (SNDS)"."""
        return f"{self.listing.list} ({self.label})"


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What the monitor remembers of one source between polls."""

    source: str
    label: str = ""
    polled: datetime | None = None  # the last poll, good or failed: when the next is due
    ok_at: datetime | None = None  # the last poll that read the source
    error: str = ""  # why the source cannot be read now ("" usable); told once
    since: datetime | None = None  # when the current error began
    unknown: tuple[str, ...] = ()  # the subjects told as unknown to the source
    # the last reading of each subject considered: (day, rating, the source's word) — told
    # when it turns poor or bad
    ratings: Mapping[str, tuple[date, Rating, str]] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class SmarthostMemory:
    """What the smart-host service remembers between runs."""

    action: str = ""  # the last action it asked for or did: "apply", "revert" ("" none yet)
    destinations: tuple[str, ...] = ()  # with scope = destinations: the domains routed
    last_listed: datetime | None = None  # the last run that found a blocking listing
    error: str = ""  # the last failure, told once however often it repeats

    @property
    def applied(self) -> bool:
        return self.action == "apply"


@dataclass(frozen=True, slots=True)
class PostureFinding:
    """A finding of the daily posture check, kept until a later check answers for it."""

    check: str  # the check that found it: ptr, helo, spf, dmarc, mx
    subject: str  # the IP or the domain
    kind: str  # no-ptr, spf-lookups, no-dmarc…
    message: str  # the finding and its fix, as people read them


@dataclass(frozen=True, slots=True)
class CauseMemory:
    """What the cause finder remembers between runs: the queue as it was, and what was told."""

    queue_at: datetime | None = None  # the last queue snapshot: when, and how many messages
    queue_messages: int = 0
    queue_error: str = ""  # the last error reading the queue, logged once
    findings: tuple[str, ...] = ()  # "kind:subject" of the findings already told
    messages: tuple[str, ...] = ()  # the findings of the last run, as people read them
    posture_at: datetime | None = None  # when the sender's posture was last checked (daily)
    posture: tuple[PostureFinding, ...] = ()  # what is known wrong with it since then
    # the parts the last check could not answer (retried hourly), and since when it could not
    posture_unanswered: tuple[str, ...] = ()
    posture_unanswered_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class MonitorState:
    pairs: Mapping[PairKey, PairState] = field(default_factory=dict)
    zones: Mapping[str, ZoneState] = field(default_factory=dict)
    addresses: tuple[str, ...] = ()  # the public addresses found last time ("auto")
    failing_runs: int = 0
    failing_since: datetime | None = None
    failing_reported: bool = False
    bounces: Mapping[tuple[str, str], BounceListing] = field(default_factory=dict)
    # listings from receivers' data sources, by (target, list id), and each source's memory
    sources: Mapping[tuple[str, str], SourceListingState] = field(default_factory=dict)
    source_health: Mapping[str, SourceHealth] = field(default_factory=dict)

    @property
    def listed(self) -> bool:
        """Any confirmed listing: a DNS zone, a bounce, or a receiver's own data."""
        return bool(self.bounces or self.sources or any(p.listed for p in self.pairs.values()))

    @property
    def empty(self) -> bool:
        return not self.pairs and not self.zones


def evaluate(
    report: Report,
    state: MonitorState,
    *,
    now: datetime,
    confirm: int,
    silent: bool = False,
    min_share: float = 0.5,
) -> tuple[MonitorState, list[Event]]:
    """The next state and the confirmed changes, from one run's report.

    With `silent` (a silent first run), what is seen is taken as the confirmed state at once
    and nothing is reported. A blind run (`blind_reason`) is a failed run: it changes nothing.
    """
    blind = blind_reason(report, min_share=min_share)
    if blind:  # no observation at all: nothing is confirmed, broken or ended by this run
        return evaluate_failure(state, blind, now=now, confirm=confirm)
    events: list[Event] = []
    # A target or zone this run did not include is no longer monitored (config changed, or an
    # "auto" address moved): its pairs leave the state rather than show as listed forever.
    targets = {r.target.text for r in report.results}
    names = {r.zone.name for r in report.results}
    pairs = {k: p for k, p in state.pairs.items() if k[0] in targets and k[1] in names}
    for result in report.results:
        key = (result.target.text, result.zone.name)
        observed = _observe(result)
        if observed is None:
            continue
        previous = pairs.get(key) or PairState(
            result.target.text, result.zone.name, label=result.zone.label
        )
        pairs[key], event = _step_pair(previous, result, observed, now, confirm, silent)
        if event is not None:
            events.append(event)
    checked = names | {health.zone.name for health in report.zones}
    zones = {name: z for name, z in state.zones.items() if name in checked}
    for health in report.zones:
        previous_zone = zones.get(health.zone.name) or ZoneState(
            health.zone.name, label=health.zone.label
        )
        zones[health.zone.name], event = _step_zone(previous_zone, health, now, confirm, silent)
        if event is not None:
            events.append(event)
    next_state = replace(state, pairs=pairs, zones=zones)
    next_state, event = _step_failing(next_state, None, now, confirm)
    if event is not None:
        events.append(event)
    return next_state, events


def blind_reason(report: Report, *, min_share: float) -> str:
    """Why this run saw too little to say anything, or "" when it saw enough.

    A target is seen when at least `min_share` of the zones that take it gave a trustworthy
    answer (listed or clean); the run is blind when no target is seen. The resolver, when it
    is to blame, is named rather than the zones.
    """
    if report.resolver is not None:
        return report.resolver.message
    asked: dict[str, int] = {}
    answered: dict[str, int] = {}
    for result in report.results:
        if result.status is Status.SKIPPED:
            continue
        key = result.target.text
        asked[key] = asked.get(key, 0) + 1
        if result.status is not Status.ERROR:
            answered[key] = answered.get(key, 0) + 1
    if any(answered.get(k, 0) >= min_share * n for k, n in asked.items()):
        return ""
    if not asked:
        return "no zone takes any of the targets: nothing was looked up"
    got, total = sum(answered.values()), sum(asked.values())
    sick = [z for z in report.zones if not z.health.trusted]
    why = ", ".join(f"{z.zone.label} {z.health}" for z in sick[:3])
    more = f" and {len(sick) - 3} more" if len(sick) > 3 else ""
    return f"only {got} of {total} lookups got a trustworthy answer" + (
        f" ({why}{more})" if why else ""
    )


def evaluate_failure(
    state: MonitorState, error: str, *, now: datetime, confirm: int
) -> tuple[MonitorState, list[Event]]:
    """A run that could not check anything (no public IP, no resolver)."""
    next_state, event = _step_failing(state, error, now, confirm)
    return next_state, [event] if event is not None else []


def evaluate_addresses(
    state: MonitorState, found: Sequence[str], *, now: datetime
) -> tuple[MonitorState, list[Event]]:
    """Discovered public addresses: a change of address is an event (per family)."""
    events = []
    if state.addresses:
        old = set(state.addresses)
        for address in found:
            if address in old:
                continue
            family = ":" in address
            before = [a for a in state.addresses if (":" in a) == family]
            events.append(
                Event(
                    EventKind.ADDRESS_CHANGED,
                    Severity.WARNING,
                    now,
                    target=address,
                    detail=f"{', '.join(before) or 'none'} → {address}",
                )
            )
    return replace(state, addresses=tuple(found)), events


def _observe(result: Result) -> bool | None:
    if result.status is Status.LISTED:
        return True
    if result.status is Status.CLEAN:
        return False
    return None  # errors and skips say nothing


def _step_pair(
    state: PairState,
    result: Result,
    observed: bool,
    now: datetime,
    confirm: int,
    silent: bool,
) -> tuple[PairState, Event | None]:
    listing = {
        "codes": result.codes,
        "meaning": "; ".join(result.meanings),
        "severity": result.severity,
        "txt": result.txt,
        "delist_url": result.delist_url,
    }
    if silent and state.since is None:
        new = replace(state, listed=observed, since=now, label=result.zone.label)
        return (replace(new, **listing) if observed else new), None  # type: ignore[arg-type]
    if observed == state.listed:
        new = replace(
            state, candidate=None, streak=0, candidate_since=None, since=state.since or now
        )
        if observed:
            new = replace(new, **listing)  # type: ignore[arg-type]
        return new, None
    streak = state.streak + 1 if state.candidate == observed else 1
    began = state.candidate_since if state.candidate == observed else now
    if streak < confirm:
        return replace(state, candidate=observed, streak=streak, candidate_since=began), None
    if observed:
        new = _with_listing(
            replace(state, listed=True, since=began, candidate=None, streak=0,
                    candidate_since=None, label=result.zone.label),
            result,
        )  # fmt: skip
        event = Event(
            EventKind.LISTED,
            result.severity or Severity.WARNING,
            now,
            target=state.target,
            zone=result.zone.label,
            codes=result.codes,
            meaning=new.meaning,
            txt=result.txt,
            delist_url=result.delist_url,
            since=began,
        )
        return new, event
    event = Event(
        EventKind.DELISTED,
        state.severity or Severity.WARNING,
        now,
        target=state.target,
        zone=state.label or result.zone.label,
        codes=state.codes,
        meaning=state.meaning,
        delist_url=state.delist_url,
        since=state.since,
        ended=began,
    )
    new = PairState(state.target, state.zone, since=began, label=state.label)
    return new, event


def _with_listing(state: PairState, result: Result) -> PairState:
    """The listing details (codes can change while listed) from the latest result."""
    return replace(
        state,
        codes=result.codes,
        meaning="; ".join(result.meanings),
        severity=result.severity,
        txt=result.txt,
        delist_url=result.delist_url,
    )


_UNUSABLE = {
    Health.DEAD.value, Health.LISTS_EVERYTHING.value, Health.UNREACHABLE.value,
    Health.REFUSED.value,
}  # fmt: skip


def _step_zone(
    state: ZoneState, health: ZoneHealth, now: datetime, confirm: int, silent: bool
) -> tuple[ZoneState, Event | None]:
    usable = health.health.value not in _UNUSABLE
    if silent and state.since is None:
        return (
            replace(
                state,
                usable=usable,
                health=health.health,
                detail=health.detail,
                since=now,
                label=health.zone.label,
            ),
            None,
        )
    if usable == state.usable:
        if not usable:  # still sick: keep the latest reason
            return replace(state, health=health.health, detail=health.detail, candidate=None,
                           streak=0, candidate_since=None), None  # fmt: skip
        return replace(state, candidate=None, streak=0, candidate_since=None,
                       since=state.since or now), None  # fmt: skip
    streak = state.streak + 1 if state.candidate == usable else 1
    began = state.candidate_since if state.candidate == usable else now
    if streak < confirm:
        return replace(state, candidate=usable, streak=streak, candidate_since=began), None
    label = health.zone.label
    if usable:
        event = Event(
            EventKind.ZONE_RECOVERED, Severity.WARNING, now, zone=label, since=state.since,
            detail=f"was {state.health}: {state.detail}", ended=began,
        )  # fmt: skip
    else:
        kind = (
            EventKind.RESOLVER_REFUSED if health.health is Health.REFUSED
            else EventKind.ZONE_UNUSABLE
        )  # fmt: skip
        event = Event(
            kind, Severity.WARNING, now, zone=label, since=began,
            detail=f"{health.health}: {health.detail}",
        )  # fmt: skip
    new = ZoneState(
        state.zone, usable=usable, health=health.health, detail=health.detail, since=began,
        label=label,
    )  # fmt: skip
    return new, event


def _step_failing(
    state: MonitorState, error: str | None, now: datetime, confirm: int
) -> tuple[MonitorState, Event | None]:
    if error is None:
        if state.failing_reported:
            event = Event(
                EventKind.CHECKS_RECOVERED, Severity.WARNING, now, since=state.failing_since,
                detail="checks run again", ended=now,
            )  # fmt: skip
            return replace(state, failing_runs=0, failing_since=None, failing_reported=False), event
        return replace(state, failing_runs=0, failing_since=None), None
    runs = state.failing_runs + 1
    since = state.failing_since or now
    if runs >= confirm and not state.failing_reported:
        event = Event(EventKind.CHECKS_FAILING, Severity.WARNING, now, since=since, detail=error)
        return replace(state, failing_runs=runs, failing_since=since, failing_reported=True), event
    return replace(state, failing_runs=runs, failing_since=since), None


def evaluate_bounces(
    state: MonitorState,
    evidence: Sequence[tuple[BounceRecord, Attribution]],
    *,
    now: datetime,
    expire: timedelta,
) -> tuple[MonitorState, list[Event]]:
    """New bounce evidence (not seen before) → listings known from bounces, and their end.

    A receiver that names a list has already decided: the first such bounce is a listing,
    no confirmation needed. It ends when no bounce has named it for `expire`.
    """
    listings = dict(state.bounces)
    events: list[Event] = []
    for record, attribution in evidence:
        if attribution.verdict is not BounceVerdict.LISTED:
            continue
        target = attribution.listed_ip or attribution.listed_domain
        key = (target, attribution.list or attribution.provider)
        seen = min(record.date or now, now)
        known = listings.get(key)
        if known is not None:
            listings[key] = replace(
                known,
                since=min(known.since, seen),
                last_seen=max(known.last_seen, seen),
                count=known.count + 1,
            )
            continue
        listing = BounceListing(
            target=target,
            list=key[1],
            provider=attribution.provider,
            since=seen,
            last_seen=seen,
            delist_url=attribution.delist_url,
            meaning=attribution.reason,
        )
        listings[key] = listing
        via = record.remote_mta or attribution.provider or "a receiver"
        events.append(
            Event(
                EventKind.LISTED,
                Severity.CRITICAL,
                now,
                target=target or "?",
                zone=listing.label,
                meaning=attribution.reason,
                delist_url=attribution.delist_url,
                since=seen,
                detail=f"evidence: bounce from {via} to {record.recipient}"
                + (
                    f" ({record.status or record.reply_code})"
                    if record.status or record.reply_code
                    else ""
                ),
            )
        )
    for key, listing in list(listings.items()):
        if now - listing.last_seen > expire:
            del listings[key]
            events.append(
                Event(
                    EventKind.DELISTED,
                    Severity.CRITICAL,
                    now,
                    target=listing.target or "?",
                    zone=listing.label,
                    meaning=listing.meaning,
                    delist_url=listing.delist_url,
                    since=listing.since,
                    ended=listing.last_seen,
                    detail=f"no bounce has named {listing.list} since "
                    f"{listing.last_seen.isoformat(timespec='minutes')} ({listing.count} in all)",
                )
            )
    return replace(state, bounces=listings), events


# --- receivers' own data sources (SNDS…) ---------------------------------------------------

_TOLD = {Rating.POOR: Severity.WARNING, Rating.BAD: Severity.CRITICAL}
_FIGURES_TOLD = (  # the figures an event quotes, as each source names them
    "message_recipients",
    "complaint_rate",
    "trap_hits",  # SNDS
    "userReportedSpamRatio",  # Gmail Postmaster Tools
)


def evaluate_sources(
    state: MonitorState,
    results: Sequence[SourceResult],
    *,
    now: datetime,
    labels: Mapping[str, str] = {},
) -> tuple[MonitorState, list[Event]]:
    """This run's polls → the sources' listings, health and reputation, and what to tell.

    A source that answered has decided (no confirmation over runs): a blocked range is a
    listing at once and ends when a poll no longer shows it. A failed poll changes nothing
    but the source's health: its error is told once, and its recovery once. An address the
    source knows nothing of is told once; a reputation that turns poor or bad is told once,
    and its return to good once.
    """
    listings = dict(state.sources)
    health = dict(state.source_health)
    events: list[Event] = []
    for result in results:
        label = labels.get(result.source) or result.source.upper()
        known = health.get(result.source) or SourceHealth(result.source, label)
        known = replace(known, label=label, polled=result.fetched)
        if result.error:
            if not known.error:
                events.append(Event(EventKind.SOURCE_UNUSABLE, Severity.WARNING, now, zone=label,
                                    since=now, detail=result.error))  # fmt: skip
                known = replace(known, since=now)
            health[result.source] = replace(known, error=result.error)
            continue
        if known.error:
            events.append(Event(EventKind.SOURCE_RECOVERED, Severity.WARNING, now, zone=label,
                                since=known.since, ended=now,
                                detail=f"was: {known.error}"))  # fmt: skip
        known = replace(known, error="", since=None, ok_at=result.fetched)
        events += _step_listings(listings, result, label, now)
        new_unknown = [s for s in result.unknown if s not in known.unknown]
        events += [
            Event(
                EventKind.SOURCE_UNKNOWN,
                Severity.WARNING,
                now,
                target=subject,
                zone=label,
                detail=result.unknown_hint or f"{label} has no data for it",
            )
            for subject in new_unknown
        ]
        ratings, told = _step_ratings(known.ratings, result.reputation, label, now)
        events += told
        # a day without a row (SNDS leaves out days under 100 messages, Gmail publishes no day
        # for a domain with little mail) keeps the memory; a subject no longer inside a
        # monitored target leaves it
        kept = [*result.checked, *(r.subject for r in result.reputation)]
        ratings = {k: v for k, v in ratings.items() if _inside(k, kept)}
        health[result.source] = replace(known, unknown=tuple(result.unknown), ratings=ratings)
    return replace(state, sources=listings, source_health=health), events


def _inside(subject: str, targets: Sequence[str]) -> bool:
    """Whether `subject` (an IP or a domain) is one of `targets` or inside one of its blocks."""
    if subject in targets:
        return True
    try:
        address = ipaddress.ip_address(subject)
    except ValueError:
        return False
    for target in targets:
        with contextlib.suppress(ValueError):
            if address in ipaddress.ip_network(target, strict=False):
                return True
    return False


def forget_sources(state: MonitorState, keep: Sequence[str]) -> MonitorState:
    """Drop what sources no longer enabled left (their listings end as "unmonitored")."""
    if all(s in keep for s in state.source_health) and all(
        s.source in keep for s in state.sources.values()
    ):
        return state
    return replace(
        state,
        sources={k: s for k, s in state.sources.items() if s.source in keep},
        source_health={k: h for k, h in state.source_health.items() if k in keep},
    )


def _step_listings(
    listings: dict[tuple[str, str], SourceListingState],
    result: SourceResult,
    label: str,
    now: datetime,
) -> list[Event]:
    events = []
    seen = {(item.target, item.list): item for item in result.listings}
    for key, item in seen.items():
        known = listings.get(key)
        if known is not None:
            listings[key] = replace(known, listing=item, label=label)
            continue
        new = SourceListingState(item, result.source, label, now)
        listings[key] = new
        events.append(
            Event(
                EventKind.LISTED,
                Severity.CRITICAL,
                now,
                target=item.target,
                zone=new.zone,
                meaning=item.reason,
                delist_url=item.delist_url,
                since=now,
                detail=f"{item.who} blocks mail from it ({label}{': ' if item.detail else ''}"
                f"{item.detail})",
            )
        )
    checked = set(result.checked)
    for key, known in list(listings.items()):
        if known.source != result.source or key in seen:
            continue
        del listings[key]
        if known.target not in checked:
            continue  # no longer monitored: the store ends its episode as such, untold
        events.append(
            Event(
                EventKind.DELISTED,
                Severity.CRITICAL,
                now,
                target=known.target,
                zone=known.zone,
                meaning=known.listing.reason,
                delist_url=known.listing.delist_url,
                since=known.since,
                ended=now,
                detail=f"{label} no longer shows {known.listing.list} for it"
                if known.source != "snds"
                else f"{label} no longer shows a blocked range covering it",
            )
        )
    return events


def _step_ratings(
    ratings: Mapping[str, tuple[date, Rating, str]],
    records: Sequence[ReputationRecord],
    label: str,
    now: datetime,
) -> tuple[dict[str, tuple[date, Rating, str]], list[Event]]:
    """The latest day of each subject, told when it turns poor or bad (or good again)."""
    latest: dict[str, ReputationRecord] = {}
    for record in records:
        if record.rating is Rating.UNKNOWN:
            continue
        if record.subject not in latest or record.day > latest[record.subject].day:
            latest[record.subject] = record
    out = dict(ratings)
    events = []
    for subject, record in sorted(latest.items()):
        before = ratings.get(subject)
        if before is not None and record.day <= before[0]:
            continue  # the same day read again (or an older one): told already
        raw = record.raw or str(record.rating)
        out[subject] = (record.day, record.rating, raw)
        was = before[1] if before is not None else Rating.GOOD
        figures = ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in record.figures if k in _FIGURES_TOLD
        )
        meaning = "; ".join(filter(None, [record.note, figures]))
        if record.rating in _TOLD and record.rating is not was:
            events.append(Event(EventKind.REPUTATION, _TOLD[record.rating], now, target=subject,
                                zone=label, meaning=meaning,
                                detail=f"{raw} on {record.day.isoformat()}"))  # fmt: skip
        elif record.rating not in _TOLD and was in _TOLD:
            events.append(Event(EventKind.REPUTATION_RECOVERED, _TOLD[was], now, target=subject,
                                zone=label, meaning=meaning,
                                detail=f"{raw} again on {record.day.isoformat()}"))  # fmt: skip
    return out, events
