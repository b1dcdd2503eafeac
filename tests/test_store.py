"""The history database on a real temp file: state round trip, episodes, notifications."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils

from blmonitor.errors import StoreError
from blmonitor.models import EventKind, Health, Severity, Status
from blmonitor.monitor import state as monitor
from blmonitor.monitor.rows import MIGRATIONS
from blmonitor.monitor.store import RunRecord, Store
from blmonitor.sources.models import Rating
from tests.test_monitor import at, report
from tests.test_snds import BLOCK, polled, rated


def run_series(store: Store, statuses, *, confirm=2, health=Health.OK):
    kinds = []
    for i, status in enumerate(statuses):
        before = store.load_state()
        rep = report(status, health)
        after, events = monitor.evaluate(rep, before, now=at(i), confirm=confirm)
        store.record_run(RunRecord(at(i), at(i) + timedelta(seconds=2), rep), before, after, events,
                         [(f"run {i}", "body", Severity.WARNING, ("listed",))] if events else [])  # fmt: skip
        kinds += [e.kind for e in events]
    return kinds


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "sub" / "blmonitor.db")
    yield s
    s.close()


def test_schema_is_versioned_and_in_wal_mode(store) -> None:
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert set(store.db.table_names()) >= {"runs", "pair_state", "episodes", "notifications"}


def test_state_round_trips_between_processes(store, tmp_path) -> None:
    run_series(store, [Status.LISTED])
    again = Store(tmp_path / "sub" / "blmonitor.db")
    try:
        state = again.load_state()
    finally:
        again.close()
    pair = state.pairs[("203.0.113.5", "bl.lab.test")]
    assert (pair.listed, pair.candidate, pair.streak, pair.candidate_since) == (
        False,
        True,
        1,
        at(0),
    )
    assert state.zones["bl.lab.test"].usable


def test_an_episode_from_listed_to_delisted(store) -> None:
    kinds = run_series(store, [Status.CLEAN, Status.LISTED, Status.LISTED, Status.LISTED,
                               Status.CLEAN, Status.CLEAN])  # fmt: skip
    assert kinds == [EventKind.LISTED, EventKind.DELISTED]
    [episode] = store.episodes()
    assert (episode["target"], episode["zone"], episode["codes"]) == (
        "203.0.113.5", "bl.lab.test", ["127.0.0.2"],
    )  # fmt: skip
    assert episode["first_seen"] == at(1).isoformat()
    assert episode["last_seen"] == (at(3) + timedelta(seconds=2)).isoformat()
    assert episode["ended"] == at(4).isoformat()
    assert store.episodes(target="198.51.100.1") == []
    assert store.episodes(since=at(5)) == []
    assert len(store.episodes(since=at(4))) == 1
    assert store.last_run()["verdict"] == "unknown"
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 6


def test_clean_runs_write_no_pair_rows_after_the_first(store) -> None:
    run_series(store, [Status.CLEAN])
    changes = store.db.conn.total_changes
    run_series(store, [Status.CLEAN])
    # the run's own row, and nothing else: no pair, zone or meta row was rewritten
    assert store.db.conn.total_changes - changes == 1


def test_zone_episode(store) -> None:
    kinds = run_series(store, [None, None], health=Health.DEAD)
    assert kinds == [EventKind.ZONE_UNUSABLE]
    [row] = store.zone_episodes()
    assert row["zone"] == "bl.lab.test" and row["ended"] is None and row["health"] == "dead"


def test_notifications_pending_sent_failed(store) -> None:
    run_series(store, [Status.LISTED, Status.LISTED])
    [pending] = store.pending_notifications()
    assert (pending.title, pending.status, pending.attempts) == ("run 1", "pending", 0)
    store.mark_notification(pending.id, ok=False, attempts=3, error="timeout", now=at(2))
    [failed] = store.pending_notifications()
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "timeout")
    store.mark_notification(pending.id, ok=True, attempts=1, error="", now=at(3))
    assert store.pending_notifications() == []


def test_prune_keeps_open_episodes(store) -> None:
    run_series(store, [Status.LISTED, Status.LISTED])
    removed = store.prune(at(10))
    assert removed >= 2
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    assert len(store.episodes()) == 1


def test_unusable_path_is_one_clear_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot use the history database"):
        Store(blocker / "blmonitor.db")


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer blmonitor"):
        Store(path)


def test_a_target_no_longer_monitored_leaves_the_state(store) -> None:
    from blmonitor.models import Report, Result, Target, TargetKind, Verdict, ZoneHealth
    from tests.test_monitor import BL

    run_series(store, [Status.LISTED, Status.LISTED])  # 203.0.113.5 listed, episode open
    other = Target("203.0.113.77", TargetKind.IPV4)
    rep = Report((Result(other, BL, Status.CLEAN),), (ZoneHealth(BL, Health.OK),), Verdict.CLEAN)
    before = store.load_state()
    after, events = monitor.evaluate(rep, before, now=at(5), confirm=2)
    store.record_run(RunRecord(at(5), at(5), rep), before, after, events)
    assert events == []  # not "delisted": it is simply no longer checked
    assert list(store.load_state().pairs) == [("203.0.113.77", "bl.lab.test")]
    [episode] = store.episodes()
    assert (episode["ended"], episode["end_reason"]) == (at(5).isoformat(), "unmonitored")


def test_history_says_no_longer_monitored_not_delisted(store, tmp_path) -> None:
    from blmonitor.config import Defaults, parse_config
    from blmonitor.monitor.status import read_history, render_history

    test_a_target_no_longer_monitored_leaves_the_state(store)
    config = parse_config("", source="t.toml", defaults=Defaults(store.path))
    text = render_history(read_history(config))
    assert f"no longer monitored since {at(5).isoformat()}" in text
    assert "still listed" not in text


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can create files for another user")
def test_root_leaves_the_files_beside_the_database_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "blmonitor.db"
    Store(path).close()
    os.chown(path, 998, 998)  # the service's user owns the database
    store = Store(path)
    with store.run_lock():
        pass
    for name in ("blmonitor.db-wal", "blmonitor.db-shm", "blmonitor.db.lock"):
        found = (tmp_path / name).stat()
        assert (found.st_uid, found.st_gid) == (998, 998), name
    store.close()


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[None]:
    """`path` as a read-only file system (a bind mount), as a reader may find it."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True, capture_output=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True,
                       capture_output=True)  # fmt: skip
        yield
    finally:
        # (a file left open would keep it busy: the test then fails here, not later)
        subprocess.run(["umount", str(path)], check=True, capture_output=True)


