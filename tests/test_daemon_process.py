"""`blmonitor run` as a real process: signals, kill -9 in the middle of writes, a reader
beside the writer, and the log format journald reads.

Everything stays on loopback: the lab's resolver on 127.0.0.1 (never the system's), fixed
targets (never "auto", which would ask the internet for this machine's address), and
notifications, when there are any, go to a local HTTP sink. The child reads none of this
machine's MTA (no queue, no posture check).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import httpservers

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("203.0.113.5", "203.0.113.9", "198.51.100.7")


def write_config(tmp_path: Path, lab, *, name="config.toml", zones=("flip", "bl"), confirm=1,
                 database="blmonitor.db", hook="", title_prefix="[blmonitor]",
                 timeout=0.6) -> Path:  # fmt: skip
    urls = [hook.replace("http://", "json://")] if hook else []
    path = tmp_path / name
    path.write_text(
        f"""
[monitor]
targets = {json.dumps(list(TARGETS))}
zones = {json.dumps(list(zones))}
lists = "{lab.catalog_path}"
interval = "15m"
confirm = {confirm}
silent_first_run = false
database = "{tmp_path / database}"
[dns]
resolver = ["{lab.address}"]
timeout = {timeout}
[notify]
urls = {json.dumps(urls)}
retry = 1
title_prefix = {json.dumps(title_prefix)}
server_name = "mx.blmtest.example"  # the child never asks the machine's resolver for its name
[diagnose]
queue = false  # nor reads this machine's MTA (conftest's isolation stops at the process):
[posture]
daily = false  # not its queue, not its HELO name (postconf, exim -bP)
"""
    )
    return Path(path)


def child_env(**extra: str) -> dict[str, str]:
    # Not the caller's journald stream nor warning filters: the children log as in production.
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "PYTHONWARNINGS")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "blmonitor", "run", "--config", str(config), *args]


@contextlib.contextmanager
def daemon(config: Path, log: Path, *args: str, env=None) -> Iterator[subprocess.Popen[bytes]]:
    """`blmonitor run` with stderr to `log`; killed and reaped whatever the test does."""
    with log.open("ab") as stderr:
        proc = subprocess.Popen(
            command(config, *args),
            cwd=ROOT,
            env=env or child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def run_once(config: Path, *, env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(config, "--once"),
        cwd=ROOT,
        env=env or child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


def wait_for(what: str, ready: Callable[[], bool], proc, log: Path, timeout=15.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"blmonitor exited {proc.returncode} before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout:g}s:\n{log.read_text()}")
        time.sleep(0.05)


def logged(log: Path, text: str) -> Callable[[], bool]:
    return lambda: text in log.read_text()


def query(db: Path, sql: str, *, timeout: float = 5.0) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db, timeout=timeout)) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def flip(lab) -> Iterator[None]:
    """The switchable zone, emptied again after the test (the lab is shared)."""
    lab.flip.listed = set()
    try:
        yield lab.flip
    finally:
        lab.flip.listed = set()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    posted: list[tuple[str, str]] = []
    with httpservers.serve({"/broken": (500, "down")}, posted) as base:
        yield base, posted


# --- signals -------------------------------------------------------------------------------


def test_sigterm_after_the_first_run_exits_0(lab, flip, tmp_path) -> None:
    flip.listed = {"203.0.113.9"}
    config = write_config(tmp_path, lab)
    log = tmp_path / "stderr.log"
    db = tmp_path / "blmonitor.db"
    with daemon(config, log) as proc:
        wait_for("first run", logged(log, "next run at"), proc, log)
        # A second process reads the database while the daemon holds it open.
        assert query(db, "SELECT count(*), count(finished) FROM runs") == [(1, 1)]
        assert sorted(query(db, "SELECT target, zone FROM episodes WHERE ended IS NULL")) == [
            ("203.0.113.5", "bl.lab.test"), ("203.0.113.9", "flip.lab.test"),
        ]  # fmt: skip
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    text = log.read_text()
    assert "run done" in text and text.rstrip().endswith("stopping")
    assert text.count("run done") == 1
    assert "Traceback" not in text


def test_sigterm_during_a_run_lets_it_finish_its_write(lab, flip, tmp_path) -> None:
    # slow.lab.test never answers: the run waits out its timeouts, and SIGTERM arrives then.
    config = write_config(tmp_path, lab, zones=("flip", "slow.lab.test"), timeout=2.0)
    log = tmp_path / "stderr.log"
    db = tmp_path / "blmonitor.db"
    with daemon(config, log) as proc:
        # The database is opened after the signal handlers are installed.
        wait_for("the database", db.exists, proc, log)
        time.sleep(0.3)
        assert "run done" not in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    text = log.read_text()
    assert "run done" in text and text.rstrip().endswith("stopping")
    assert query(db, "SELECT count(*), count(finished) FROM runs") == [(1, 1)]


def test_sighup_reloads_and_a_broken_config_keeps_the_running_one(lab, flip, tmp_path) -> None:
    config = write_config(tmp_path, lab, zones=("flip",))
    log = tmp_path / "stderr.log"
    with daemon(config, log) as proc:
        wait_for("first run", logged(log, "next run at"), proc, log)

        write_config(tmp_path, lab, zones=("flip", "bl"), title_prefix="[mx1]")
        proc.send_signal(signal.SIGHUP)
        wait_for("reload", logged(log, f"config reloaded from {config}"), proc, log)
        assert log.read_text().count("next run at") == 2  # rescheduled with the new config

        write_config(tmp_path, lab, database="elsewhere.db")
        proc.send_signal(signal.SIGHUP)
        wait_for("second reload", lambda: log.read_text().count("config reloaded") == 2,
                 proc, log)  # fmt: skip
        assert "[monitor] database changes only with a restart" in log.read_text()
        assert not (tmp_path / "elsewhere.db").exists()

        config.write_text(config.read_text().replace('interval = "15m"', 'interval = "15x"'))
        proc.send_signal(signal.SIGHUP)
        wait_for("reload failure", logged(log, "reload failed"), proc, log)
        text = log.read_text()
        assert (
            f"reload failed, keeping the running config: {config}: [monitor] interval: "
            "'15x' is not a duration" in text
        )
        assert proc.poll() is None

        config.write_text("[monitor\n")  # not even TOML
        proc.send_signal(signal.SIGHUP)
        wait_for("second failure", lambda: log.read_text().count("reload failed") == 2,
                 proc, log)  # fmt: skip
        assert "not valid TOML" in log.read_text()
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    text = log.read_text()
    assert text.count("run done") == 1 and text.rstrip().endswith("stopping")
    assert "Traceback" not in text


# --- kill -9 -------------------------------------------------------------------------------


def check_database(db: Path) -> None:
    """What a kill at any point must never leave behind."""
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "PRAGMA foreign_key_check") == []
    assert query(db, "SELECT id FROM runs WHERE finished IS NULL OR started IS NULL") == []
    assert query(db, "SELECT id FROM runs WHERE finished < started") == []
    doubled = "SELECT target, zone, count(*) FROM episodes WHERE ended IS NULL GROUP BY 1, 2 HAVING count(*) > 1"
    assert query(db, doubled) == []
    assert query(db, "SELECT id FROM episodes WHERE first_seen > last_seen") == []
    assert query(db, "SELECT id FROM episodes WHERE ended < first_seen") == []
    # The state and the episodes are written in one transaction: they always agree.
    listed = set(query(db, "SELECT target, zone FROM pair_state WHERE listed = 1"))
    open_episodes = set(query(db, "SELECT target, zone FROM episodes WHERE ended IS NULL"))
    assert listed == open_episodes
    orphans = "SELECT id FROM events WHERE run_id NOT IN (SELECT id FROM runs)"
    assert query(db, orphans) == []


def test_kill_9_twenty_times_during_runs_leaves_a_sound_database(
    lab, flip, tmp_path, webhook
) -> None:
    base, posted = webhook
    config = write_config(tmp_path, lab, hook=f"{base}/hook")
    db = tmp_path / "blmonitor.db"
    log = tmp_path / "stderr.log"
    rng = random.Random(20261101)

    started = time.monotonic()
    first = run_once(config)
    assert first.returncode == 0, first.stderr
    whole = time.monotonic() - started  # how long one run takes here, start to exit

    outcomes = []
    for _ in range(20):
        flip.listed = set(rng.sample(TARGETS, rng.randint(0, len(TARGETS))))
        # From the opening of the database (about a third in) to the exit: kills land in the
        # checks, the transaction, the deliveries and the notification updates.
        delay = rng.uniform(0.35, 1.0) * whole
        with daemon(config, log, "--once") as proc:
            try:
                outcomes.append(proc.wait(delay))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                outcomes.append(proc.wait(5))
    assert set(outcomes) <= {0, -signal.SIGKILL}
    assert outcomes.count(-signal.SIGKILL) >= 5, outcomes

    flip.listed = {"203.0.113.9"}
    final = run_once(config)
    assert final.returncode == 0, final.stderr
    check_database(db)
    # The last run saw the lab as it is now, whatever the kills interrupted before.
    assert sorted(query(db, "SELECT target, zone FROM episodes WHERE ended IS NULL")) == [
        ("203.0.113.5", "bl.lab.test"), ("203.0.113.9", "flip.lab.test"),
    ]  # fmt: skip
    # Every stored notification was delivered in the end: a kill delays one, never loses it.
    assert query(db, "SELECT count(*) FROM notifications WHERE status != 'sent'") == [(0,)]
    titles = {json.loads(body)["title"] for _, body in posted}
    assert {title for (title,) in query(db, "SELECT title FROM notifications")} <= titles
    runs = query(db, "SELECT count(*) FROM runs")[0][0]
    assert 2 + outcomes.count(0) <= runs <= 22  # some killed processes had committed


# --- a reader beside the writer ------------------------------------------------------------


def test_a_reader_never_sees_database_is_locked(lab, flip, tmp_path) -> None:
    config = write_config(tmp_path, lab)
    db = tmp_path / "blmonitor.db"
    first = run_once(config)  # creates the database (WAL) before the reader opens it
    assert first.returncode == 0, first.stderr
    assert query(db, "PRAGMA journal_mode") == [("wal",)]

    stop = threading.Event()
    errors: list[str] = []
    counts: list[int] = []

    def reader() -> None:
        # A persistent connection, and a fresh one each time (as `blmonitor status` does).
        with contextlib.closing(sqlite3.connect(db, timeout=1.0)) as kept:
            while not stop.is_set():
                try:
                    counts.append(kept.execute("SELECT count(*) FROM runs").fetchone()[0])
                    counts.append(query(db, "SELECT count(*) FROM runs", timeout=1.0)[0][0])
                except sqlite3.Error as exc:
                    errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        results = []
        for number in range(3):
            flip.listed = {TARGETS[number % 3]} if number % 2 else set()
            results.append(run_once(config))
    finally:
        stop.set()
        thread.join(10)
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "locked" not in result.stderr and "Traceback" not in result.stderr
    assert errors == []
    assert len(counts) > 20
    assert counts == sorted(counts) and set(counts) <= {1, 2, 3, 4}
    assert query(db, "SELECT count(*) FROM runs") == [(4,)]
    check_database(db)


# --- the log format ------------------------------------------------------------------------

JOURNAL_LINE = re.compile(r"<[2-7]>\S")
PLAIN_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)


@pytest.mark.parametrize("journal", [True, False], ids=["journald", "terminal"])
def test_log_lines_carry_syslog_priorities_only_for_journald(
    lab, flip, tmp_path, webhook, journal
) -> None:
    base, _ = webhook
    # Info: "run done". Warnings: a listing on flip, world.lab.test unusable (it lists
    # everything). Errors: the notification, as the webhook answers 500.
    flip.listed = {"203.0.113.9"}
    config = write_config(tmp_path, lab, zones=("flip", "world.lab.test"), hook=f"{base}/broken")
    env = child_env(JOURNAL_STREAM="1:1") if journal else child_env()
    result = run_once(config, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines
    if journal:
        assert [line for line in lines if not JOURNAL_LINE.match(line)] == []
        priorities = {line[:3] for line in lines}
        assert {"<6>", "<4>", "<3>"} <= priorities
        assert any(line.startswith("<6>run done") for line in lines)
        assert any(line.startswith("<3>notification 1 not delivered") for line in lines)
    else:
        assert [line for line in lines if not PLAIN_LINE.match(line)] == []
        assert {"INFO", "WARNING", "ERROR"} <= {line.split()[2] for line in lines}
        assert not any(line.startswith("<") for line in lines)


def test_two_runs_at_once_take_turns(lab, tmp_path) -> None:
    """A cron `run --once` beside the daemon: one listing gives one episode and one event,
    and neither process fails on a locked database."""
    config = write_config(tmp_path, lab, zones=("flip",))
    subprocess.run(command(config, "--once"), cwd=ROOT, env=child_env(), capture_output=True,
                   check=True, timeout=60)  # fmt: skip
    lab.flip.listed = {"203.0.113.9"}
    try:
        runs = [
            subprocess.Popen(
                command(config, "--once"),
                cwd=ROOT,
                env=child_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        outcomes = []
        for proc in runs:
            _, err = proc.communicate(timeout=60)
            outcomes.append((proc.returncode, err.decode()))
    finally:
        lab.flip.listed = set()
        for proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    with contextlib.closing(sqlite3.connect(tmp_path / "blmonitor.db")) as conn:
        episodes = conn.execute("SELECT target, zone FROM episodes").fetchall()
        events = conn.execute("SELECT kind FROM events").fetchall()
    assert episodes == [("203.0.113.9", "flip.lab.test")]
    assert events == [("listed",)]


def test_metrics_endpoint_while_running(lab, tmp_path) -> None:
    from tests.dnsservers import free_port

    port = free_port()
    config = write_config(tmp_path, lab, zones=("flip",))
    log = tmp_path / "daemon.log"
    lab.flip.listed = {"203.0.113.5"}
    try:
        with daemon(config, log, "--metrics", f"127.0.0.1:{port}") as proc:
            deadline = time.monotonic() + 30
            while "next run at" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                text = reply.read().decode()
                kind = reply.headers["Content-Type"]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
    finally:
        lab.flip.listed = set()
    assert kind.startswith("text/plain; version=0.0.4")
    assert 'blmonitor_listed{target="203.0.113.5",zone="flip.lab.test"} 1' in text
    assert "blmonitor_up 1" in text


def test_a_hostile_maildir_neither_hangs_nor_crashes_the_daemon(lab, tmp_path, flip) -> None:
    """A FIFO and a link to /dev/zero in the watched Maildir (issue 12): the run completes,
    its DNS results are stored, and SIGTERM ends the daemon within 2 s."""
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    os.mkfifo(box / "new" / "fifo")
    (box / "new" / "zero").symlink_to("/dev/zero")
    config = write_config(tmp_path, lab, zones=("flip",))
    config.write_text(config.read_text() + f'[bounces]\nwatch = ["{box}"]\n')
    log = tmp_path / "daemon.log"
    with daemon(config, log) as proc:
        wait_for("the first run", logged(log, "next run at"), proc, log)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert time.monotonic() - started < 2.0, log.read_text()  # the bound, not a bench
    text = log.read_text()
    assert "Traceback" not in text and "MemoryError" not in text
    assert text.count("skipped") == 2
    assert query(tmp_path / "blmonitor.db", "SELECT verdict FROM runs") == [("clean",)]
