"""How the monitor's records are kept in SQLite rows: the schema and its migrations, and the
conversions between rows (or `monitor_meta` values) and typed records.

Pure: no I/O but the sqlite-utils schema calls the migrations make on the database given them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlite_utils

from blmonitor.bounces.models import BounceRecord, ListKind
from blmonitor.models import Health, Severity
from blmonitor.monitor.digest import NoticeMemory
from blmonitor.monitor.state import (
    BounceListing,
    CauseMemory,
    MonitorState,
    PairState,
    PostureFinding,
    SmarthostMemory,
    SourceHealth,
    SourceListingState,
    ZoneState,
)
from blmonitor.sources.models import Rating, ReputationRecord, SourceListing

__all__ = [
    "MEMO_KEYS",
    "MIGRATIONS",
    "Notification",
    "Queued",
    "cause_memory",
    "cause_meta",
    "fingerprint",
    "monitor_state",
    "notice_memory",
    "notice_meta",
    "notification_from_row",
    "pair_from_row",
    "pair_row",
    "parse_stamp",
    "reputation_row",
    "smarthost_memory",
    "smarthost_meta",
    "source_health_from_row",
    "source_health_row",
    "source_listing_from_row",
    "source_listing_row",
    "stamp",
    "state_meta",
    "zone_from_row",
    "zone_row",
]


def stamp(value: datetime | None) -> str | None:
    """A time as the database keeps it: ISO 8601 to the second."""
    return value.isoformat(timespec="seconds") if value is not None else None


def parse_stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _severity(value: int | None) -> Severity | None:
    return Severity(value) if value else None


# --- the monitor's state: pair_state and zone_state rows, the rest in monitor_meta -----------


def pair_from_row(row: Mapping[str, Any]) -> PairState:
    return PairState(
        target=row["target"], zone=row["zone"], label=row["label"] or row["zone"],
        listed=bool(row["listed"]), codes=tuple(json.loads(row["codes"] or "[]")),
        meaning=row["meaning"] or "", severity=_severity(row["severity"]),
        txt=tuple(json.loads(row["txt"] or "[]")), delist_url=row["delist_url"] or "",
        **_change_from_row(row),
    )  # fmt: skip


def pair_row(p: PairState) -> dict[str, Any]:
    return {
        "target": p.target, "zone": p.zone, "label": p.label, "listed": int(p.listed),
        "codes": json.dumps(p.codes), "meaning": p.meaning,
        "severity": int(p.severity) if p.severity else None, "txt": json.dumps(p.txt),
        "delist_url": p.delist_url, **_change_row(p),
    }  # fmt: skip


def zone_from_row(row: Mapping[str, Any]) -> ZoneState:
    return ZoneState(
        zone=row["zone"], label=row["label"] or row["zone"], usable=bool(row["usable"]),
        health=Health(row["health"]), detail=row["detail"] or "", **_change_from_row(row),
    )  # fmt: skip


def zone_row(z: ZoneState) -> dict[str, Any]:
    return {"zone": z.zone, "label": z.label, "usable": int(z.usable), "health": z.health,
            "detail": z.detail, **_change_row(z)}  # fmt: skip


def _change_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields both states share: since when they hold, and a change in the making."""
    return {
        "since": parse_stamp(row["since"]),
        "candidate": None if row["candidate"] is None else bool(row["candidate"]),
        "streak": row["streak"] or 0,
        "candidate_since": parse_stamp(row["candidate_since"]),
    }


def _change_row(state: PairState | ZoneState) -> dict[str, Any]:
    return {
        "since": stamp(state.since),
        "candidate": None if state.candidate is None else int(state.candidate),
        "streak": state.streak,
        "candidate_since": stamp(state.candidate_since),
    }


def source_listing_from_row(row: Mapping[str, Any]) -> SourceListingState:
    listing = SourceListing(
        target=row["target"], list=row["list"], provider=row["provider"] or "",
        reason=row["reason"] or "", delist_url=row["delist_url"] or "",
        detail=row["detail"] or "", kind=ListKind(row["kind"] or ListKind.PROVIDER_PRIVATE),
        receiver=row["receiver"] or "",
    )  # fmt: skip
    since = parse_stamp(row["since"])
    assert since is not None
    return SourceListingState(listing, row["source"], row["label"] or row["source"], since)


