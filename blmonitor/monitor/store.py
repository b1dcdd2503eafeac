"""History in SQLite through sqlite-utils: check runs, listing and zone episodes, events,
notifications, and the monitor's state between runs.

Changes are stored, not every clean answer: one row per run, one row per (target, zone) pair
updated in place only when it changes, and one episode per listing. Each run is written in one
transaction (WAL mode), so a kill -9 at any point leaves the database as it was before the run
or after it, never half-written. The schema is versioned with PRAGMA user_version.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from blmonitor.bounces.models import Attribution, BounceRecord
from blmonitor.errors import StoreError
from blmonitor.models import Event, EventKind, Health, Report, Severity, Status
from blmonitor.monitor.state import (
    BounceListing,
    CauseMemory,
    MonitorState,
    PairState,
    SmarthostMemory,
    ZoneState,
)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _severity(value: int | None) -> Severity | None:
    return Severity(value) if value else None


def _meta(state: MonitorState) -> dict[str, Any]:
    return {
        "addresses": list(state.addresses),
        "failing_runs": state.failing_runs,
        "failing_since": _ts(state.failing_since),
        "failing_reported": state.failing_reported,
        "bounces": [
            {"target": b.target, "list": b.list, "provider": b.provider, "since": _ts(b.since),
             "last_seen": _ts(b.last_seen), "count": b.count, "delist_url": b.delist_url,
             "meaning": b.meaning}
            for b in state.bounces.values()
        ],
    }  # fmt: skip


# The monitor_meta rows behind SmarthostMemory and CauseMemory (their names are on disk).
_MEMO = (
    "smarthost_wanted", "smarthost_last_listed", "smarthost_error",
    "queue_snapshot", "queue_error", "cause_findings", "cause_messages",
)  # fmt: skip


def _bounce_listings(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], BounceListing]:
    listings = {}
    for row in rows:
        since, last = _dt(row["since"]), _dt(row["last_seen"])
        assert since is not None and last is not None
        listing = BounceListing(
            target=row["target"], list=row["list"], provider=row["provider"], since=since,
            last_seen=last, count=row["count"], delist_url=row["delist_url"],
            meaning=row["meaning"],
        )  # fmt: skip
        listings[(listing.target, listing.list)] = listing
    return listings


# --- schema --------------------------------------------------------------------------------


def _v1(db: sqlite_utils.Database) -> None:
    db.table("runs").create(
        {"id": int, "started": str, "finished": str, "seconds": float, "targets": int,
         "zones": int, "lookups": int, "verdict": str, "listed": int, "errors": int,
         "queries": int, "retries": int, "error": str},
        pk="id",
    )  # fmt: skip
    db.table("pair_state").create(
        {"target": str, "zone": str, "label": str, "listed": int, "codes": str, "meaning": str,
         "severity": int, "txt": str, "delist_url": str, "since": str, "candidate": int,
         "streak": int, "candidate_since": str},
        pk=("target", "zone"),
    )  # fmt: skip
    db.table("zone_state").create(
        {"zone": str, "label": str, "usable": int, "health": str, "detail": str, "since": str,
         "candidate": int, "streak": int, "candidate_since": str},
        pk="zone",
    )  # fmt: skip
    db.table("monitor_meta").create({"key": str, "value": str}, pk="key")
    db.table("episodes").create(
        {"id": int, "target": str, "zone": str, "codes": str, "meaning": str, "severity": int,
         "txt": str, "delist_url": str, "first_seen": str, "last_seen": str, "ended": str},
        pk="id",
    )  # fmt: skip
    db.table("episodes").create_index(["target", "zone", "ended"])
    db.table("zone_episodes").create(
        {"id": int, "zone": str, "health": str, "detail": str, "first_seen": str,
         "last_seen": str, "ended": str},
        pk="id",
    )  # fmt: skip
    db.table("events").create(
        {"id": int, "run_id": int, "at": str, "kind": str, "severity": int, "target": str,
         "zone": str, "codes": str, "meaning": str, "delist_url": str, "since": str,
         "ended": str, "detail": str},
        pk="id",
    )  # fmt: skip
    db.table("events").create_index(["at"])
    db.table("runs").create_index(["finished"])  # prune and "last run" read by time
    db.table("notifications").create(
        {"id": int, "created": str, "title": str, "body": str, "severity": int, "kinds": str,
         "status": str, "attempts": int, "last_error": str, "owed": str, "sent_at": str},
        pk="id",
    )  # fmt: skip
    db.table("notifications").create_index(["status"])


def _v2(db: sqlite_utils.Database) -> None:
    """Bounce evidence, and how far each watched file or Maildir has been read."""
    db.table("bounces").create(
        {"id": int, "fingerprint": str, "seen": str, "date": str, "source": str,
         "recipient": str, "status": str, "reply_code": str, "remote_mta": str,
         "diagnostic": str, "message_id": str, "verdict": str, "list": str, "zone": str,
         "provider": str, "kind": str, "listed_ip": str, "listed_domain": str,
         "delist_url": str, "episode": int},
        pk="id",
    )  # fmt: skip
    db.table("bounces").create_index(["fingerprint"], unique=True)
    db.table("bounces").create_index(["episode"])
    db.table("watch_state").create({"path": str, "position": str}, pk="path")


def _v3(db: sqlite_utils.Database) -> None:
    """What was done to the MTA's routing: smart-host apply, revert, recommendation, failure."""
    db.table("smarthost_actions").create(
        {"id": int, "at": str, "action": str, "outcome": str, "mta": str, "relay": str,
         "scope": str, "destinations": str, "detail": str},
        pk="id",
    )  # fmt: skip
    db.table("smarthost_actions").create_index(["at"])


