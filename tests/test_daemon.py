"""The monitor end to end on loopback: config file → run → SQLite → apprise → sinks.

The lab's flip.lab.test zone lists whatever address the test says, between runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import load_config
from blmonitor.models import EventKind
from blmonitor.monitor.notify import Notifier
from blmonitor.monitor.run import RunSummary, deliver_pending, notifier_for, run_once
from blmonitor.monitor.store import Store
from tests import dnsservers, httpservers
from tests.conftest import SMTPSink


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 15) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    posted: list[tuple[str, str]] = []
    with httpservers.serve({}, posted) as base:
        yield base, posted


def write_config(tmp_path: Path, lab, webhook_base: str, *, confirm=1, zones=("flip",),
                 silent=False, extra_urls=(), min_answered=0.5) -> Path:  # fmt: skip
    urls = [f"{webhook_base.replace('http://', 'json://')}/hook", *extra_urls]
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[monitor]
targets = ["203.0.113.5"]
zones = {json.dumps(list(zones))}
lists = "{lab.catalog_path}"
interval = "15m"
confirm = {confirm}
silent_first_run = {str(silent).lower()}
min_answered = {min_answered}
database = "{tmp_path / "blmonitor.db"}"
[dns]
resolver = ["{lab.address}"]
timeout = 0.6
[notify]
urls = {json.dumps(urls)}
retry = 1
"""
    )
    return path


def run(config_path: Path, clock: Clock):
    config = load_config(config_path)
    store = Store(config.monitor.database)
    try:
        return run_once(config, store, notifier_for(config), clock=clock, host="mx.example")
    finally:
        store.close()
        clock.tick()


