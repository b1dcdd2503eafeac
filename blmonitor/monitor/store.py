"""History in SQLite through sqlite-utils: check runs, listing and zone episodes, events,
notifications, and the monitor's state between runs.

Changes are stored, not every clean answer: one row per run, one row per (target, zone) pair
updated in place only when it changes, and one episode per listing. Each run is written in one
transaction (WAL mode), so a kill -9 at any point leaves the database as it was before the run
or after it, never half-written. The schema is versioned with PRAGMA user_version; it and the
rows of each record are in `rows`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils

from blmonitor.bounces.models import Attribution, BounceRecord
from blmonitor.errors import StoreError
from blmonitor.models import Event, EventKind, Health, Report, Severity, Status
from blmonitor.monitor.dbfiles import keep_owner, make_private
from blmonitor.monitor.digest import NoticeMemory
from blmonitor.monitor.rows import (
    MEMO_KEYS,
    MIGRATIONS,
    Notification,
    Queued,
    cause_memory,
    cause_meta,
    fingerprint,
    monitor_state,
    notice_memory,
    notice_meta,
    notification_from_row,
    pair_from_row,
    pair_row,
    reputation_row,
    smarthost_memory,
    smarthost_meta,
    source_health_from_row,
    source_health_row,
    source_listing_from_row,
    source_listing_row,
    stamp,
    state_meta,
    zone_from_row,
    zone_row,
)
from blmonitor.monitor.state import CauseMemory, MonitorState, SmarthostMemory
from blmonitor.sources.models import ReputationRecord

log = logging.getLogger("blmonitor")


@dataclass(frozen=True, slots=True)
class RunRecord:
    started: datetime
    finished: datetime
    report: Report | None  # None: the run could not check anything
    error: str = ""


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection: through the WAL when its shared memory can be used, else (a
    read-only directory, no daemon running) the file as it stands."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(uri + "&immutable=1", uri=True)
    return conn


class Store:
    """The history database; `Store(path)` opens (creating and migrating) it."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """`readonly` (status, history, the metrics): no write, no migration, no lock — it
        works on a read-only directory and on a full disk."""
        self.path = path
        try:
            if readonly:
                self.db = sqlite_utils.Database(_read_only(path))
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            make_private(path)
            self.db = sqlite_utils.Database(path)
            self.db.execute("PRAGMA busy_timeout = 5000")
            if self.db.journal_mode != "wal" or self._version() != len(MIGRATIONS):
                # Two first runs at once: the second waits here, then finds the file in WAL
                # mode and the schema made (switching the journal mode of a file another
                # process is switching too fails at once with "database is locked": SQLite's
                # busy timeout does not cover it).
                with self.run_lock():
                    self.db.enable_wal()
                    self._migrate()
            keep_owner(path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot use the history database {path}: {exc} "
                "(check the directory's permissions and free space, or set [monitor] database)"
            ) from exc

    def close(self) -> None:
        self.db.close()

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
            keep_owner(self.path, lock_path)
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self._version()
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
        pairs = [pair_from_row(row) for row in self.db.table("pair_state").rows]
        zones = [zone_from_row(row) for row in self.db.table("zone_state").rows]
        meta = {row["key"]: json.loads(row["value"]) for row in self.db.table("monitor_meta").rows}
        if not self.db.table("source_listings").exists():  # read-only, before v7's first run
            return monitor_state(pairs, zones, meta)
        sources = [source_listing_from_row(row) for row in self.db.table("source_listings").rows]
        health = [source_health_from_row(row) for row in self.db.table("source_health").rows]
        return monitor_state(pairs, zones, meta, sources, health)

    def record_run(
        self,
        run: RunRecord,
        before: MonitorState,
        after: MonitorState,
        events: Sequence[Event],
        notifications: Iterable[Queued] = (),
        evidence: Sequence[tuple[BounceRecord, Attribution]] = (),
        positions: Mapping[str, str] = {},
        reputation: Sequence[ReputationRecord] = (),
    ) -> int:
        """Store one run, the state it left and what it found, all or nothing: bounce
        evidence and the watched files' read positions go in the same transaction, so a
        killed run neither loses nor repeats a bounce; the sources' daily reputation too
        (a day read again replaces its row)."""
        with self._writing():
            self.db.table("watch_state").upsert_all(
                [{"path": path, "position": pos} for path, pos in positions.items()], pk="path"
            )
            run_id = self._insert_run(run)
            self._save_state(before, after, stamp(run.finished))
            self._record_events(run_id, events)
            self._insert_evidence(run.finished, evidence)
            self.db.table("reputation").upsert_all(
                [reputation_row(r, run.finished) for r in reputation],
                pk=("source", "subject", "day"),
            )
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
            "started": stamp(run.started),
            "finished": stamp(run.finished),
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
            # No longer monitored: its open episode stops here, marked so (never a delisting).
            ended = [(at, target, before.pairs[(target, zone)].label) for target, zone in gone]
            self.db.conn.executemany(
                "UPDATE episodes SET ended = ?, end_reason = 'unmonitored'"
                " WHERE target = ? AND zone = ? AND ended IS NULL",
                ended,
            )
            self.db.conn.executemany("DELETE FROM pair_state WHERE target = ? AND zone = ?", gone)
        gone_zones = [(z,) for z in before.zones if z not in after.zones]
        self.db.conn.executemany("DELETE FROM zone_state WHERE zone = ?", gone_zones)
        changed_pairs = [p for k, p in after.pairs.items() if before.pairs.get(k) != p]
        self.db.table("pair_state").upsert_all(
            [pair_row(p) for p in changed_pairs], pk=("target", "zone")
        )
        changed_zones = [z for k, z in after.zones.items() if before.zones.get(k) != z]
        self.db.table("zone_state").upsert_all([zone_row(z) for z in changed_zones], pk="zone")
        self._save_sources(before, after, at)
        meta = state_meta(after)
        if meta != state_meta(before):
            self.db.table("monitor_meta").upsert_all(
                [{"key": key, "value": json.dumps(value)} for key, value in meta.items()],
                pk="key",
            )

    def _save_sources(self, before: MonitorState, after: MonitorState, at: str | None) -> None:
        """The sources' listings and memory, changed rows only; a listing gone without a
        DELISTED event (its target or source no longer monitored) ends as "unmonitored"."""
        gone = [k for k in before.sources if k not in after.sources]
        if gone:
            self.db.conn.executemany(
                "UPDATE episodes SET ended = ?, end_reason = 'unmonitored'"
                " WHERE target = ? AND zone = ? AND ended IS NULL",
                [(at, t, before.sources[(t, name)].zone) for t, name in gone],
            )
            self.db.conn.executemany(
                "DELETE FROM source_listings WHERE target = ? AND list = ?", gone
            )
        changed = [s for k, s in after.sources.items() if before.sources.get(k) != s]
        self.db.table("source_listings").upsert_all(
            [source_listing_row(s) for s in changed], pk=("target", "list")
        )
        # still shown by a source read this run: the open episode was seen now
        self.db.conn.executemany(
            "UPDATE episodes SET last_seen = ? WHERE target = ? AND zone = ? AND ended IS NULL",
            [(at, s.target, s.zone) for s in after.sources.values()
             if s.source in after.source_health
             and stamp(after.source_health[s.source].ok_at) == at],
        )  # fmt: skip
        dropped = [(name,) for name in before.source_health if name not in after.source_health]
        self.db.conn.executemany("DELETE FROM source_health WHERE source = ?", dropped)
        self.db.table("source_health").upsert_all(
            [source_health_row(h) for k, h in after.source_health.items()
             if before.source_health.get(k) != h],
            pk="source",
        )  # fmt: skip

    def _record_events(self, run_id: int, events: Sequence[Event]) -> None:
        for event in events:
            self.db.table("events").insert(
                {"run_id": run_id, "at": stamp(event.at), "kind": str(event.kind),
                 "severity": int(event.severity), "target": event.target, "zone": event.zone,
                 "codes": json.dumps(event.codes), "meaning": event.meaning,
                 "delist_url": event.delist_url, "since": stamp(event.since),
                 "ended": stamp(event.ended), "detail": event.detail},
            )  # fmt: skip
            at = stamp(event.at)
            if event.kind is EventKind.LISTED:
                self.db.table("episodes").insert(
                    {"target": event.target, "zone": event.zone, "codes": json.dumps(event.codes),
                     "meaning": event.meaning, "severity": int(event.severity),
                     "txt": json.dumps(event.txt), "delist_url": event.delist_url,
                     "first_seen": stamp(event.since), "last_seen": at, "ended": None},
                )  # fmt: skip
            elif event.kind is EventKind.DELISTED:
                self.db.execute(
                    "UPDATE episodes SET ended = ? WHERE target = ? AND zone = ? AND ended IS NULL",
                    [stamp(event.ended or event.at), event.target, event.zone],
                )
            elif event.kind in (EventKind.ZONE_UNUSABLE, EventKind.RESOLVER_REFUSED):
                self.db.table("zone_episodes").insert(
                    {"zone": event.zone, "health": event.detail.partition(":")[0],
                     "detail": event.detail, "first_seen": stamp(event.since), "last_seen": at,
                     "ended": None},
                )  # fmt: skip
            elif event.kind is EventKind.ZONE_RECOVERED:
                self.db.execute(
                    "UPDATE zone_episodes SET ended = ? WHERE zone = ? AND ended IS NULL",
                    [stamp(event.ended or event.at), event.zone],
                )

    def _touch_episodes(self, run: RunRecord) -> None:
        assert run.report is not None
        at = stamp(run.finished)
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
                {"fingerprint": fingerprint(r), "seen": stamp(seen), "date": stamp(r.date),
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

    def _queue(self, at: datetime, notification: Queued) -> None:
        """A notification to send (now, or on a later run if delivery fails)."""
        title, body, severity, kinds = notification[:4]
        payload = notification[4] if len(notification) > 4 else {}
        self.db.table("notifications").insert(
            {"created": stamp(at), "title": title, "body": body, "severity": int(severity),
             "kinds": json.dumps(kinds), "status": "pending", "attempts": 0, "last_error": "",
             "owed": "[]", "payload": json.dumps(payload)},
        )  # fmt: skip

    # --- what the smart host and the cause finder remember between runs ------------------

    def _memo(self) -> dict[str, Any]:
        rows = self.db.execute(
            f"SELECT key, value FROM monitor_meta WHERE key IN ({', '.join('?' * len(MEMO_KEYS))})",
            list(MEMO_KEYS),
        ).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def _save_memo(
        self, values: Mapping[str, Any], queue: tuple[datetime, Queued] | None = None
    ) -> None:
        """Write the memo values that changed, and queue a notification, in one transaction."""
        known = self._memo()
        changed = {k: v for k, v in values.items() if known.get(k) != v}
        if changed or queue is not None:
            with self._writing():
                self.db.table("monitor_meta").upsert_all(
                    [{"key": k, "value": json.dumps(v)} for k, v in changed.items()], pk="key"
                )
                if queue is not None:
                    self._queue(*queue)

    def load_smarthost(self) -> SmarthostMemory:
        return smarthost_memory(self._memo())

    def save_smarthost(self, memory: SmarthostMemory) -> None:
        self._save_memo(smarthost_meta(memory))

    def load_causes(self) -> CauseMemory:
        return cause_memory(self._memo())

    def save_causes(self, memory: CauseMemory) -> None:
        self._save_memo(cause_meta(memory))

    def load_notices(self) -> NoticeMemory:
        return notice_memory(self._memo())

    def save_notices(
        self, memory: NoticeMemory, notification: Queued | None = None, *, at: datetime
    ) -> None:
        """The digest's and the heartbeat's memory, and the digest it sent, in one transaction."""
        self._save_memo(notice_meta(memory), None if notification is None else (at, notification))

    def count_runs(self, since: datetime) -> tuple[int, int]:
        """Runs that finished after `since`, and how many of them were blind (saw nothing)."""
        runs, blind = self.db.execute(
            "SELECT count(*), count(NULLIF(error, '')) FROM runs WHERE finished > ?",
            [stamp(since)],
        ).fetchone()
        return int(runs), int(blind)

    def record_smarthost(
        self,
        at: datetime,
        action: Mapping[str, Any],
        notification: Queued | None = None,
    ) -> None:
        """One smart-host action (apply, revert, recommend, request; done or failed), and its
        notification, in one transaction. `action` never holds the password: no plan does."""
        with self._writing():
            self.db.table("smarthost_actions").insert(
                {"at": stamp(at), "action": action["action"], "outcome": action["outcome"],
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
                {"at": stamp(at), "mta": mta, "selection": selection, "removed": len(removed),
                 "queue_ids": json.dumps(list(removed)), "error": error}
            )  # fmt: skip

    def record_findings(
        self,
        at: datetime,
        findings: Sequence[tuple[str, str]],
        notification: Queued | None,
    ) -> None:
        """New cause findings (kind, message) as events, and their notification, at once."""
        with self._writing():
            for kind, message in findings:
                self.db.table("events").insert(
                    {"at": stamp(at), "kind": kind, "severity": int(Severity.WARNING),
                     "target": "", "zone": "", "codes": "[]", "meaning": "", "delist_url": "",
                     "detail": message},
                )  # fmt: skip
            if notification is not None:
                self._queue(at, notification)

    def smarthost_actions(self, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """Smart-host actions, newest first."""
        where, params = "", []
        if since is not None:
            where, params = "WHERE at >= ?", [stamp(since)]
        rows = self.db.query(f"SELECT * FROM smarthost_actions {where} ORDER BY id DESC", params)
        return [{**r, "destinations": json.loads(r["destinations"] or "[]")} for r in rows]

    # --- notifications ---------------------------------------------------------------------

    def pending_notifications(self) -> list[Notification]:
        rows = self.db.query(
            "SELECT * FROM notifications WHERE status IN ('pending', 'failed') ORDER BY id"
        )
        return [notification_from_row(row) for row in rows]

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
                ["sent" if ok else "failed", attempts, error, stamp(now) if ok else None,
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

    def runs_since(self, since: datetime) -> list[dict[str, Any]]:
        sql = "SELECT id, started, finished, error FROM runs WHERE finished >= ? ORDER BY id"
        return list(self.db.query(sql, [stamp(since)]))

    def listed_bounces_since(self, since: datetime) -> list[dict[str, Any]]:
        """Bounce evidence that named a listing, seen since `since`."""
        sql = ("SELECT seen, date, list, zone, listed_ip, listed_domain FROM bounces"
               " WHERE verdict = 'listed' AND seen >= ?")  # fmt: skip
        return list(self.db.query(sql, [stamp(since)]))

    def events_since(self, since: datetime, *, limit: int) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events WHERE at >= ? ORDER BY id DESC LIMIT ?"
        return list(self.db.query(sql, [stamp(since), limit]))

    def reputation(
        self, *, since: datetime | None = None, subject: str = "", worse_than_good: bool = False
    ) -> list[dict[str, Any]]:
        """The sources' daily reputation rows, newest day first (`since`: days on or after
        its date); `worse_than_good` keeps the poor and bad days."""
        if not self.db.table("reputation").exists():
            return []
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("day >= ?")
            params.append(since.date().isoformat())
        if subject:
            where.append("subject = ?")
            params.append(subject)
        if worse_than_good:
            where.append("rating IN ('poor', 'bad')")
        sql = f"SELECT * FROM reputation WHERE {' AND '.join(where)} ORDER BY day DESC, subject"
        return [{**r, "figures": json.loads(r["figures"] or "{}")}
                for r in self.db.query(sql, params)]  # fmt: skip

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
            params.append(stamp(since))
        for column, value in equal.items():
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY first_seen DESC, id DESC"
        return list(self.db.query(sql, params))

    def prune(self, before: datetime) -> int:
        """Drop runs, events, ended episodes and sent notifications older than `before`."""
        cutoff = stamp(before)
        removed = 0
        with self._writing():
            for sql in (
                "DELETE FROM runs WHERE finished < ?",
                "DELETE FROM events WHERE at < ?",
                "DELETE FROM episodes WHERE ended IS NOT NULL AND ended < ?",
                "DELETE FROM zone_episodes WHERE ended IS NOT NULL AND ended < ?",
                "DELETE FROM notifications WHERE status IN ('sent', 'expired') AND created < ?",
                "DELETE FROM reputation WHERE fetched < ?",
            ):
                removed += self.db.execute(sql, [cutoff]).rowcount
        return removed