def _v4(db: sqlite_utils.Database) -> None:
    """Messages removed from the MTA's queue (`blmonitor queue --apply`)."""
    db.table("cleanups").create(
        {"id": int, "at": str, "mta": str, "selection": str, "removed": int, "queue_ids": str,
         "error": str},
        pk="id",
    )  # fmt: skip


# Append only: a database at version N runs MIGRATIONS[N:].
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4]


def fingerprint(record: BounceRecord) -> str:
    """One bounce, however often it is read: message id, recipient and text (and, for log
    lines, which carry no message id, the time)."""
    when = "" if record.message_id else (_ts(record.date) or record.source)
    key = "\0".join((record.message_id, record.recipient.lower(), record.diagnostic, when))
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class RunRecord:
    started: datetime
    finished: datetime
    report: Report | None  # None: the run could not check anything
    error: str = ""


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


class Store:
    """The history database; `Store(path)` opens (creating and migrating) it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(path)
            self.db.execute("PRAGMA busy_timeout = 5000")
            self.db.enable_wal()
            self._migrate()
            self._keep_owner(path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot use the history database {path}: {exc} "
                "(check the directory's permissions and free space, or set [monitor] database)"
            ) from exc

    def close(self) -> None:
        self.db.close()

    def _keep_owner(self, *paths: Path) -> None:
        """Root (the smart-host unit, a command run by hand) leaves the files it creates beside
        the database to the database's owner, so the unprivileged service can still open them."""
        if os.geteuid() != 0:
            return
        owner = self.path.stat()
        if owner.st_uid == 0:
            return
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_uid != owner.st_uid:
                    os.chown(path, owner.st_uid, owner.st_gid)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction, all or nothing.

        BEGIN IMMEDIATE takes the write lock up front, so a second writer waits (busy_timeout)
        instead of failing when its first read would have to turn into a write; SQLite errors
        become one StoreError line.
        """
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the history database {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """Held for a whole monitoring run, so that two runs on one database (a cron job
        beside the daemon) take turns: each reads the state the other left."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = lock_path.open("a")
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {lock_path}: {exc.strerror}") from exc
        with handle:
            self._keep_owner(lock_path)
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} was written by a newer blmonitor (schema {version}): upgrade"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    # --- monitor state ---------------------------------------------------------------------

    def load_state(self) -> MonitorState:
        pairs = {}
        for row in self.db.table("pair_state").rows:
            pair = PairState(
                target=row["target"], zone=row["zone"], label=row["label"] or row["zone"],
                listed=bool(row["listed"]), codes=tuple(json.loads(row["codes"] or "[]")),
                meaning=row["meaning"] or "", severity=_severity(row["severity"]),
                txt=tuple(json.loads(row["txt"] or "[]")), delist_url=row["delist_url"] or "",
                since=_dt(row["since"]),
                candidate=None if row["candidate"] is None else bool(row["candidate"]),
                streak=row["streak"] or 0, candidate_since=_dt(row["candidate_since"]),
            )  # fmt: skip
            pairs[(pair.target, pair.zone)] = pair
        zones = {}
        for row in self.db.table("zone_state").rows:
            zone = ZoneState(
                zone=row["zone"], label=row["label"] or row["zone"], usable=bool(row["usable"]),
                health=Health(row["health"]), detail=row["detail"] or "", since=_dt(row["since"]),
                candidate=None if row["candidate"] is None else bool(row["candidate"]),
                streak=row["streak"] or 0, candidate_since=_dt(row["candidate_since"]),
            )  # fmt: skip
            zones[zone.zone] = zone
        meta = {row["key"]: json.loads(row["value"]) for row in self.db.table("monitor_meta").rows}
        return MonitorState(
            pairs=pairs,
            zones=zones,
            addresses=tuple(meta.get("addresses", ())),
            failing_runs=meta.get("failing_runs", 0),
            failing_since=_dt(meta.get("failing_since")),
            failing_reported=meta.get("failing_reported", False),
            bounces=_bounce_listings(meta.get("bounces", ())),
        )

    def record_run(
        self,
        run: RunRecord,
        before: MonitorState,
        after: MonitorState,
        events: Sequence[Event],
        notifications: Iterable[tuple[str, str, Severity, tuple[str, ...]]] = (),
        evidence: Sequence[tuple[BounceRecord, Attribution]] = (),
        positions: Mapping[str, str] = {},
    ) -> int:
        """Store one run, the state it left and what it found, all or nothing: bounce
        evidence and the watched files' read positions go in the same transaction, so a
        killed run neither loses nor repeats a bounce."""
        with self._writing():
            self.db.table("watch_state").upsert_all(
                [{"path": path, "position": pos} for path, pos in positions.items()], pk="path"
            )
            run_id = self._insert_run(run)
            self._save_state(before, after, _ts(run.finished))
            self._record_events(run_id, events)
            self._insert_evidence(run.finished, evidence)
            if run.report is not None:
                self._touch_episodes(run)
            for notification in notifications:
                self._queue(run.finished, notification)
        return run_id

    def _insert_run(self, run: RunRecord) -> int:
        report = run.report
        results = report.results if report is not None else ()
        counts = {status: 0 for status in Status}
        for result in results:
            counts[result.status] += 1
        row = {
            "started": _ts(run.started),
            "finished": _ts(run.finished),
            "seconds": round((run.finished - run.started).total_seconds(), 3),
            "targets": len({r.target for r in results}),
            "zones": len(report.zones) if report is not None else 0,
            "lookups": len(results) - counts[Status.SKIPPED],
            # a blind run (error set, report kept for its counts) says nothing
            "verdict": str(report.verdict) if report is not None and not run.error else "unknown",
            "listed": counts[Status.LISTED],
            "errors": counts[Status.ERROR],
            "queries": report.queries if report is not None else 0,
            "retries": report.retries if report is not None else 0,
            "error": run.error,
        }
        last = self.db.table("runs").insert(row).last_pk
        assert isinstance(last, int)
        return last

    def _save_state(self, before: MonitorState, after: MonitorState, at: str | None) -> None:
        gone = [k for k in before.pairs if k not in after.pairs]
        if gone:
            # No longer monitored: its open episode ends here (`history` shows when it stopped).
            ended = [(at, target, before.pairs[(target, zone)].label) for target, zone in gone]
            self.db.conn.executemany(
                "UPDATE episodes SET ended = ? WHERE target = ? AND zone = ? AND ended IS NULL",
                ended,
            )
            self.db.conn.executemany("DELETE FROM pair_state WHERE target = ? AND zone = ?", gone)
        gone_zones = [(z,) for z in before.zones if z not in after.zones]
        self.db.conn.executemany("DELETE FROM zone_state WHERE zone = ?", gone_zones)
        changed_pairs = [p for k, p in after.pairs.items() if before.pairs.get(k) != p]
        self.db.table("pair_state").upsert_all(
            [
                {"target": p.target, "zone": p.zone, "label": p.label, "listed": int(p.listed),
                 "codes": json.dumps(p.codes), "meaning": p.meaning,
                 "severity": int(p.severity) if p.severity else None, "txt": json.dumps(p.txt),
                 "delist_url": p.delist_url, "since": _ts(p.since),
                 "candidate": None if p.candidate is None else int(p.candidate),
                 "streak": p.streak, "candidate_since": _ts(p.candidate_since)}
                for p in changed_pairs
            ],
            pk=("target", "zone"),
        )  # fmt: skip
        changed_zones = [z for k, z in after.zones.items() if before.zones.get(k) != z]
        self.db.table("zone_state").upsert_all(
            [
                {"zone": z.zone, "label": z.label, "usable": int(z.usable), "health": z.health,
                 "detail": z.detail, "since": _ts(z.since),
                 "candidate": None if z.candidate is None else int(z.candidate),
                 "streak": z.streak, "candidate_since": _ts(z.candidate_since)}
                for z in changed_zones
            ],
            pk="zone",
        )  # fmt: skip
        meta = _meta(after)
        if meta != _meta(before):
            self.db.table("monitor_meta").upsert_all(
                [{"key": key, "value": json.dumps(value)} for key, value in meta.items()],
                pk="key",
            )

    def _record_events(self, run_id: int, events: Sequence[Event]) -> None:
        for event in events:
            self.db.table("events").insert(
                {"run_id": run_id, "at": _ts(event.at), "kind": str(event.kind),
                 "severity": int(event.severity), "target": event.target, "zone": event.zone,
                 "codes": json.dumps(event.codes), "meaning": event.meaning,
                 "delist_url": event.delist_url, "since": _ts(event.since),
                 "ended": _ts(event.ended), "detail": event.detail},
            )  # fmt: skip
            at = _ts(event.at)
            if event.kind is EventKind.LISTED:
                self.db.table("episodes").insert(
                    {"target": event.target, "zone": event.zone, "codes": json.dumps(event.codes),
                     "meaning": event.meaning, "severity": int(event.severity),
                     "txt": json.dumps(event.txt), "delist_url": event.delist_url,
                     "first_seen": _ts(event.since), "last_seen": at, "ended": None},
                )  # fmt: skip
            elif event.kind is EventKind.DELISTED:
                self.db.execute(
                    "UPDATE episodes SET ended = ? WHERE target = ? AND zone = ? AND ended IS NULL",
                    [_ts(event.ended or event.at), event.target, event.zone],
                )
            elif event.kind in (EventKind.ZONE_UNUSABLE, EventKind.RESOLVER_REFUSED):
                self.db.table("zone_episodes").insert(
                    {"zone": event.zone, "health": event.detail.partition(":")[0],
                     "detail": event.detail, "first_seen": _ts(event.since), "last_seen": at,
                     "ended": None},
                )  # fmt: skip
            elif event.kind is EventKind.ZONE_RECOVERED:
                self.db.execute(
                    "UPDATE zone_episodes SET ended = ? WHERE zone = ? AND ended IS NULL",
                    [_ts(event.ended or event.at), event.zone],
                )

    def _touch_episodes(self, run: RunRecord) -> None:
        assert run.report is not None
        at = _ts(run.finished)
        listed = {(r.target.text, r.zone.label) for r in run.report.results
                  if r.status is Status.LISTED}  # fmt: skip
        self.db.conn.executemany(
            "UPDATE episodes SET last_seen = ? WHERE target = ? AND zone = ? AND ended IS NULL",
            [(at, target, zone) for target, zone in sorted(listed)],
        )
        sick = [z.zone.label for z in run.report.zones
                if not z.health.trusted and z.health is not Health.NOT_JUDGED]  # fmt: skip
        self.db.conn.executemany(
            "UPDATE zone_episodes SET last_seen = ? WHERE zone = ? AND ended IS NULL",
            [(at, zone) for zone in sick],
        )

    # --- bounce evidence -------------------------------------------------------------------

    def unseen(
        self, evidence: Sequence[tuple[BounceRecord, Attribution]]
    ) -> list[tuple[BounceRecord, Attribution]]:
        """The evidence not stored before (a bounce read twice counts once)."""
        fresh: dict[str, tuple[BounceRecord, Attribution]] = {}
        for record, attribution in evidence:
            fresh.setdefault(fingerprint(record), (record, attribution))
        if not fresh:
            return []
        known: set[str] = set()
        keys = list(fresh)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            known.update(
                row[0]
                for row in self.db.execute(
                    f"SELECT fingerprint FROM bounces WHERE fingerprint IN ({marks})", chunk
                )
            )
        return [item for key, item in fresh.items() if key not in known]

    def watch_positions(self) -> dict[str, str]:
        return {row["path"]: row["position"] for row in self.db.table("watch_state").rows}

    def _insert_evidence(
        self, seen: datetime, evidence: Sequence[tuple[BounceRecord, Attribution]]
    ) -> None:
        self.db.table("bounces").insert_all(
            [
                {"fingerprint": fingerprint(r), "seen": _ts(seen), "date": _ts(r.date),
                 "source": r.source, "recipient": r.recipient, "status": r.status,
                 "reply_code": r.reply_code, "remote_mta": r.remote_mta,
                 "diagnostic": r.diagnostic, "message_id": r.message_id,
                 "verdict": str(a.verdict), "list": a.list, "zone": a.zone,
                 "provider": a.provider, "kind": str(a.kind or ""), "listed_ip": a.listed_ip,
                 "listed_domain": a.listed_domain, "delist_url": a.delist_url}
                for r, a in evidence
            ],
            ignore=True,
        )  # fmt: skip
        # Each bounce that names a listing points at the episode it supports: the one opened
        # from bounces ("<list> (bounce)"), or the DNS check's episode of the same zone.
        self.db.execute(
            """UPDATE bounces SET episode = (
                 SELECT e.id FROM episodes e
                 WHERE e.target = COALESCE(NULLIF(bounces.listed_ip, ''), bounces.listed_domain)
                   AND e.zone IN (bounces.list || ' (bounce)', bounces.zone)
                 ORDER BY e.ended IS NULL DESC, e.id DESC LIMIT 1)
               WHERE episode IS NULL AND verdict = 'listed'"""
        )

    def bounced_domains(self, lists: Iterable[str]) -> dict[str, list[str]]:
        """The recipient domains of the stored bounces that named each list (zone or list id)."""
        out: dict[str, list[str]] = {}
        for name in lists:
            rows = self.db.execute(
                "SELECT DISTINCT lower(substr(recipient, instr(recipient, '@') + 1)) FROM bounces"
                " WHERE verdict = 'listed' AND (list = ? OR zone = ?) AND instr(recipient, '@')",
                [name, name],
            )
            out[name] = sorted(row[0] for row in rows if row[0])
        return out

    def _queue(
        self, at: datetime, notification: tuple[str, str, Severity, tuple[str, ...]]
    ) -> None:
        """A notification to send (now, or on a later run if delivery fails)."""
        title, body, severity, kinds = notification
        self.db.table("notifications").insert(
            {"created": _ts(at), "title": title, "body": body, "severity": int(severity),
             "kinds": json.dumps(kinds), "status": "pending", "attempts": 0, "last_error": "",
             "owed": "[]"},
        )  # fmt: skip

    # --- what the smart host and the cause finder remember between runs ------------------

    def _memo(self) -> dict[str, Any]:
        rows = self.db.execute(
            f"SELECT key, value FROM monitor_meta WHERE key IN ({', '.join('?' * len(_MEMO))})",
            list(_MEMO),
        ).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def _save_memo(self, values: Mapping[str, Any]) -> None:
        known = self._memo()
        changed = {k: v for k, v in values.items() if known.get(k) != v}
        if changed:
            with self._writing():
                self.db.table("monitor_meta").upsert_all(
                    [{"key": k, "value": json.dumps(v)} for k, v in changed.items()], pk="key"
                )

    def load_smarthost(self) -> SmarthostMemory:
        memo = self._memo()
        wanted = memo.get("smarthost_wanted") or {}
        return SmarthostMemory(
            action=wanted.get("action") or "",
            destinations=tuple(wanted.get("destinations", ())),
            last_listed=_dt(memo.get("smarthost_last_listed")),
            error=memo.get("smarthost_error") or "",
        )

    def save_smarthost(self, memory: SmarthostMemory) -> None:
        wanted = {"action": memory.action, "destinations": list(memory.destinations)}
        self._save_memo(
            {
                "smarthost_wanted": wanted if memory.action else None,
                "smarthost_last_listed": _ts(memory.last_listed),
                "smarthost_error": memory.error or None,
            }
        )

    def load_causes(self) -> CauseMemory:
        memo = self._memo()
        queue = memo.get("queue_snapshot") or {}
        return CauseMemory(
            queue_at=_dt(queue.get("at")),
            queue_messages=queue.get("messages", 0),
            queue_error=memo.get("queue_error") or "",
            findings=tuple(memo.get("cause_findings") or ()),
            messages=tuple(memo.get("cause_messages") or ()),
        )

    def save_causes(self, memory: CauseMemory) -> None:
        queue = (
            {"at": memory.queue_at.isoformat(), "messages": memory.queue_messages}
            if memory.queue_at is not None
            else None
        )
        self._save_memo(
            {
                "queue_snapshot": queue,
                "queue_error": memory.queue_error or None,
                "cause_findings": list(memory.findings),
                "cause_messages": list(memory.messages),
            }
        )

    def record_smarthost(
        self,
        at: datetime,
        action: Mapping[str, Any],
        notification: tuple[str, str, Severity, tuple[str, ...]] | None = None,
    ) -> None:
        """One smart-host action (apply, revert, recommend, request; done or failed), and its
        notification, in one transaction. `action` never holds the password: no plan does."""
        with self._writing():
            self.db.table("smarthost_actions").insert(
                {"at": _ts(at), "action": action["action"], "outcome": action["outcome"],
                 "mta": action.get("mta", ""), "relay": action.get("relay", ""),
                 "scope": action.get("scope", ""),
                 "destinations": json.dumps(list(action.get("destinations", ()))),
                 "detail": action.get("detail", "")},
            )  # fmt: skip
            if notification is not None:
                self._queue(at, notification)

    def record_cleanup(
        self, at: datetime, *, mta: str, selection: str, removed: Sequence[str], error: str = ""
    ) -> None:
        """What `blmonitor queue --apply` removed, by queue id."""
        with self._writing():
            self.db.table("cleanups").insert(
                {"at": _ts(at), "mta": mta, "selection": selection, "removed": len(removed),
                 "queue_ids": json.dumps(list(removed)), "error": error}
            )  # fmt: skip

    def record_findings(
        self,
        at: datetime,
        findings: Sequence[tuple[str, str]],
        notification: tuple[str, str, Severity, tuple[str, ...]] | None,
    ) -> None:
        """New cause findings (kind, message) as events, and their notification, at once."""
        with self._writing():
            for kind, message in findings:
                self.db.table("events").insert(
                    {"at": _ts(at), "kind": kind, "severity": int(Severity.WARNING),
                     "target": "", "zone": "", "codes": "[]", "meaning": "", "delist_url": "",
                     "detail": message},
                )  # fmt: skip
            if notification is not None:
                self._queue(at, notification)

    def smarthost_actions(self, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """Smart-host actions, newest first."""
        where, params = "", []
        if since is not None:
            where, params = "WHERE at >= ?", [_ts(since)]
        rows = self.db.query(f"SELECT * FROM smarthost_actions {where} ORDER BY id DESC", params)
        return [{**r, "destinations": json.loads(r["destinations"] or "[]")} for r in rows]

    # --- notifications ---------------------------------------------------------------------

    def pending_notifications(self) -> list[Notification]:
        rows = self.db.query(
            "SELECT * FROM notifications WHERE status IN ('pending', 'failed') ORDER BY id"
        )
        return [
            Notification(
                id=row["id"],
                created=_dt(row["created"]) or datetime.min,
                title=row["title"],
                body=row["body"],
                severity=Severity(row["severity"]),
                status=row["status"],
                attempts=row["attempts"],
                last_error=row["last_error"] or "",
                kinds=tuple(json.loads(row["kinds"] or "[]")),
                owed=tuple(json.loads(row["owed"] or "[]")),
            )
            for row in rows
        ]

    def mark_notification(
        self,
        notification_id: int,
        *,
        ok: bool,
        attempts: int,
        error: str,
        now: datetime,
        owed: Sequence[str] = (),
    ) -> None:
        """Record a delivery; `owed` names the targets that still have to get it."""
        with self._writing():
            self.db.execute(
                "UPDATE notifications SET status = ?, attempts = attempts + ?, last_error = ?,"
                " sent_at = ?, owed = ? WHERE id = ?",
                ["sent" if ok else "failed", attempts, error, _ts(now) if ok else None,
                 json.dumps(list(owed)), notification_id],
            )  # fmt: skip

    def expire_notification(self, notification_id: int, *, error: str) -> None:
        """Stop retrying a message (kept, with the reason, for the record)."""
        with self._writing():
            self.db.execute(
                "UPDATE notifications SET status = 'expired', last_error = ? WHERE id = ?",
                [error, notification_id],
            )

    # --- queries for people ----------------------------------------------------------------

    def last_run(self) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT 1"))
        return rows[0] if rows else None

    def episodes(
        self, *, since: datetime | None = None, target: str = "", zone: str = ""
    ) -> list[dict[str, Any]]:
        """Listing episodes, newest first; `since` keeps those still open or ended after it."""
        rows = self._episode_rows("episodes", since, target=target, zone=zone)
        return [
            {
                **row,
                "codes": json.loads(row["codes"] or "[]"),
                "txt": json.loads(row["txt"] or "[]"),
            }
            for row in rows
        ]

    def zone_episodes(
        self, *, since: datetime | None = None, zone: str = ""
    ) -> list[dict[str, Any]]:
        """Zone-health episodes, newest first, filtered as `episodes`."""
        return self._episode_rows("zone_episodes", since, zone=zone)

    def _episode_rows(
        self, table: str, since: datetime | None, **equal: str
    ) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("(ended IS NULL OR ended >= ?)")
            params.append(_ts(since))
        for column, value in equal.items():
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY first_seen DESC, id DESC"
        return list(self.db.query(sql, params))

    def prune(self, before: datetime) -> int:
        """Drop runs, events, ended episodes and sent notifications older than `before`."""
        cutoff = _ts(before)
        removed = 0
        with self._writing():
            for sql in (
                "DELETE FROM runs WHERE finished < ?",
                "DELETE FROM events WHERE at < ?",
                "DELETE FROM episodes WHERE ended IS NOT NULL AND ended < ?",
                "DELETE FROM zone_episodes WHERE ended IS NOT NULL AND ended < ?",
                "DELETE FROM notifications WHERE status IN ('sent', 'expired') AND created < ?",
            ):
                removed += self.db.execute(sql, [cutoff]).rowcount
        return removed
