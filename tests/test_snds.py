"""Microsoft SNDS: the CSV parser and judge (pure), the poll against our HTTP server on
127.0.0.1 (blocked, not blocked, malformed, empty, HTTP 500, slow, a sign-in page), the key
file's rules, the monitor's evaluation, and the smart host's routing of an SNDS block."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from blmonitor.bounces.models import ListKind
from blmonitor.config import Config, Defaults, SndsConfig, parse_config
from blmonitor.errors import ConfigError
from blmonitor.models import Severity
from blmonitor.monitor.digest import render_digest
from blmonitor.monitor.page import listings_in_force
from blmonitor.monitor.state import MonitorState, evaluate_sources, forget_sources
from blmonitor.monitor.status import Status, render_status
from blmonitor.smarthost import policy
from blmonitor.sources.models import Rating, ReputationRecord, SourceListing, SourceResult
from blmonitor.sources.service import Source, poll_due
from blmonitor.sources.snds import poll_snds
from blmonitor.sources.sndsformat import (
    DELIST_URL,
    SndsFormatError,
    judge_snds,
    parse_data,
    parse_ip_status,
)
from tests import httpservers

DATA = Path(__file__).parent / "data" / "snds"
KEY = "0a1b2c3d-4e5f-4789-abcd-ef0123456789"  # a made-up Automated Data Access key
NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
DEFAULTS = Defaults(database=Path("/var/lib/blmonitor/blmonitor.db"))


def read(name: str) -> str:
    return (DATA / name).read_text("utf-8")


# --- the CSV [core] -------------------------------------------------------------------------


def test_ip_status_rows_say_which_range_is_blocked_and_why() -> None:
    blocked, known = parse_ip_status(read("ipstatus-blocked.csv"))
    assert (str(blocked.first), str(blocked.last), blocked.blocked) == (
        "203.0.113.0", "203.0.113.255", True,
    )  # fmt: skip
    assert blocked.reason == "Junked due to user complaints or other evidence of spamming"
    assert (str(known.first), known.blocked, known.reason) == ("198.51.100.7", False, "")


def test_an_empty_ip_status_is_nothing_blocked_not_an_error() -> None:
    assert parse_ip_status(read("ipstatus-empty.csv")) == []
    assert parse_ip_status("\r\n") == []
    assert parse_data("") == []


@pytest.mark.parametrize(
    ("parse", "text", "why"),
    [
        (parse_ip_status, read("ipstatus-malformed.csv"), "ipStatus line 1: 1 field(s), expected 4"),
        (parse_ip_status, read("signin.html"), "ipStatus answered with an HTML page"),
        (parse_ip_status, "203.0.113.9,203.0.113.1,Yes,x\r\n", "FIRST ≤ LAST"),
        (parse_ip_status, "203.0.113.0,203.0.113.9,Maybe,x\r\n", "Yes|No"),
        (parse_ip_status, "2001:db8::,2001:db8::ff,Yes,x\r\n", "is not an IPv4 address"),
        (parse_data, read("data-malformed.csv"), "is not a time such as '9/29/2020 9:00 PM'"),
        (parse_data, read("data-red.csv").replace("RED", "PURPLE"), "filter result 'PURPLE'"),
        (parse_data, "203.0.113.5,12/4/2026 1:00 AM,12/5/2026 1:00 AM\r\n", "3 field(s)"),
        (parse_data, read("data-red.csv").replace(",3,", ",three,"), "trap_hits 'three'"),
        (parse_data, read("signin.html"), "data answered with an HTML page"),
    ],
)  # fmt: skip
def test_a_body_that_is_not_snds_csv_is_an_error(parse, text: str, why: str) -> None:
    with pytest.raises(SndsFormatError, match=None) as caught:
        parse(text)
    assert why in str(caught.value)


def test_data_rows_rate_each_ip_and_day() -> None:
    red, yellow = parse_data(read("data-red.csv"))
    assert (str(red.ip), red.end.date(), red.filter_result, red.trap_hits) == (
        "203.0.113.5", date(2026, 12, 5), "RED", 3,
    )  # fmt: skip
    assert red.rating is Rating.BAD and yellow.rating is Rating.POOR
    assert dict(red.fields)["complaint_rate"] == "0.3%"
    assert dict(yellow.fields)["complaint_rate"] == "< 0.1%"
    assert "trap_period_start" not in dict(yellow.fields)  # empty fields are left out
    [green] = parse_data(read("data-green.csv"))
    assert green.rating is Rating.GOOD


def test_trap_hits_make_a_green_day_bad_and_a_comma_in_a_comment_is_kept() -> None:
    [row] = parse_data(read("data-traps.csv"))
    assert row.filter_result == "GREEN" and row.rating is Rating.BAD
    assert row.note == "2 spam trap hit(s), filter result GREEN"
    assert dict(row.fields)["comments"] == "sent from a host, see ticket 12"


def test_judge_lists_covered_targets_rates_our_ips_and_names_the_unknown() -> None:
    targets = ["203.0.113.5", "198.51.100.7", "192.0.2.1", "203.0.113.0/28", "mail.example",
               "2001:db8::25", "203.0.113.5"]  # fmt: skip
    result = judge_snds(
        parse_ip_status(read("ipstatus-blocked.csv")), parse_data(read("data-red.csv")),
        targets, fetched=NOW,
    )  # fmt: skip
    assert result.ok and result.source == "snds" and result.fetched == NOW
    assert result.checked == ("203.0.113.5", "198.51.100.7", "192.0.2.1", "203.0.113.0/28")
    assert [item.target for item in result.listings] == ["203.0.113.5", "203.0.113.0/28"]
    listing = result.listings[0]
    assert listing == SourceListing(
        target="203.0.113.5", list="microsoft-snds", provider="Microsoft",
        reason="Junked due to user complaints or other evidence of spamming",
        delist_url=DELIST_URL, detail="blocked range 203.0.113.0-203.0.113.255",
        kind=ListKind.PROVIDER_PRIVATE, receiver="Outlook.com",
    )  # fmt: skip
    assert listing.who == "Outlook.com"
    # 203.0.113.5 is inside the /28 too: one record per IP and day
    assert [(r.subject, r.day, r.rating, r.raw) for r in result.reputation] == [
        ("203.0.113.5", date(2026, 12, 5), Rating.BAD, "RED"),
        ("203.0.113.9", date(2026, 12, 5), Rating.POOR, "YELLOW"),
    ]
    # 198.51.100.7 is known (a range row, not blocked): only 192.0.2.1 is unknown
    assert result.unknown == ("192.0.2.1",)
    assert "register it at https://sendersupport.olc.protection.outlook.com/snds/" in (
        result.unknown_hint
    )


# --- the key file and the config ----------------------------------------------------------


def snds_config(tmp_path: Path, base: str, *, mode: int = 0o600, timeout: float = 2.0) -> Config:
    key_file = tmp_path / "snds.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(mode)
    text = f"""