def test_readers_need_no_write_access(tmp_path: Path) -> None:
    """status and history on a read-only directory (or a full disk): nothing to write."""
    from blmonitor.config import Defaults, parse_config
    from blmonitor.monitor.status import read_history, read_status

    home = tmp_path / "db"
    home.mkdir()
    store = Store(home / "blmonitor.db")
    run_series(store, [Status.LISTED, Status.LISTED])
    store.close()  # (the last connection: the WAL is checkpointed, -wal and -shm removed)
    config = parse_config("", source="t.toml", defaults=Defaults(home / "blmonitor.db"))
    try:
        guard = read_only_dir(home)
        guard.__enter__()
    except (subprocess.CalledProcessError, FileNotFoundError, PermissionError):
        pytest.skip("no bind mount here")
    try:
        with pytest.raises(OSError):
            (home / "probe").touch()  # it is read-only indeed
        assert [p.target for p in read_status(config).listed] == ["203.0.113.5"]
        assert len(read_history(config).episodes) == 1
    finally:
        guard.__exit__(None, None, None)


def test_two_first_runs_at_once_make_the_schema_once(tmp_path: Path) -> None:
    """Many processes opening a new database at the same moment: none fails."""
    code = (
        "import sys; from pathlib import Path; from blmonitor.monitor.store import Store; "
        "Store(Path(sys.argv[1])).close()"
    )
    root = Path(__file__).resolve().parent.parent
    for trial in range(5):
        db = tmp_path / f"new-{trial}.db"
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(db)], cwd=root,
                             stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
            for _ in range(6)
        ]  # fmt: skip
        errors = [p.communicate(timeout=60)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors
        store = Store(db)
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        store.close()


# --- the database file's mode: it holds notification text --------------------------------------


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_database_and_its_wal_and_shm_are_for_its_user_only(tmp_path) -> None:
    old = os.umask(0o022)  # the usual umask, which would leave 0644
    try:
        store = Store(tmp_path / "h.db")
        run_series(store, [Status.LISTED])
        files = [tmp_path / name for name in ("h.db", "h.db-wal", "h.db-shm")]
        assert [_mode(p) for p in files] == [0o600] * 3
        store.close()
    finally:
        os.umask(old)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another group needs root")
def test_a_directory_open_to_its_group_gets_a_database_that_group_can_read(tmp_path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o750)
    os.chown(directory, 0, 4242)  # root:<the service group>, as for /etc/blmonitor
    store = Store(directory / "h.db")
    run_series(store, [Status.LISTED])
    assert _mode(directory / "h.db") == 0o640 and (directory / "h.db").stat().st_gid == 4242
    assert _mode(directory / "h.db-wal") == 0o640
    store.close()


def test_an_older_world_readable_database_is_narrowed_once(tmp_path, caplog) -> None:
    Store(tmp_path / "h.db").close()
    for name in ("h.db", "h.db-wal"):
        (tmp_path / name).touch()
        (tmp_path / name).chmod(0o644)
    caplog.set_level("WARNING", logger="blmonitor")
    Store(tmp_path / "h.db").close()
    assert _mode(tmp_path / "h.db") == 0o600
    said = [r.getMessage() for r in caplog.records if "readable by others" in r.getMessage()]
    assert said == [f"history database {tmp_path / 'h.db'} was readable by others: narrowed "
                    "(h.db 644 -> 600, h.db-wal 644 -> 600)"]  # fmt: skip
    Store(tmp_path / "h.db").close()
    assert len([r for r in caplog.records if "readable by others" in r.getMessage()]) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="creating for another user needs root")