def source_listing_row(s: SourceListingState) -> dict[str, Any]:
    item = s.listing
    return {"target": item.target, "list": item.list, "source": s.source, "label": s.label,
            "provider": item.provider, "receiver": item.receiver, "kind": str(item.kind),
            "reason": item.reason, "delist_url": item.delist_url, "detail": item.detail,
            "since": stamp(s.since)}  # fmt: skip


def source_health_from_row(row: Mapping[str, Any]) -> SourceHealth:
    ratings = {
        subject: (date.fromisoformat(day), Rating(rating), raw)
        for subject, (day, rating, raw) in json.loads(row["ratings"] or "{}").items()
    }
    return SourceHealth(
        source=row["source"], label=row["label"] or "", polled=parse_stamp(row["polled"]),
        ok_at=parse_stamp(row["ok_at"]), error=row["error"] or "",
        since=parse_stamp(row["since"]), unknown=tuple(json.loads(row["unknown"] or "[]")),
        ratings=ratings,
    )  # fmt: skip


def source_health_row(h: SourceHealth) -> dict[str, Any]:
    ratings = {s: [day.isoformat(), str(rating), raw]
               for s, (day, rating, raw) in sorted(h.ratings.items())}  # fmt: skip
    return {"source": h.source, "label": h.label, "polled": stamp(h.polled),
            "ok_at": stamp(h.ok_at), "error": h.error, "since": stamp(h.since),
            "unknown": json.dumps(list(h.unknown)), "ratings": json.dumps(ratings)}  # fmt: skip


def reputation_row(record: ReputationRecord, fetched: datetime) -> dict[str, Any]:
    return {"source": record.source, "subject": record.subject, "day": record.day.isoformat(),
            "rating": str(record.rating), "raw": record.raw,
            "figures": json.dumps(dict(record.figures)), "note": record.note,
            "fetched": stamp(fetched)}  # fmt: skip


def monitor_state(
    pairs: Iterable[PairState],
    zones: Iterable[ZoneState],
    meta: Mapping[str, Any],
    sources: Iterable[SourceListingState] = (),
    health: Iterable[SourceHealth] = (),
) -> MonitorState:
    """The state from its rows and its monitor_meta values (`state_meta`'s inverse)."""
    return MonitorState(
        sources={(s.target, s.listing.list): s for s in sources},
        source_health={h.source: h for h in health},
        pairs={(pair.target, pair.zone): pair for pair in pairs},
        zones={zone.zone: zone for zone in zones},
        addresses=tuple(meta.get("addresses", ())),
        failing_runs=meta.get("failing_runs", 0),
        failing_since=parse_stamp(meta.get("failing_since")),
        failing_reported=meta.get("failing_reported", False),
        bounces=_bounce_listings(meta.get("bounces", ())),
    )


def state_meta(state: MonitorState) -> dict[str, Any]:
    """The monitor_meta values of a state: what is not a (target, zone) pair or a zone."""
    return {
        "addresses": list(state.addresses),
        "failing_runs": state.failing_runs,
        "failing_since": stamp(state.failing_since),
        "failing_reported": state.failing_reported,
        "bounces": [
            {"target": b.target, "list": b.list, "provider": b.provider, "since": stamp(b.since),
             "last_seen": stamp(b.last_seen), "count": b.count, "delist_url": b.delist_url,
             "meaning": b.meaning}
            for b in state.bounces.values()
        ],
    }  # fmt: skip


def _bounce_listings(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], BounceListing]:
    listings = {}
    for row in rows:
        since, last = parse_stamp(row["since"]), parse_stamp(row["last_seen"])
        assert since is not None and last is not None
        listing = BounceListing(
            target=row["target"], list=row["list"], provider=row["provider"], since=since,
            last_seen=last, count=row["count"], delist_url=row["delist_url"],
            meaning=row["meaning"],
        )  # fmt: skip
        listings[(listing.target, listing.list)] = listing
    return listings


# The monitor_meta rows behind SmarthostMemory, CauseMemory and NoticeMemory (their names are
# on disk).
MEMO_KEYS = (
    "smarthost_wanted", "smarthost_last_listed", "smarthost_error",
    "queue_snapshot", "queue_error", "cause_findings", "cause_messages", "posture_check",
    "digest_since", "heartbeat_error",
)  # fmt: skip


