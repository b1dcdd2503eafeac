"""digest: when one is due (a fake clock, a table), and what it says (exact text and data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blmonitor.models import Health, Severity
from blmonitor.monitor.channels import PERIODS, Digest
from blmonitor.monitor.digest import (
    NoticeMemory,
    digest_due,
    render_digest,
    start_digest,
)
from blmonitor.monitor.notify import ENDINGS
from blmonitor.monitor.state import BounceListing, MonitorState, PairState, ZoneState

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY, WEEK = PERIODS[Digest.DAILY], PERIODS[Digest.WEEKLY]


@pytest.mark.parametrize(
    ("since", "now", "period", "due"),
    [
        (None, T0, DAY, False),  # never started: the first run only starts the period
        (T0, T0, DAY, False),
        (T0, T0 + DAY - timedelta(seconds=1), DAY, False),
        (T0, T0 + DAY, DAY, True),
        (T0, T0 + DAY + timedelta(minutes=15), DAY, True),
        (T0, T0 + 6 * DAY, WEEK, False),
        (T0, T0 + WEEK, WEEK, True),
    ],
)
def test_digest_due(since: datetime | None, now: datetime, period: timedelta, due: bool) -> None:
    assert digest_due(NoticeMemory(digest_since=since), now=now, period=period) is due


def test_at_most_once_a_period_with_a_fake_clock() -> None:
    memory, sent, now = NoticeMemory(heartbeat_error="HTTP 500"), [], T0
    for _ in range(4 * 24 * 2):  # two days of runs every 15 minutes
        if memory.digest_since is None:
            memory = start_digest(memory, now=now)
        elif digest_due(memory, now=now, period=DAY):
            sent.append(now)
            memory = start_digest(memory, now=now)
        now += timedelta(minutes=15)
    assert sent == [T0 + DAY]
    assert memory.heartbeat_error == "HTTP 500"  # the heartbeat's memory is kept


def test_all_clear() -> None:
    state = MonitorState(zones={"zen": ZoneState("zen", label="zen.spamhaus.org")})
    message = render_digest(
        state, name="weekly", since=T0, now=T0 + WEEK, runs=672, blind_runs=0,
        host="mx1.example", severity=Severity.WARNING,
    )  # fmt: skip
    assert message.title == "[blmonitor] mx1.example: weekly digest: all clear"
    assert message.body == "\n".join([
        "weekly digest, 2026-11-01T12:00Z → 2026-11-08T12:00Z",
        "all clear: no listing, every zone usable.",
        "runs: 672 (0 blind: nothing checked)",
        "next step: no action.",
        "",
        "-- ",
        "blmonitor on mx1.example",
    ])  # fmt: skip
    assert message.kinds == ("digest-all-clear",) and message.kinds[0] in ENDINGS
    assert message.severity is Severity.WARNING
    assert message.payload["all_clear"] is True
    assert message.payload["digest"] == {
        "period": "weekly", "from": "2026-11-01T12:00:00+00:00", "to": "2026-11-08T12:00:00+00:00",
        "runs": 672, "blind_runs": 0, "listed": [], "zones_unusable": [],
    }  # fmt: skip


def test_still_listed_with_since_and_unusable_zones() -> None:
    listed = PairState("203.0.113.5", "zen", listed=True, since=T0 - timedelta(hours=3),
                       label="zen.spamhaus.org", severity=Severity.CRITICAL)  # fmt: skip
    clean = PairState("203.0.113.5", "bl", listed=False, since=T0, label="bl.spamcop.net")
    bounce = BounceListing("203.0.113.5", "microsoft-s3150", "outlook", since=T0, last_seen=T0)
    dead = ZoneState("old", usable=False, health=Health.DEAD, since=T0, label="old.example")
    state = MonitorState(
        pairs={("203.0.113.5", "zen"): listed, ("203.0.113.5", "bl"): clean},
        zones={"old": dead},
        bounces={("203.0.113.5", "microsoft-s3150"): bounce},
    )
    message = render_digest(
        state, name="daily", since=T0, now=T0 + DAY, runs=96, blind_runs=2, host="mx1.example",
        severity=Severity.CRITICAL, title_prefix="[mx1]",
    )  # fmt: skip
    assert message.title == "[mx1] mx1.example: daily digest: still listed on 2"
    assert message.body.splitlines()[:8] == [
        "daily digest, 2026-11-01T12:00Z → 2026-11-02T12:00Z",
        "still listed (2):",
        "  203.0.113.5 on zen.spamhaus.org since 2026-11-01T09:00Z (for 1 d 3 h)",
        "  203.0.113.5 on microsoft-s3150 (bounce) since 2026-11-01T12:00Z (for 1 d 0 h)",
        "zones unusable (1):",
        "  old.example: dead since 2026-11-01T12:00Z (for 1 d 0 h)",
        "runs: 96 (2 blind: nothing checked)",
        "next step: run `blmonitor status` for what to do, `blmonitor history` for when.",
    ]
    assert message.kinds == ("digest",) and message.severity is Severity.CRITICAL
    data = message.payload["digest"]
    assert data["listed"] == [
        {"target": "203.0.113.5", "zone": "zen.spamhaus.org", "since": "2026-11-01T09:00:00+00:00"},
        {"target": "203.0.113.5", "zone": "microsoft-s3150 (bounce)", "since": "2026-11-01T12:00:00+00:00"},
    ]  # fmt: skip
    assert data["zones_unusable"] == [
        {"zone": "old.example", "health": "dead", "since": "2026-11-01T12:00:00+00:00"}
    ]
    assert message.payload["all_clear"] is False


def test_no_listing_but_a_dead_zone_is_not_quite_all_clear() -> None:
    dead = ZoneState("old", usable=False, health=Health.DEAD, since=T0, label="old.example")
    message = render_digest(
        MonitorState(zones={"old": dead}), name="daily", since=T0, now=T0 + DAY, runs=1,
        blind_runs=0, host="h", severity=Severity.WARNING,
    )  # fmt: skip
    lines = message.body.splitlines()
    assert lines[1] == "all clear: no listing."
    assert lines[-4].startswith("next step: run `blmonitor status`")