def test_root_creates_a_database_for_the_owner_of_its_directory(tmp_path) -> None:
    # the root unit (smarthost sync) may be the first to open it, in the service's 0700 directory
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    os.chown(directory, 4243, 4243)
    store = Store(directory / "h.db")
    run_series(store, [Status.LISTED])
    for name in ("h.db", "h.db-wal", "h.db-shm"):
        owner = (directory / name).stat()
        assert (owner.st_uid, owner.st_gid, _mode(directory / name)) == (4243, 4243, 0o600), name
    store.close()


def test_sources_state_and_reputation_round_trip(store, tmp_path) -> None:
    """An SNDS block, the source's memory and its daily rows survive the process; a day read
    again replaces its row; a listing whose target left ends its episode as unmonitored."""
    before = store.load_state()
    result = polled(at(0), listings=[BLOCK], reputation=[rated(Rating.BAD, 5, "RED")],
                    unknown=["192.0.2.1"])  # fmt: skip
    after, events = monitor.evaluate_sources(before, [result], now=at(0), labels={"snds": "SNDS"})
    run = RunRecord(at(0), at(0), None, "")
    store.record_run(run, before, after, events, reputation=result.reputation)
    again = Store(tmp_path / "sub" / "blmonitor.db", readonly=True)
    try:
        assert again.load_state().sources == after.sources
        assert again.load_state().source_health == after.source_health
        assert [
            (r["subject"], r["day"], r["rating"], r["figures"]) for r in again.reputation()
        ] == [("203.0.113.5", "2026-12-05", "bad", {"complaint_rate": "0.3%", "trap_hits": "3"})]
        [episode] = again.episodes()
        assert (episode["zone"], episode["ended"]) == ("microsoft-snds (SNDS)", None)
    finally:
        again.close()
    green = [rated(Rating.GOOD, 5, "GREEN")]  # SNDS revised the day: one row, the latest
    store.record_run(RunRecord(at(1), at(1), None, ""), after, after, [], reputation=green)
    assert [r["raw"] for r in store.reputation()] == ["GREEN"]
    assert store.reputation(worse_than_good=True) == []
    gone = monitor.forget_sources(after, [])
    store.record_run(RunRecord(at(2), at(2), None, ""), after, gone, [])
    assert store.load_state().sources == {} and store.load_state().source_health == {}
    [episode] = store.episodes()
    assert episode["end_reason"] == "unmonitored"


def test_a_reader_of_a_database_made_before_the_sources_sees_none(tmp_path) -> None:
    """A v6 database (no run of this version yet): status reads it without the new tables."""
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        db = sqlite_utils.Database(conn)
        for migration in MIGRATIONS[:6]:
            migration(db)
        conn.execute("PRAGMA user_version = 6")
        conn.commit()
    old = Store(path, readonly=True)
    try:
        assert old.load_state().sources == {} and old.reputation() == []
    finally:
        old.close()
    new = Store(path)  # a writer migrates it
    try:
        assert new.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 7
        assert {"source_listings", "source_health", "reputation"} <= set(new.db.table_names())
    finally:
        new.close()
