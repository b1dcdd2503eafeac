"""Monitor logic, pure and table-driven: runs of observations in, confirmed events out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blmonitor.models import (
    EventKind,
    Health,
    Report,
    Result,
    Severity,
    Status,
    Target,
    TargetKind,
    Verdict,
    ZoneHealth,
)
from blmonitor.monitor import state as monitor
from tests.conftest import LAB_CATALOG, lab_zone

CATALOG = LAB_CATALOG
BL = lab_zone("bl")
SEEN = lab_zone("strict")  # a second zone, always healthy and clean
IP = Target("203.0.113.5", TargetKind.IPV4)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(run: int) -> datetime:
    return T0 + timedelta(minutes=15 * run)


def report(status: Status | None, health: Health = Health.OK, codes=("127.0.0.2",)) -> Report:
    """One run: IP on BL with `status` (None: not asked), and clean on a second, healthy zone
    (so the run is never blind: it saw something)."""
    results = [Result(IP, SEEN, Status.CLEAN)]
    if status is Status.LISTED:
        results.append(Result(IP, BL, status, codes=codes, meanings=("spam source",),
                              severity=Severity.CRITICAL, delist_url="https://bl/x"))  # fmt: skip
    elif status is not None:
        results.append(Result(IP, BL, status, error="timed out" if status is Status.ERROR else ""))
    zones = (ZoneHealth(BL, health, "why"), ZoneHealth(SEEN, Health.OK))
    return Report(tuple(results), zones, Verdict.UNKNOWN)


L, C, E = Status.LISTED, Status.CLEAN, Status.ERROR


def play(statuses, *, confirm: int, silent: bool = False):
    state = monitor.MonitorState()
    timeline: list[tuple[int, EventKind, datetime | None]] = []
    for run, status in enumerate(statuses):
        state, events = monitor.evaluate(
            report(status), state, now=at(run), confirm=confirm, silent=silent and run == 0
        )
        timeline.extend((run, e.kind, e.since) for e in events)
    return state, timeline


@pytest.mark.parametrize(
    ("statuses", "confirm", "expected"),
    [
        ([C, C, C], 2, []),
        ([C, L, L], 2, [(2, EventKind.LISTED, at(1))]),
        ([L], 1, [(0, EventKind.LISTED, at(0))]),
        ([L, L], 2, [(1, EventKind.LISTED, at(0))]),
        ([C, L, C, L, C], 2, []),  # a flap inside the confirm window says nothing
        ([C, L, E, L], 2, [(3, EventKind.LISTED, at(1))]),  # an error neither confirms nor breaks
        ([L, L, C, C], 2, [(1, EventKind.LISTED, at(0)), (3, EventKind.DELISTED, at(0))]),
        ([L, C, L, C], 1, [(0, EventKind.LISTED, at(0)), (1, EventKind.DELISTED, at(0)),
                           (2, EventKind.LISTED, at(2)), (3, EventKind.DELISTED, at(2))]),
        ([L, L, L, C, L, L], 3, [(2, EventKind.LISTED, at(0))]),
    ],
)  # fmt: skip
def test_listing_hysteresis(statuses, confirm, expected) -> None:
    _, timeline = play(statuses, confirm=confirm)
    assert timeline == expected


def test_listed_event_carries_what_to_tell_people() -> None:
    state, _ = play([L], confirm=2)
    state, events = monitor.evaluate(report(L), state, now=at(1), confirm=2)
    [event] = events
    assert (event.target, event.zone, event.codes, event.severity, event.delist_url) == (
        "203.0.113.5", "bl.lab.test", ("127.0.0.2",), Severity.CRITICAL, "https://bl/x",
    )  # fmt: skip
    pair = state.pairs[("203.0.113.5", "bl.lab.test")]
    assert pair.listed and pair.since == at(0) and pair.meaning == "spam source"


def test_delisted_event_says_since_when_and_for_how_long() -> None:
    state, timeline = play([L, L, C, C], confirm=2)
    assert timeline[-1] == (3, EventKind.DELISTED, at(0))
    pair = state.pairs[("203.0.113.5", "bl.lab.test")]
    assert not pair.listed and pair.since == at(2)


def test_silent_first_run_takes_the_state_as_it_is() -> None:
    _, timeline = play([L, L, C, C], confirm=2, silent=True)
    assert timeline == [(3, EventKind.DELISTED, at(0))]
    _, timeline = play([C, L, L], confirm=2, silent=True)
    assert timeline == [(2, EventKind.LISTED, at(1))]


def play_zone(healths, confirm=2):
    state = monitor.MonitorState()
    timeline: list[tuple[int, EventKind]] = []
    for run, health in enumerate(healths):
        state, events = monitor.evaluate(report(None, health), state, now=at(run), confirm=confirm)
        timeline.extend((run, e.kind) for e in events)
    return timeline


@pytest.mark.parametrize(
    ("healths", "expected"),
    [
        ([Health.OK] * 3, []),
        ([Health.OK, Health.DEAD, Health.DEAD], [(2, EventKind.ZONE_UNUSABLE)]),
        ([Health.OK, Health.REFUSED, Health.REFUSED], [(2, EventKind.RESOLVER_REFUSED)]),
        ([Health.OK, Health.DEAD, Health.OK, Health.DEAD], []),
        ([Health.DEAD, Health.DEAD, Health.LISTS_EVERYTHING, Health.OK, Health.OK],
         [(1, EventKind.ZONE_UNUSABLE), (4, EventKind.ZONE_RECOVERED)]),
        ([Health.UNTESTED, Health.OK], []),
    ],
)  # fmt: skip
def test_zone_health_hysteresis(healths, expected) -> None:
    assert play_zone(healths) == expected


def test_failing_runs_are_reported_once_and_recovery_too() -> None:
    state = monitor.MonitorState()
    kinds: list[tuple[int, EventKind, object]] = []
    for run in range(3):
        state, events = monitor.evaluate_failure(state, "no public IP", now=at(run), confirm=2)
        kinds += [(run, e.kind, e.detail) for e in events]
    state, events = monitor.evaluate(report(C), state, now=at(3), confirm=2)
    kinds += [(3, e.kind, e.since) for e in events]
    assert kinds == [
        (1, EventKind.CHECKS_FAILING, "no public IP"), (3, EventKind.CHECKS_RECOVERED, at(0)),
    ]  # fmt: skip
    assert state.failing_runs == 0


def test_address_change_is_an_event_but_not_the_first_discovery() -> None:
    state, events = monitor.evaluate_addresses(monitor.MonitorState(), ["11.22.33.44"], now=at(0))
    assert events == [] and state.addresses == ("11.22.33.44",)
    state, events = monitor.evaluate_addresses(state, ["11.22.33.44", "2a00::1"], now=at(1))
    assert [(e.kind, e.target, e.detail) for e in events] == [
        (EventKind.ADDRESS_CHANGED, "2a00::1", "none → 2a00::1"),
    ]  # fmt: skip
    state, events = monitor.evaluate_addresses(state, ["55.66.77.88", "2a00::1"], now=at(2))
    assert [e.detail for e in events] == ["11.22.33.44 → 55.66.77.88"]


def test_endings_carry_the_severity_of_what_they_end() -> None:
    """So a recovery reaches the same people as the problem (notify's min_severity)."""
    state = monitor.MonitorState()
    seen = []
    for run, health in enumerate([Health.DEAD, Health.OK]):
        state, events = monitor.evaluate(report(None, health), state, now=at(run), confirm=1)
        seen += [(e.kind, e.severity) for e in events]
    state, events = monitor.evaluate(report(L), state, now=at(2), confirm=1)
    seen += [(e.kind, e.severity) for e in events]
    state, events = monitor.evaluate(report(C), state, now=at(3), confirm=1)
    seen += [(e.kind, e.severity) for e in events]
    assert seen == [
        (EventKind.ZONE_UNUSABLE, Severity.WARNING), (EventKind.ZONE_RECOVERED, Severity.WARNING),
        (EventKind.LISTED, Severity.CRITICAL), (EventKind.DELISTED, Severity.CRITICAL),
    ]  # fmt: skip