def smarthost_memory(memo: Mapping[str, Any]) -> SmarthostMemory:
    wanted = memo.get("smarthost_wanted") or {}
    return SmarthostMemory(
        action=wanted.get("action") or "",
        destinations=tuple(wanted.get("destinations", ())),
        last_listed=parse_stamp(memo.get("smarthost_last_listed")),
        error=memo.get("smarthost_error") or "",
    )


def smarthost_meta(memory: SmarthostMemory) -> dict[str, Any]:
    wanted = {"action": memory.action, "destinations": list(memory.destinations)}
    return {
        "smarthost_wanted": wanted if memory.action else None,
        "smarthost_last_listed": stamp(memory.last_listed),
        "smarthost_error": memory.error or None,
    }


def cause_memory(memo: Mapping[str, Any]) -> CauseMemory:
    queue = memo.get("queue_snapshot") or {}
    posture = memo.get("posture_check") or {}
    return CauseMemory(
        queue_at=parse_stamp(queue.get("at")),
        queue_messages=queue.get("messages", 0),
        queue_error=memo.get("queue_error") or "",
        findings=tuple(memo.get("cause_findings") or ()),
        messages=tuple(memo.get("cause_messages") or ()),
        posture_at=parse_stamp(posture.get("at")),
        posture=tuple(
            PostureFinding(f["check"], f["subject"], f["kind"], f["message"])
            for f in posture.get("findings", ())
        ),
        posture_unanswered=tuple(posture.get("unanswered") or ()),
        posture_unanswered_since=parse_stamp(posture.get("unanswered_since")),
    )


def cause_meta(memory: CauseMemory) -> dict[str, Any]:
    queue = (
        {"at": memory.queue_at.isoformat(), "messages": memory.queue_messages}
        if memory.queue_at is not None
        else None
    )
    return {
        "queue_snapshot": queue,
        "queue_error": memory.queue_error or None,
        "cause_findings": list(memory.findings),
        "cause_messages": list(memory.messages),
        "posture_check": {
            "at": stamp(memory.posture_at),
            "findings": [
                {"check": f.check, "subject": f.subject, "kind": f.kind, "message": f.message}
                for f in memory.posture
            ],
            "unanswered": list(memory.posture_unanswered),
            "unanswered_since": stamp(memory.posture_unanswered_since),
        }
        if memory.posture_at is not None or memory.posture or memory.posture_unanswered
        else None,
    }


def notice_memory(memo: Mapping[str, Any]) -> NoticeMemory:
    return NoticeMemory(
        digest_since=parse_stamp(memo.get("digest_since")),
        heartbeat_error=memo.get("heartbeat_error") or "",
    )


def notice_meta(memory: NoticeMemory) -> dict[str, Any]:
    return {
        "digest_since": stamp(memory.digest_since),
        "heartbeat_error": memory.heartbeat_error or None,
    }


# --- schema --------------------------------------------------------------------------------

_TYPES: dict[str, type] = {"int": int, "str": str, "float": float}


def fingerprint(record: BounceRecord) -> str:
    """One bounce, however often it is read: message id, recipient and text (and, for log
    lines, which carry no message id, the time)."""
    when = "" if record.message_id else (stamp(record.date) or record.source)
    key = "\0".join((record.message_id, record.recipient.lower(), record.diagnostic, when))
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    created: datetime
    title: str
    body: str
    severity: Severity
    status: str
    attempts: int
    last_error: str
    kinds: tuple[str, ...] = ()
    owed: tuple[str, ...] = ()  # targets still to be sent to; empty: all of them
    payload: Mapping[str, Any] = field(default_factory=dict)  # the data json:// targets get


# A notification to send, as `notify.Message.queued()` gives it: title, body, severity, kinds
# and (optional) the data for webhooks.
Queued = (
    tuple[str, str, Severity, tuple[str, ...]]
    | tuple[str, str, Severity, tuple[str, ...], Mapping[str, Any]]
)


def notification_from_row(row: Mapping[str, Any]) -> Notification:
    return Notification(
        id=row["id"],
        created=parse_stamp(row["created"]) or datetime.min,
        title=row["title"],
        body=row["body"],
        severity=Severity(row["severity"]),
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"] or "",
        kinds=tuple(json.loads(row["kinds"] or "[]")),
        owed=tuple(json.loads(row["owed"] or "[]")),
        payload=json.loads(row.get("payload") or "{}"),
    )