def test_listed_then_delisted_gives_exactly_two_messages(
    lab, tmp_path, webhook, smtp_sink: SMTPSink
) -> None:
    base, posted = webhook
    mail = (
        f"mailto://127.0.0.1:{smtp_sink.port}?from=blmonitor@example.com&to=postmaster@example.com"
    )
    config = write_config(tmp_path, lab, base, confirm=1, extra_urls=(mail,))
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    first = run(config, clock)
    assert [e.kind for e in first.events] == [EventKind.LISTED]
    assert (first.delivered, first.failed) == (1, 0)
    quiet = run(config, clock)
    assert quiet.events == () and quiet.delivered == 0
    lab.flip.listed = set()
    second = run(config, clock)
    assert [e.kind for e in second.events] == [EventKind.DELISTED]
    assert len(posted) == 2
    listed, delisted = (json.loads(body) for _, body in posted)
    assert "203.0.113.5" in listed["title"] and "flip.lab.test" in listed["title"]
    assert "https://flip.lab.test/remove?ip=203.0.113.5" in listed["message"]
    assert "delisted" in delisted["title"].lower()
    assert [m["Subject"] for m in smtp_sink.messages] == [listed["title"], delisted["title"]]
    assert smtp_sink.envelopes[0] == ("blmonitor@example.com", ["postmaster@example.com"])
    assert "https://flip.lab.test/remove?ip=203.0.113.5" in smtp_sink.messages[0].get_content()

    result = CliRunner().invoke(cli.main, ["zones", "--lists", str(lab.catalog_path), "--all",
                                           "--config", str(config), "--json"])  # fmt: skip
    health = {z["id"]: z["last_health"] for z in json.loads(result.output)}
    assert (health["flip"], health["dead"]) == ("ok", None)
    result = CliRunner().invoke(cli.main, ["history", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    [episode] = json.loads(result.output)["episodes"]
    assert (episode["first_seen"], episode["ended"], episode["seconds"]) == (
        "2026-11-01T12:00:00+00:00", "2026-11-01T12:30:00+00:00", 1800,
    )  # fmt: skip
    text = CliRunner().invoke(cli.main, ["history", "--config", str(config)]).output.splitlines()
    assert text[0] == "LISTING EPISODES (1)"
    assert text[2].split() == ["203.0.113.5", "flip.lab.test", "127.0.0.2",
                               "2026-11-01T12:00:00+00:00", "2026-11-01T12:30:00+00:00", "30",
                               "min"]  # fmt: skip


def test_a_flap_inside_the_confirm_window_sends_nothing(lab, tmp_path, webhook) -> None:
    base, posted = webhook
    config = write_config(tmp_path, lab, base, confirm=2)
    clock = Clock()
    for listed in (set(), {"203.0.113.5"}, set(), {"203.0.113.5"}, set()):
        lab.flip.listed = listed
        assert run(config, clock).events == ()
    assert posted == []


def test_dead_zone_gives_one_notice_and_no_listing(lab, tmp_path, webhook) -> None:
    base, posted = webhook
    # one working zone beside them is enough with min_answered = 1/3: the run sees, and the two
    # broken zones are told apart
    config = write_config(tmp_path, lab, base, confirm=1, zones=("flip", "dead", "world"),
                          min_answered=0.3)  # fmt: skip
    clock = Clock()
    kinds = [e.kind for _ in range(3) for e in run(config, clock).events]
    assert kinds == [EventKind.ZONE_UNUSABLE, EventKind.ZONE_UNUSABLE]
    assert len(posted) == 1
    assert "listed" not in json.loads(posted[0][1])["title"].lower().replace("unusable", "")


def test_failed_delivery_is_kept_and_retried_next_run(lab, tmp_path, webhook) -> None:
    base, posted = webhook
    dead_hook = "json://127.0.0.1:9/nothing-listens"
    config = write_config(tmp_path, lab, base, confirm=1, extra_urls=(dead_hook,))
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    first = run(config, clock)
    assert (first.delivered, first.failed) == (0, 1)
    again = run(config, clock)
    assert again.failed == 1  # still pending: never dropped silently
    store = Store(load_config(config).monitor.database)
    try:
        [pending] = store.pending_notifications()
    finally:
        store.close()
    assert pending.status == "failed" and pending.attempts == 2
    assert pending.owed == ("json://127.0.0.1:9/nothing-listens",)
    assert len(posted) == 1  # the working target got it once, not again with the retry
    lab.flip.listed = set()


def test_status_command_text_and_json(lab, tmp_path, webhook) -> None:
    base, _ = webhook
    config = write_config(tmp_path, lab, base, confirm=1)
    result = CliRunner().invoke(cli.main, ["status", "--config", str(config)])
    assert result.exit_code == cli.EXIT_UNKNOWN
    assert "no check has run yet" in result.output
    lab.flip.listed = {"203.0.113.5"}
    run(config, Clock())
    lab.flip.listed = set()
    result = CliRunner().invoke(cli.main, ["status", "--config", str(config)])
    assert result.exit_code == cli.EXIT_LISTED
    lines = result.output.splitlines()
    assert lines[0] == "LISTED (1)"
    assert lines[2].split()[:4] == ["203.0.113.5", "flip.lab.test", "127.0.0.2", "critical"]
    assert "      delist: https://flip.lab.test/remove?ip=203.0.113.5" in lines
    data = json.loads(CliRunner().invoke(cli.main, ["status", "--config", str(config),
                                                     "--json"]).output)  # fmt: skip
    assert [(e["target"], e["zone"], e["since"]) for e in data["listed"]] == [
        ("203.0.113.5", "flip.lab.test", "2026-11-01T12:00:00+00:00"),
    ]  # fmt: skip
    assert data["next_run"] == "2026-11-01T12:15:00+00:00"


def test_silent_first_run(lab, tmp_path, webhook) -> None:
    base, posted = webhook
    config = write_config(tmp_path, lab, base, confirm=1, silent=True)
    lab.flip.listed = {"203.0.113.5"}
    clock = Clock()
    assert run(config, clock).events == ()
    lab.flip.listed = set()
    assert [e.kind for e in run(config, clock).events] == [EventKind.DELISTED]
    assert len(posted) == 1


def test_notify_test_command(lab, tmp_path, webhook) -> None:
    base, posted = webhook
    config = write_config(tmp_path, lab, base)
    result = CliRunner().invoke(cli.main, ["notify", "--test", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "sent to 1 target(s)" in result.output
    assert "test notification" in json.loads(posted[0][1])["title"]


def test_undeliverable_message_expires_after_a_week(lab, tmp_path) -> None:
    config = write_config(tmp_path, lab, "http://127.0.0.1:9", confirm=1)  # nothing listens
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    assert run(config, clock).failed == 1
    clock.tick(7 * 24 * 60 + 1)
    lab.flip.listed = set()
    later = run(config, clock)
    assert [e.kind for e in later.events] == [EventKind.DELISTED]
    store = Store(load_config(config).monitor.database)
    try:
        statuses = [n for (n,) in store.db.execute("SELECT status FROM notifications ORDER BY id")]
        [(error,)] = store.db.execute(
            "SELECT last_error FROM notifications WHERE status = 'expired'"
        ).fetchall()
    finally:
        store.close()
    assert statuses == ["expired", "failed"]
    assert error.startswith("given up after 7 days")


def outlook_s3150_bounce(message_id: str) -> bytes:
    """An RFC 3464 DSN as Postfix returns it after an Outlook.com S3150 rejection."""
    return (
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        "To: sender@example.net\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Sun, 01 Nov 2026 12:20:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "Arrival-Date: Sun, 01 Nov 2026 12:19:58 +0000\r\n\r\n"
        "Final-Recipient: rfc822; friend@outlook.com\r\n"
        "Original-Recipient: rfc822;friend@outlook.com\r\n"
        "Action: failed\r\n"
        "Status: 5.7.1\r\n"
        "Remote-MTA: dns; outlook-com.olc.protection.outlook.com\r\n"
        "Diagnostic-Code: smtp; 550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't\r\n"
        "    sent. Please contact your Internet service provider since part of their\r\n"
        "    network is on our block list (S3150). You can also refer your provider to\r\n"
        "    http://mail.live.com/mail/troubleshooting.aspx#errors.\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}>\r\nFrom: sender@example.net\r\nTo: friend@outlook.com\r\n"
        "\r\n--B--\r\n"
    ).encode()


def test_a_watched_maildir_bounce_is_one_listing(lab, tmp_path, webhook) -> None:
    base, posted = webhook
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    config = write_config(tmp_path, lab, base, confirm=1)
    with config.open("a") as extra:
        extra.write(f'[bounces]\nwatch = ["{maildir}"]\nexpire = "7d"\n')
    clock = Clock()
    assert run(config, clock).events == ()
    (maildir / "new" / "1.eml").write_bytes(outlook_s3150_bounce("a1@example.net"))
    first = run(config, clock)
    assert [(e.kind, e.target, e.zone) for e in first.events] == [
        (EventKind.LISTED, "203.0.113.5", "microsoft-s3150 (bounce)"),
    ]  # fmt: skip
    assert "evidence: bounce from outlook-com.olc.protection.outlook.com" in first.events[0].detail
    # the same bounce again (a copy, and a second message for the same listing): no new event
    (maildir / "cur" / "1-copy.eml").write_bytes(outlook_s3150_bounce("a1@example.net"))
    (maildir / "new" / "2.eml").write_bytes(outlook_s3150_bounce("a2@example.net"))
    assert run(config, clock).events == ()
    assert len(posted) == 1
    message = json.loads(posted[0][1])
    assert "203.0.113.5" in message["title"] and "microsoft-s3150 (bounce)" in message["title"]
    assert "evidence: bounce" in message["message"]
    store = Store(load_config(config).monitor.database)
    try:
        rows = store.db.execute("SELECT list, listed_ip FROM bounces").fetchall()
        links = store.db.execute(
            "SELECT DISTINCT b.episode, e.zone FROM bounces b JOIN episodes e ON e.id = b.episode"
        ).fetchall()
    finally:
        store.close()
    assert rows == [("microsoft-s3150", "203.0.113.5")] * 2  # two distinct bounces, once each
    assert [zone for _, zone in links] == ["microsoft-s3150 (bounce)"]  # both support one episode
    status = CliRunner().invoke(cli.main, ["status", "--config", str(config), "--json"])
    assert status.exit_code == cli.EXIT_LISTED
    [shown] = json.loads(status.output)["bounce_listings"]
    assert (shown["target"], shown["list"], shown["bounces"]) == (
        "203.0.113.5",
        "microsoft-s3150",
        2,
    )
    text = CliRunner().invoke(cli.main, ["status", "--config", str(config)]).output
    assert "LISTED, FROM RETURNED MAIL (1)" in text
    clock.tick(8 * 24 * 60)  # a week and a day without a new bounce from that list
    ended = run(config, clock)
    assert [(e.kind, e.zone) for e in ended.events] == [
        (EventKind.DELISTED, "microsoft-s3150 (bounce)"),
    ]  # fmt: skip
    result = CliRunner().invoke(cli.main, ["history", "--config", str(config), "--json"])
    [episode] = json.loads(result.output)["episodes"]
    assert (episode["zone"], episode["target"]) == ("microsoft-s3150 (bounce)", "203.0.113.5")
    assert episode["ended"] is not None


def test_a_watched_log_is_read_from_where_it_stopped(lab, tmp_path, webhook) -> None:
    base, _ = webhook
    logfile = tmp_path / "mail.log"
    line = (
        "Nov  1 12:00:0{n} mx postfix/smtp[4242]: 4F{n}A: to=<friend{n}@example.com>, "
        "relay=mx.example.com[198.51.100.25]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.7.1, "
        "status=bounced (host mx.example.com[198.51.100.25] said: 554 5.7.1 Service "
        "unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org; "
        "https://www.spamhaus.org/query/ip/203.0.113.5 (in reply to RCPT TO command))\n"
    )
    logfile.write_text(line.format(n=1))
    config = write_config(tmp_path, lab, base, confirm=1)
    with config.open("a") as extra:
        extra.write(f'[bounces]\nwatch = ["{logfile}"]\n')
    clock = Clock()
    first = run(config, clock)
    assert [(e.kind, e.target, e.zone) for e in first.events] == [
        (EventKind.LISTED, "203.0.113.5", "zen.spamhaus.org (bounce)"),
    ]  # fmt: skip
    with logfile.open("a") as more:
        more.write(line.format(n=2))
    assert run(config, clock).events == ()
    store = Store(load_config(config).monitor.database)
    try:
        count = store.db.execute("SELECT count(*) FROM bounces").fetchone()[0]
    finally:
        store.close()
    assert count == 2


# --- what a notification says, and what a failed one keeps ------------------------------------


def test_the_end_of_the_last_listing_is_good_news_all_clean(lab, tmp_path, webhook) -> None:
    base, posted = webhook
    config = write_config(tmp_path, lab, base, confirm=1)
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    run(config, clock)
    lab.flip.listed = set()
    run(config, clock)
    listed, delisted = (json.loads(body) for _, body in posted)
    assert listed["type"] != "success" and listed["blmonitor"]["all_clear"] is False
    assert delisted["type"] == "success"
    assert delisted["title"] == (
        "[blmonitor] mx.example: all clean again: no listing left "
        "(203.0.113.5 delisted from flip.lab.test)"
    )
    data = delisted["blmonitor"]
    assert (data["server"], data["all_clear"]) == ("mx.example", True)
    assert [(e["event"], e["target"], e["zone"], e["since"], e["ended"]) for e in data["events"]] == [
        ("delisted", "203.0.113.5", "flip.lab.test", "2026-11-01T12:00:00+00:00",
         "2026-11-01T12:15:00+00:00"),
    ]  # fmt: skip


def test_a_failed_delivery_keeps_its_reason_and_its_data_for_the_retry(
    lab, tmp_path, caplog
) -> None:
    routes = {"/hook": (503, "down for maintenance")}
    posted: list[tuple[str, str]] = []
    with httpservers.serve(routes, posted) as base:
        config = write_config(tmp_path, lab, base, confirm=1)
        clock = Clock()
        lab.flip.listed = {"203.0.113.5"}
        with caplog.at_level(logging.ERROR, logger="blmonitor"):
            assert run(config, clock).failed == 1
        target = f"{base.replace('http://', 'json://')}/hook"
        reason = f"{target}: failed: Failed to send JSON POST notification: Servers are overloaded, error=503"
        store = Store(load_config(config).monitor.database)
        try:
            [pending] = store.pending_notifications()
        finally:
            store.close()
        assert pending.last_error == reason
        assert f"notification 1 not delivered: {reason}" in caplog.messages
        routes["/hook"] = (200, "ok")
        assert run(config, clock).delivered == 1
        lab.flip.listed = set()
    first, retried = (json.loads(body) for _, body in posted)
    assert retried == first  # the same message, its data kept in the store for the retry
    [event] = retried["blmonitor"]["events"]
    assert (event["event"], event["target"], event["codes"]) == (
        "listed",
        "203.0.113.5",
        ["127.0.0.2"],
    )
    assert event["delist_url"] == "https://flip.lab.test/remove?ip=203.0.113.5"


def test_notify_test_says_why_it_failed(lab, tmp_path) -> None:
    config = write_config(tmp_path, lab, "http://127.0.0.1:9")  # nothing listens
    result = CliRunner().invoke(cli.main, ["notify", "--test", "--config", str(config)])
    assert result.exit_code == cli.EXIT_UNKNOWN
    assert (
        "test notification failed after 1 attempt(s): json://127.0.0.1:9/hook: failed: "
        "A Connection error occurred sending JSON notification to 127.0.0.1"
    ) in result.output


# --- the heartbeat and the digest --------------------------------------------------------------


def with_notify(config: Path, **keys: str) -> Path:
    """Adds keys to [notify], the config's last table."""
    with config.open("a") as extra:
        extra.writelines(f'{key} = "{value}"\n' for key, value in keys.items())
    return config


def blind_resolver(config: Path, lab) -> None:
    text = config.read_text()
    config.write_text(text.replace(lab.address, f"127.0.0.1:{dnsservers.free_port()}"))


def test_heartbeat_after_each_run_that_saw_and_fail_after_a_blind_one(lab, tmp_path) -> None:
    got: list[str] = []
    routes = {"/ping/0f6c7e1a": (200, "OK"), "/ping/0f6c7e1a/fail": (200, "OK")}
    with httpservers.serve(routes, [], got) as base:
        config = with_notify(
            write_config(tmp_path, lab, base), heartbeat_url=f"{base}/ping/0f6c7e1a"
        )
        clock = Clock()
        assert run(config, clock).error == ""
        assert run(config, clock).error == ""
        assert got == ["/ping/0f6c7e1a"] * 2
        blind_resolver(config, lab)
        assert run(config, clock).error != ""
    assert got == ["/ping/0f6c7e1a"] * 2 + ["/ping/0f6c7e1a/fail"]


def test_a_blind_run_pings_no_plain_url(lab, tmp_path) -> None:
    got: list[str] = []
    with httpservers.serve({"/alive": (200, "OK")}, [], got) as base:
        config = with_notify(write_config(tmp_path, lab, base), heartbeat_url=f"{base}/alive")
        blind_resolver(config, lab)
        assert run(config, Clock()).error != ""
    assert got == []


def test_a_failed_ping_is_logged_once_and_never_fails_the_run(lab, tmp_path, caplog) -> None:
    got: list[str] = []
    routes = {"/ping/x": (500, "oops")}
    with httpservers.serve(routes, [], got) as base:
        config = with_notify(write_config(tmp_path, lab, base), heartbeat_url=f"{base}/ping/x")
        clock = Clock()
        with caplog.at_level(logging.INFO, logger="blmonitor"):
            summaries = [run(config, clock) for _ in range(3)]
            routes["/ping/x"] = (200, "OK")
            summaries.append(run(config, clock))
    assert [s.error for s in summaries] == [""] * 4
    assert len(got) == 4
    told = [m for m in caplog.messages if m.startswith("heartbeat")]
    assert told == [
        "heartbeat ping failed: HTTP 500 Internal Server Error (told once until it changes)",
        "heartbeat ping works again",
    ]


def test_a_daily_digest_after_a_whole_day_and_not_again_the_same_day(
    lab, tmp_path, webhook
) -> None:
    base, posted = webhook
    config = with_notify(write_config(tmp_path, lab, base), digest="daily")
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    run(config, clock)  # the listing's own message; the digest's first day begins
    for _ in range(3):
        run(config, clock)
    seeing = config.read_text()
    blind_resolver(config, lab)
    run(config, clock)  # a blind run: counted, and never sends the digest
    config.write_text(seeing)
    clock.tick(24 * 60)
    assert run(config, clock).error == ""
    run(config, clock)  # the same day: no second digest
    lab.flip.listed = set()
    titles = [json.loads(body)["title"] for _, body in posted]
    assert titles == [
        "[blmonitor] mx.example: 203.0.113.5 LISTED on flip.lab.test",
        "[blmonitor] mx.example: UNKNOWN: nothing checked since 2026-11-01T13:00Z",
        "[blmonitor] mx.example: checking again",
        "[blmonitor] mx.example: daily digest: still listed on 1",
    ]
    digest = json.loads(posted[3][1])
    assert (
        "  203.0.113.5 on flip.lab.test since 2026-11-01T12:00Z (for 1 d 1 h)" in digest["message"]
    )
    assert "runs: 5 (1 blind: nothing checked)" in digest["message"]
    assert digest["blmonitor"]["digest"]["runs"] == 5


def test_a_notification_queued_before_the_payload_column_is_sent_as_before(
    tmp_path, webhook
) -> None:
    import sqlite_utils

    from blmonitor.monitor.rows import MIGRATIONS

    base, posted = webhook
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    for migration in MIGRATIONS[:4]:  # the schema before notifications kept their data
        migration(old)
    old.execute("PRAGMA user_version = 4")
    old.table("notifications").insert(
        {"created": "2026-11-01T12:00:00+00:00", "title": "old", "body": "queued by 0.x",
         "severity": 3, "kinds": '["listed"]', "status": "failed", "attempts": 1,
         "last_error": "x", "owed": "[]"}
    )  # fmt: skip
    old.close()
    store = Store(path)
    try:
        [pending] = store.pending_notifications()
        assert pending.payload == {}
        notifier = Notifier(urls=[f"{base.replace('http://', 'json://')}/hook"])
        assert deliver_pending(store, notifier, Clock()) == (1, 0)
    finally:
        store.close()
    [(_, body)] = posted
    assert "blmonitor" not in json.loads(body)  # no data: apprise's own keys only


def test_a_full_disk_loses_the_run_not_the_daemon(lab, tmp_path, webhook) -> None:
    """The history on a 1 MB tmpfs that fills up: the run is told lost once, the monitor goes
    on, and the first run that can write again finds the change (issue 12)."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("no tmpfs mount here")
    try:
        base, posted = webhook
        config = write_config(tmp_path, lab, base, confirm=1)
        text = config.read_text().replace(str(tmp_path / "blmonitor.db"), str(disk / "h.db"))
        config.write_text(text)
        clock = Clock()
        loaded = load_config(config)
        store = Store(loaded.monitor.database)  # open all along, as the daemon keeps it

        def run_daemon() -> RunSummary:
            clock.tick()
            return run_once(loaded, store, notifier_for(loaded), clock=clock, host="mx.example")

        assert run_daemon().error == ""
        filler = disk / "filler"
        with filler.open("wb") as handle, contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        lab.flip.listed = {"203.0.113.5"}
        lost = [run_daemon() for _ in range(2)]
        assert all("history not written" in s.error for s in lost)
        told = [json.loads(body)["title"] for _, body in posted]
        assert sum("history cannot be written" in t for t in told) == 1
        filler.unlink()
        again = run_daemon()
        assert [e.kind for e in again.events] == [EventKind.LISTED]
        store.close()
    finally:
        lab.flip.listed = set()
        subprocess.run(["umount", "-l", str(disk)], check=False)