[monitor]
targets = ["203.0.113.5"]
database = "{tmp_path / "blmonitor.db"}"
[snds]
key_file = "{key_file}"
base_url = "{base}/snds"
timeout = {timeout}
"""
    return parse_config(text, source="test.toml", defaults=DEFAULTS)


def test_snds_config_defaults_and_checks() -> None:
    assert parse_config("", source="t", defaults=DEFAULTS).snds == SndsConfig()
    assert not SndsConfig().enabled
    assert SndsConfig().base_url == "https://sendersupport.olc.protection.outlook.com/snds/"
    assert SndsConfig().interval == 6 * 3600
    snds = parse_config('[snds]\nkey_file = "/etc/k"\ninterval = "1d"\nbase_url = '
                        '"http://127.0.0.1:8/snds"', source="t", defaults=DEFAULTS).snds  # fmt: skip
    assert (snds.enabled, snds.interval, snds.base_url) == (True, 86400, "http://127.0.0.1:8/snds/")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('interval = "30m"', "t: [snds] interval: '30m' is less than the minimum of 1h"),
        ("timeout = 0", "t: [snds] timeout: expected seconds above 0 and at most 60, got 0"),
        ('base_url = "ftp://x/"', "t: [snds] base_url: 'ftp://x/' is not an http(s) URL"),
        ('key_file = "snds.key"', "t: [snds] key_file: 'snds.key' is not an absolute path"),
        (f'key = "{KEY}"', "t: [snds] key: is not read here: put it in a file (chmod 600)"),
    ],
)
def test_snds_config_mistakes_are_one_line(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[snds]\n{text}\n", source="t", defaults=DEFAULTS)
    assert str(caught.value).startswith(why)
    assert KEY not in str(caught.value)


# --- one poll against our HTTP server on 127.0.0.1 ---------------------------------------

STATUS = f"/snds/ipStatus.aspx?key={KEY}"
DAILY = f"/snds/data.aspx?key={KEY}"


@pytest.fixture
def snds_server() -> Iterator[tuple[str, dict[str, tuple[int, str]], list[str]]]:
    routes: dict[str, tuple[int, str]] = {}
    got: list[str] = []
    with httpservers.serve(routes, got=got) as base:
        yield base, routes, got


@pytest.mark.parametrize(
    ("status", "daily", "error", "listed", "unknown"),
    [
        ((200, read("ipstatus-blocked.csv")), (200, read("data-red.csv")), "", 1, 0),
        ((200, read("ipstatus-not-blocked.csv")), (200, read("data-green.csv")), "", 0, 0),
        ((200, ""), (200, ""), "", 0, 1),  # nothing blocked, no traffic: unknown, not an error
        ((200, read("ipstatus-malformed.csv")), (200, ""),
         "SNDS: ipStatus line 1: 1 field(s), expected 4", 0, 0),
        ((200, read("ipstatus-blocked.csv")), (200, read("data-malformed.csv")),
         "SNDS: data line 1: 'yesterday' is not a time", 0, 0),
        ((500, ""), (200, ""), "SNDS: ipStatus.aspx answered HTTP 500 Internal Server Error", 0, 0),
        ((200, read("ipstatus-empty.csv")), (503, ""),
         "SNDS: data.aspx answered HTTP 503 Service Unavailable", 0, 0),
        ((200, read("signin.html")), (200, ""), "SNDS: ipStatus answered with an HTML page", 0, 0),
        ((302, ""), (200, ""), "SNDS: ipStatus.aspx redirected (HTTP 302", 0, 0),
    ],
)  # fmt: skip
def test_poll(snds_server, tmp_path: Path, status, daily, error, listed, unknown) -> None:
    base, routes, got = snds_server
    routes.update({STATUS: status, DAILY: daily})
    result = poll_snds(snds_config(tmp_path, base), ["203.0.113.5"], now=NOW)
    assert result.error.startswith(error) if error else result.ok, result.error
    assert len(result.listings) == listed and len(result.unknown) == unknown
    if error:
        assert not result.listings and not result.reputation and not result.unknown
    assert KEY not in result.error
    assert got[0] == STATUS  # the key goes only where SNDS wants it


def test_a_slow_answer_is_an_error_after_the_timeout(tmp_path: Path) -> None:
    routes = {STATUS: (200, ""), DAILY: (200, "")}
    with httpservers.serve(routes, slow={STATUS: 1.0}) as base:
        result = poll_snds(snds_config(tmp_path, base, timeout=0.2), ["203.0.113.5"], now=NOW)
    assert result.error == "SNDS: ipStatus.aspx did not answer within the timeout"


def test_nothing_listening_is_an_error_without_the_key(tmp_path: Path) -> None:
    with httpservers.serve({}) as base:
        pass  # the port is free again: the connection is refused
    result = poll_snds(snds_config(tmp_path, base), ["203.0.113.5"], now=NOW)
    assert result.error.startswith("SNDS: ipStatus.aspx could not be fetched: ")
    assert KEY not in result.error


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_file_others_may_read_is_refused_before_any_request(
    snds_server, tmp_path: Path, mode: int
) -> None:
    base, _, got = snds_server
    result = poll_snds(snds_config(tmp_path, base, mode=mode), ["203.0.113.5"], now=NOW)
    key_file = tmp_path / "snds.key"
    assert result.error == (
        f"SNDS: [snds] key_file {key_file} is open to group or others (mode {mode:04o}): "
        f"run chmod 600 {key_file}"
    )
    assert got == []


def test_a_missing_or_empty_key_file_is_an_error(tmp_path: Path) -> None:
    config = snds_config(tmp_path, "http://127.0.0.1:9")
    key_file = tmp_path / "snds.key"
    key_file.write_text("\n")
    assert (
        "does not hold a key on its first line" in poll_snds(config, ["203.0.113.5"], now=NOW).error
    )
    key_file.unlink()
    assert poll_snds(config, ["203.0.113.5"], now=NOW).error == (
        f"SNDS: [snds] key_file {key_file} does not exist"
    )


# --- the monitor's evaluation [core] -------------------------------------------------------

BLOCK = SourceListing("203.0.113.5", "microsoft-snds", "Microsoft", "Junked", DELIST_URL,
                      "blocked range 203.0.113.0-203.0.113.255", receiver="Outlook.com")  # fmt: skip


def rated(rating: Rating, day: int, raw: str) -> ReputationRecord:
    return ReputationRecord("snds", "203.0.113.5", date(2026, 12, day), rating, raw,
                            (("complaint_rate", "0.3%"), ("trap_hits", "3")), "judged spam")  # fmt: skip


def polled(at: datetime, *, listings=(), reputation=(), unknown=(), error="") -> SourceResult:
    return SourceResult("snds", at, tuple(listings), tuple(reputation), tuple(unknown), error,
                        checked=("203.0.113.5", "192.0.2.1"), unknown_hint="register it")  # fmt: skip


def play(*polls: SourceResult) -> tuple[MonitorState, list[list[tuple[str, str, str]]]]:
    state, told = MonitorState(), []
    for result in polls:
        state, events = evaluate_sources(state, [result], now=result.fetched,
                                         labels={"snds": "SNDS"})  # fmt: skip
        told.append([(str(e.kind), e.target, e.zone) for e in events])
    return state, told


def test_a_block_is_told_once_kept_through_a_failed_poll_and_its_end_told_once() -> None:
    t = [NOW + timedelta(hours=6 * n) for n in range(6)]
    state, told = play(
        polled(t[0], listings=[BLOCK]),
        polled(t[1], listings=[BLOCK]),
        polled(t[2], error="SNDS: ipStatus.aspx answered HTTP 500"),
        polled(t[3], error="SNDS: ipStatus.aspx answered HTTP 500"),
        polled(t[4], listings=[BLOCK]),
        polled(t[5]),
    )
    assert told == [
        [("listed", "203.0.113.5", "microsoft-snds (SNDS)")],
        [],
        [("source-unusable", "", "SNDS")],
        [],
        [("source-recovered", "", "SNDS")],
        [("delisted", "203.0.113.5", "microsoft-snds (SNDS)")],
    ]
    assert state.sources == {} and not state.listed
    assert state.source_health["snds"].polled == t[5] and state.source_health["snds"].usable


def test_the_listed_event_says_who_blocks_why_and_where_to_ask() -> None:
    state, events = evaluate_sources(MonitorState(), [polled(NOW, listings=[BLOCK])], now=NOW,
                                     labels={"snds": "SNDS"})  # fmt: skip
    [event] = events
    assert (event.severity, event.meaning, event.delist_url, event.since) == (
        Severity.CRITICAL, "Junked", DELIST_URL, NOW,
    )  # fmt: skip
    assert event.detail == (
        "Outlook.com blocks mail from it (SNDS: blocked range 203.0.113.0-203.0.113.255)"
    )
    assert state.listed and state.sources[("203.0.113.5", "microsoft-snds")].since == NOW


def test_a_failed_first_poll_knows_nothing_and_says_so_once() -> None:
    state, told = play(
        polled(NOW, error="SNDS: x"), polled(NOW + timedelta(hours=6), error="SNDS: y")
    )
    assert told == [[("source-unusable", "", "SNDS")], []]
    assert state.source_health["snds"].error == "SNDS: y"  # the latest reason is kept
    assert state.source_health["snds"].since == NOW and state.source_health["snds"].ok_at is None


def test_an_unknown_address_is_told_once_and_again_only_after_it_was_known() -> None:
    t = [NOW + timedelta(hours=6 * n) for n in range(4)]
    _, told = play(
        polled(t[0], unknown=["192.0.2.1"]),
        polled(t[1], unknown=["192.0.2.1"]),
        polled(t[2]),
        polled(t[3], unknown=["192.0.2.1"]),
    )
    unknown = ("source-unknown", "192.0.2.1", "SNDS")
    assert told == [[unknown], [], [], [unknown]]


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        # RED told once: the same day read again, and RED the next day, say nothing new
        ([(Rating.BAD, 5, "RED"), (Rating.BAD, 5, "RED"), (Rating.BAD, 6, "RED")],
         [[("reputation", "critical", "RED on 2026-12-05")], [], []]),
        # YELLOW is a warning, then RED is worse and told, then GREEN is good news once
        ([(Rating.POOR, 4, "YELLOW"), (Rating.BAD, 5, "RED"), (Rating.GOOD, 6, "GREEN"),
          (Rating.GOOD, 7, "GREEN")],
         [[("reputation", "warning", "YELLOW on 2026-12-04")],
          [("reputation", "critical", "RED on 2026-12-05")],
          [("reputation-recovered", "critical", "GREEN again on 2026-12-06")], []]),
        # good days say nothing; an older day read late changes nothing
        ([(Rating.GOOD, 5, "GREEN"), (Rating.BAD, 4, "RED")], [[], []]),
    ],
)  # fmt: skip
def test_reputation_is_told_when_it_turns(days, expected) -> None:
    state, told = MonitorState(), []
    for n, (rating, day, raw) in enumerate(days):
        result = polled(NOW + timedelta(hours=6 * n), reputation=[rated(rating, day, raw)])
        state, events = evaluate_sources(state, [result], now=result.fetched,
                                         labels={"snds": "SNDS"})  # fmt: skip
        told.append([(str(e.kind), e.severity.label, e.detail) for e in events])
        for event in events:
            assert event.meaning == "judged spam; complaint rate 0.3%, trap hits 3"
    assert told == expected


def test_a_target_no_longer_checked_leaves_without_a_delisting() -> None:
    state, _ = play(polled(NOW, listings=[BLOCK]))
    moved = SourceResult("snds", NOW + timedelta(hours=6), checked=("192.0.2.1",))
    state, events = evaluate_sources(state, [moved], now=moved.fetched)
    assert events == [] and state.sources == {}


def test_a_source_no_longer_enabled_is_forgotten() -> None:
    state, _ = play(polled(NOW, listings=[BLOCK]))
    assert forget_sources(state, ["snds"]) is state
    gone = forget_sources(state, [])
    assert gone.sources == {} and gone.source_health == {}


# --- the smart host acts on an SNDS block as on a provider's list from bounces -------------


def test_an_snds_block_routes_only_microsofts_domains() -> None:
    state, _ = play(polled(NOW, listings=[BLOCK]))
    current = policy.blocking(state, min_severity=Severity.CRITICAL)
    assert [(b.target, b.list, b.provider) for b in current] == [
        ("203.0.113.5", "microsoft-snds (SNDS)", "Microsoft")
    ]
    receivers = policy.load_receivers()
    assert "microsoft" in receivers
    routed = policy.destinations(current, receivers=receivers, bounced={})
    assert routed == tuple(sorted(receivers["microsoft"]))
    assert "outlook.com" in routed and "hotmail.com" in routed and "gmail.com" not in routed
    decision = policy.decide(current, now=NOW, applied=False, last_listed=None,
                             after=timedelta(0), revert_after=timedelta(days=1))  # fmt: skip
    assert decision.action is policy.Action.APPLY
    assert decision.reason == "203.0.113.5 listed on microsoft-snds (SNDS)"


def test_the_digest_and_the_page_show_an_snds_block_as_still_listed() -> None:
    state, _ = play(polled(NOW, listings=[BLOCK]))
    message = render_digest(state, name="daily", since=NOW, now=NOW + timedelta(days=1), runs=96,
                            blind_runs=0, host="mx.example", severity=Severity.WARNING)  # fmt: skip
    assert "still listed (1):" in message.body and "microsoft-snds (SNDS)" in message.body
    status = Status((), (), (), (), None, (), None, None, 1, Path("/db"),
                    sourced=tuple(state.sources.values()))  # fmt: skip
    [listing] = listings_in_force(status, NOW)
    assert (listing.zone, listing.severity, listing.delist_url) == (
        "microsoft-snds (SNDS)", "critical", DELIST_URL,
    )  # fmt: skip
    assert "request delisting at https://olcsupport.office.com/" in listing.next_step
    # no run recorded: never CLEAN, and the block known is said
    assert status.headline.startswith("UNKNOWN (still LISTED: 1 listing(s) known before)")


def test_a_day_without_a_row_keeps_the_rating_and_a_subject_that_left_drops_it() -> None:
    state, told = play(
        polled(NOW, reputation=[rated(Rating.BAD, 5, "RED")]),
        polled(NOW + timedelta(hours=6)),  # no row today (under 100 messages): still RED
        polled(NOW + timedelta(hours=12), reputation=[rated(Rating.BAD, 7, "RED")]),
    )
    assert [len(t) for t in told] == [1, 0, 0]
    assert state.source_health["snds"].ratings == {
        "203.0.113.5": (date(2026, 12, 7), Rating.BAD, "RED")
    }
    moved = SourceResult("snds", NOW + timedelta(days=1), checked=("198.51.100.0/24",))
    state, _ = evaluate_sources(state, [moved], now=moved.fetched)
    assert state.source_health["snds"].ratings == {}
    kept = SourceResult("snds", NOW + timedelta(days=1), checked=("203.0.113.0/24",))
    state, _ = evaluate_sources(play(polled(NOW, reputation=[rated(Rating.BAD, 5, "RED")]))[0],
                                [kept], now=kept.fetched)  # fmt: skip
    assert list(state.source_health["snds"].ratings) == ["203.0.113.5"]


def test_a_source_that_crashes_is_an_error_of_that_source_not_of_the_run(tmp_path: Path) -> None:
    def broken(config: Config, targets: object, *, now: datetime) -> SourceResult:
        raise RuntimeError(f"a bug that quotes the key {KEY}")

    config = snds_config(tmp_path, "http://127.0.0.1:9")
    source = Source("snds", "SNDS", lambda c: True, lambda c: 3600.0, broken)
    [result] = poll_due(config, ["203.0.113.5"], {}, now=NOW, sources=[source])
    assert result.error == "SNDS: internal error (RuntimeError), a bug: report it"
    assert poll_due(config, [], {}, now=NOW, sources=[source]) == []  # nothing to look up


def test_the_status_text_names_the_sources_state_in_plain_words() -> None:
    state, _ = play(
        polled(NOW, listings=[BLOCK], reputation=[rated(Rating.BAD, 5, "RED")],
               unknown=["192.0.2.1"]),
        polled(NOW + timedelta(hours=6), error="SNDS: data.aspx answered HTTP 500"),
    )  # fmt: skip
    last = {"finished": "2026-12-06T12:00:00+00:00", "verdict": "clean", "error": ""}
    status = Status((), (), (), (), None, (), last, None, 1, Path("/db"),
                    sourced=tuple(state.sources.values()),
                    sources=tuple(state.source_health.values()))  # fmt: skip
    text = render_status(status, now=NOW + timedelta(hours=7))
    assert text.splitlines()[:8] == [
        "LISTED BY RECEIVERS' OWN DATA (1)",
        "  Outlook.com: blocked (SNDS, since 2026-12-06T06:00+00:00, for 7 h 0 min) — "
        "203.0.113.5: Junked",
        "      blocked range 203.0.113.0-203.0.113.255",
        "      delist: request delisting at https://olcsupport.office.com/",
        "",
        "RECEIVERS' DATA",
        "  SNDS: UNKNOWN since 2026-12-06T12:00+00:00: SNDS: data.aspx answered HTTP 500",
        "  SNDS: 203.0.113.5 RED (bad) on 2026-12-05",
    ]
    assert "  SNDS: no data for 192.0.2.1 (register it there)" in text
    assert text.splitlines()[-1].startswith("LISTED: last check 2026-12-06T12:00:00+00:00")