def _table(
    db: sqlite_utils.Database, name: str, columns: str, *, pk: str | tuple[str, ...] = "id"
) -> None:
    """Create table `name` with `columns` in their order: "name type, …" (int, str or float)."""
    spec = (column.split() for column in columns.split(","))
    db.table(name).create({column: _TYPES[kind] for column, kind in spec}, pk=pk)


# Kept as a list, a table a statement: the formatter would give each argument a line of its own.
# fmt: off
def _v1(db: sqlite_utils.Database) -> None:
    _table(db, "runs", "id int, started str, finished str, seconds float, targets int, zones int,"
           " lookups int, verdict str, listed int, errors int, queries int, retries int, error str")
    _table(db, "pair_state", "target str, zone str, label str, listed int, codes str, meaning str,"
           " severity int, txt str, delist_url str, since str, candidate int, streak int,"
           " candidate_since str", pk=("target", "zone"))
    _table(db, "zone_state", "zone str, label str, usable int, health str, detail str, since str,"
           " candidate int, streak int, candidate_since str", pk="zone")
    _table(db, "monitor_meta", "key str, value str", pk="key")
    _table(db, "episodes", "id int, target str, zone str, codes str, meaning str, severity int,"
           " txt str, delist_url str, first_seen str, last_seen str, ended str")
    db.table("episodes").create_index(["target", "zone", "ended"])
    _table(db, "zone_episodes", "id int, zone str, health str, detail str, first_seen str,"
           " last_seen str, ended str")
    _table(db, "events", "id int, run_id int, at str, kind str, severity int, target str,"
           " zone str, codes str, meaning str, delist_url str, since str, ended str, detail str")
    db.table("events").create_index(["at"])
    db.table("runs").create_index(["finished"])  # prune and "last run" read by time
    _table(db, "notifications", "id int, created str, title str, body str, severity int,"
           " kinds str, status str, attempts int, last_error str, owed str, sent_at str")
    db.table("notifications").create_index(["status"])


def _v2(db: sqlite_utils.Database) -> None:
    """Bounce evidence, and how far each watched file or Maildir has been read."""
    _table(db, "bounces", "id int, fingerprint str, seen str, date str, source str,"
           " recipient str, status str, reply_code str, remote_mta str, diagnostic str,"
           " message_id str, verdict str, list str, zone str, provider str, kind str,"
           " listed_ip str, listed_domain str, delist_url str, episode int")
    db.table("bounces").create_index(["fingerprint"], unique=True)
    db.table("bounces").create_index(["episode"])
    _table(db, "watch_state", "path str, position str", pk="path")


def _v3(db: sqlite_utils.Database) -> None:
    """What was done to the MTA's routing: smart-host apply, revert, recommendation, failure."""
    _table(db, "smarthost_actions", "id int, at str, action str, outcome str, mta str, relay str,"
           " scope str, destinations str, detail str")
    db.table("smarthost_actions").create_index(["at"])


def _v4(db: sqlite_utils.Database) -> None:
    """Messages removed from the MTA's queue (`blmonitor queue --apply`)."""
    _table(db, "cleanups", "id int, at str, mta str, selection str, removed int, queue_ids str,"
           " error str")


# fmt: on


def _v5(db: sqlite_utils.Database) -> None:
    """Why an episode ended: NULL when the listing did, "unmonitored" when its target or zone
    left the config (a delisting that was never seen must not read as one)."""
    db.table("episodes").add_column("end_reason", str)


def _v6(db: sqlite_utils.Database) -> None:
    """The data of a notification for webhooks (the `blmonitor` object of a json:// body)."""
    db.table("notifications").add_column("payload", str)


# fmt: off
def _v7(db: sqlite_utils.Database) -> None:
    """The receivers' own data (SNDS…): listings, each source's memory, daily reputation."""
    _table(db, "source_listings", "target str, list str, source str, label str, provider str,"
           " receiver str, kind str, reason str, delist_url str, detail str, since str",
           pk=("target", "list"))
    _table(db, "source_health", "source str, label str, polled str, ok_at str, error str,"
           " since str, unknown str, ratings str", pk="source")
    _table(db, "reputation", "source str, subject str, day str, rating str, raw str,"
           " figures str, note str, fetched str", pk=("source", "subject", "day"))
    db.table("reputation").create_index(["day"])


# fmt: on


# Append only: a database at version N runs MIGRATIONS[N:].
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
