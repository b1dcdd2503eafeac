"""Prometheus metrics: exact exposition text from a state, the listen address, a real HTTP
server on 127.0.0.1, and scrapes of a real temp-file history database."""

from __future__ import annotations

import re
import socket
import sqlite3
from datetime import UTC, datetime

import httpx
import pytest

from blmonitor.dnsbl.catalog import with_dqs
from blmonitor.errors import UsageError
from blmonitor.models import Health, Report, Result, Severity, Status, Verdict, ZoneHealth
from blmonitor.monitor import state as monitor
from blmonitor.monitor.metrics import (
    CONTENT_TYPE,
    escape_label_value,
    parse_listen,
    render_metrics,
    serve_metrics,
    store_renderer,
)
from blmonitor.monitor.state import CauseMemory, MonitorState, PairState, ZoneState
from blmonitor.monitor.store import RunRecord, Store
from tests.conftest import DQS_KEY, lab_zone
from tests.test_monitor import IP, T0, at
from tests.test_store import run_series

L, C = Status.LISTED, Status.CLEAN

SMALL = MonitorState(
    pairs={
        ("203.0.113.5", "bl.lab.test"): PairState(
            "203.0.113.5", "bl.lab.test", listed=True, codes=("127.0.0.2",),
            severity=Severity.CRITICAL, since=T0, label="bl.lab.test",
        ),
        ("203.0.113.5", "zen.spamhaus.org"): PairState(
            "203.0.113.5", "zen.spamhaus.org", since=T0, label="zen.spamhaus.org (DQS)",
        ),
    },
    zones={
        "bl.lab.test": ZoneState("bl.lab.test", since=T0, label="bl.lab.test"),
        "dead.lab.test": ZoneState("dead.lab.test", usable=False, health=Health.DEAD,
                                   detail="test point not listed", since=T0, label="dead.lab.test"),
    },
)  # fmt: skip
RUN_ROW = {
    "id": 7, "started": "2026-11-01T12:30:00+00:00", "finished": "2026-11-01T12:30:02+00:00",
    "seconds": 2.5, "targets": 1, "zones": 2, "lookups": 2, "verdict": "listed", "listed": 1,
    "errors": 1, "queries": 9, "retries": 0, "error": "",
}  # fmt: skip

SMALL_TEXT = """\
# HELP blmonitor_listed 1 if the target is listed on the zone (confirmed over `confirm` runs), else 0.
# TYPE blmonitor_listed gauge
blmonitor_listed{target="203.0.113.5",zone="bl.lab.test"} 1
blmonitor_listed{target="203.0.113.5",zone="zen.spamhaus.org (DQS)"} 0
# HELP blmonitor_listed_since_seconds Unix time the current listing began (listed pairs only).
# TYPE blmonitor_listed_since_seconds gauge
blmonitor_listed_since_seconds{target="203.0.113.5",zone="bl.lab.test"} 1793534400
# HELP blmonitor_bounce_listed Listings known from returned mail: 1 while bounces keep naming the list.
# TYPE blmonitor_bounce_listed gauge
# HELP blmonitor_source_listed Listings a receiver's own data reports (SNDS blocked ranges): 1 while it shows them.
# TYPE blmonitor_source_listed gauge
# HELP blmonitor_source_up 1 if the receiver's data source (SNDS…) was read at its last poll, else 0.
# TYPE blmonitor_source_up gauge
# HELP blmonitor_reputation The latest daily reputation a receiver's data gives: 0 good (SNDS GREEN), 1 fair, 2 poor (YELLOW), 3 bad (RED or spam trap hits).
# TYPE blmonitor_reputation gauge
# HELP blmonitor_zone_usable 1 if the zone passes its health check (confirmed), else 0; `health` says why.
# TYPE blmonitor_zone_usable gauge
blmonitor_zone_usable{zone="bl.lab.test",health="ok"} 1
blmonitor_zone_usable{zone="dead.lab.test",health="dead"} 0
# HELP blmonitor_last_run_timestamp_seconds Unix time the last run finished.
# TYPE blmonitor_last_run_timestamp_seconds gauge
blmonitor_last_run_timestamp_seconds 1793536202
# HELP blmonitor_last_run_age_seconds Seconds since the last run finished, at scrape time (a stalled daemon grows it).
# TYPE blmonitor_last_run_age_seconds gauge
blmonitor_last_run_age_seconds 900
# HELP blmonitor_last_run_duration_seconds How long the last run took.
# TYPE blmonitor_last_run_duration_seconds gauge
blmonitor_last_run_duration_seconds 2.5
# HELP blmonitor_last_run_lookups (target, zone) lookups of the last run, skipped ones not counted.
# TYPE blmonitor_last_run_lookups gauge
blmonitor_last_run_lookups 2
# HELP blmonitor_last_run_errors Lookups of the last run without a trustworthy answer (timeouts, unusable zones).
# TYPE blmonitor_last_run_errors gauge
blmonitor_last_run_errors 1
# HELP blmonitor_last_run_listed Lookups of the last run answered as listed (before confirmation).
# TYPE blmonitor_last_run_listed gauge
blmonitor_last_run_listed 1
# HELP blmonitor_last_run_failed 1 if the last run saw nothing it could trust (blind: the resolver down or refused, too few zones answering, no public IP), else 0.
# TYPE blmonitor_last_run_failed gauge
blmonitor_last_run_failed 0
# HELP blmonitor_notifications_pending Notifications stored but not delivered yet (retried on every run).
# TYPE blmonitor_notifications_pending gauge
blmonitor_notifications_pending 1
# HELP blmonitor_smarthost_routed 1 while outbound mail goes through the smart host (applied by blmonitor), else 0.
# TYPE blmonitor_smarthost_routed gauge
blmonitor_smarthost_routed 0
# HELP blmonitor_cause_findings Signs of a cause the last run found in the queue and the logs (blmonitor diagnose).
# TYPE blmonitor_cause_findings gauge
blmonitor_cause_findings 0
# HELP blmonitor_checks_failing_runs Blind runs in a row: runs that saw nothing they could trust (a failing resolver, too few zones answering, no public IP).
# TYPE blmonitor_checks_failing_runs gauge
blmonitor_checks_failing_runs 0
"""

# One sample line of the text format 0.0.4: name, optional {labels}, a Go-parsable float.
SAMPLE_RE = re.compile(
    r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? '
    r"(-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?|NaN|[+-]Inf)"
)


def assert_exposition(text: str) -> None:
    """Every line is a HELP, a TYPE or a sample of the family typed just before it."""
    assert text.endswith("\n")
    typed = ""
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed = line.split()[2]
        elif not line.startswith("#"):
            assert SAMPLE_RE.fullmatch(line), line
            assert line.split("{")[0].split(" ")[0] == typed, line


def samples(text: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_small_state_exact_text() -> None:
    text = render_metrics(
        SMALL,
        last_run=RUN_ROW,
        pending_notifications=1,
        now=datetime(2026, 11, 1, 12, 45, 2, tzinfo=UTC),
    )
    assert text == SMALL_TEXT
    assert_exposition(text)


@pytest.mark.parametrize(
    ("state", "last_run", "pending", "expected"),
    [
        # no run yet: the families are declared, with no samples
        (MonitorState(), None, 0, {"blmonitor_notifications_pending": "0", "blmonitor_checks_failing_runs": "0", "blmonitor_smarthost_routed": "0", "blmonitor_cause_findings": "0"}),
        # a run that could not check anything, three in a row
        (MonitorState(failing_runs=3), {**RUN_ROW, "error": "no public IP", "lookups": 0, "errors": 0, "listed": 0, "seconds": 0.25},
         4, {"blmonitor_last_run_timestamp_seconds": "1793536202", "blmonitor_last_run_age_seconds": "900",
             "blmonitor_last_run_duration_seconds": "0.25", "blmonitor_last_run_lookups": "0", "blmonitor_last_run_errors": "0",
             "blmonitor_last_run_listed": "0", "blmonitor_last_run_failed": "1", "blmonitor_notifications_pending": "4",
             "blmonitor_checks_failing_runs": "3", "blmonitor_smarthost_routed": "0", "blmonitor_cause_findings": "0"}),
        # a listing in the making is not a listing; no since for an unlisted pair
        (MonitorState(pairs={("192.0.2.1", "z"): PairState("192.0.2.1", "z", candidate=True, streak=1, candidate_since=T0)}),
         None, 0, {'blmonitor_listed{target="192.0.2.1",zone="z"}': "0", "blmonitor_notifications_pending": "0",
                   "blmonitor_checks_failing_runs": "0", "blmonitor_smarthost_routed": "0", "blmonitor_cause_findings": "0"}),
        # a label-less pair or zone (an old row) shows its name; a naive time is UTC
        (MonitorState(pairs={("192.0.2.1", "z"): PairState("192.0.2.1", "z", listed=True, since=T0)},
                      zones={"z": ZoneState("z", usable=False, health=Health.REFUSED)}),
         {"finished": "2026-11-01T12:00:00", "seconds": 1, "error": None}, 0,
         {'blmonitor_listed{target="192.0.2.1",zone="z"}': "1",
          'blmonitor_listed_since_seconds{target="192.0.2.1",zone="z"}': "1793534400",
          'blmonitor_zone_usable{zone="z",health="refused"}': "0",
          "blmonitor_last_run_timestamp_seconds": "1793534400", "blmonitor_last_run_age_seconds": "2702",
          "blmonitor_last_run_duration_seconds": "1", "blmonitor_last_run_failed": "0",
          "blmonitor_notifications_pending": "0", "blmonitor_checks_failing_runs": "0", "blmonitor_smarthost_routed": "0", "blmonitor_cause_findings": "0"}),
        # an unreadable time gives no timestamp; odd numbers keep the format's spelling
        (MonitorState(failing_runs=2**60), {"finished": "yesterday", "seconds": float("nan"), "lookups": 1e20,
                                            "errors": float("inf"), "listed": "3", "error": "x"}, 0,
         {"blmonitor_last_run_duration_seconds": "NaN", "blmonitor_last_run_lookups": "1e+20",
          "blmonitor_last_run_errors": "+Inf", "blmonitor_last_run_failed": "1",
          "blmonitor_notifications_pending": "0", "blmonitor_checks_failing_runs": "1.152921504606847e+18", "blmonitor_smarthost_routed": "0", "blmonitor_cause_findings": "0"}),
        # a clock behind the last run (a scrape during a clock step) never gives a negative age
        (MonitorState(), {"finished": "2026-11-01T13:00:00+00:00", "error": ""}, 0,
         {"blmonitor_last_run_timestamp_seconds": "1793538000", "blmonitor_last_run_age_seconds": "0",
          "blmonitor_last_run_failed": "0", "blmonitor_notifications_pending": "0", "blmonitor_checks_failing_runs": "0", "blmonitor_smarthost_routed": "0", "blmonitor_cause_findings": "0"}),
    ],
)  # fmt: skip
def test_render_samples(state, last_run, pending, expected) -> None:
    now = datetime(2026, 11, 1, 12, 45, 2, tzinfo=UTC)
    text = render_metrics(state, last_run=last_run, pending_notifications=pending, now=now)
    assert_exposition(text)
    assert samples(text) == expected
    assert text.count("# TYPE ") == 18  # every family is declared, samples or not


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain.example", "plain.example"),
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("two\nlines", "two\\nlines"),
        ('\\"\n', '\\\\\\"\\n'),  # backslash first, so an escape is never escaped twice
        ("zen.spamhaus.org (DQS)", "zen.spamhaus.org (DQS)"),
    ],
)
def test_label_values_are_escaped(value, escaped) -> None:
    assert escape_label_value(value) == escaped
    state = MonitorState(pairs={(value, "z"): PairState(value, "z", label=value)})
    text = render_metrics(state, last_run=None, pending_notifications=0, now=T0)
    assert f'blmonitor_listed{{target="{escaped}",zone="{escaped}"}} 0\n' in text
    assert_exposition(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9810", ("127.0.0.1", 9810)),
        (":9810", ("127.0.0.1", 9810)),  # loopback, not every interface
        ("0.0.0.0:9810", ("0.0.0.0", 9810)),  # every interface, when asked for
        ("[::1]:9810", ("::1", 9810)),
        ("[::]:1", ("::", 1)),
        ("[2001:db8::25]:65535", ("2001:db8::25", 65535)),
        ("localhost:9810", ("localhost", 9810)),
        ("mon-1.example.net:80", ("mon-1.example.net", 80)),
        ("  :9810\n", ("127.0.0.1", 9810)),
    ],
)
def test_parse_listen(text, expected) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("9810", "give HOST:PORT"),
        ("", "give HOST:PORT"),
        ("127.0.0.1", "give HOST:PORT"),
        ("127.0.0.1:", "the port must be a number from 1 to 65535, not ''"),
        (":0", "the port must be a number from 1 to 65535, not '0'"),
        (":65536", "not '65536'"),
        (":http", "not 'http'"),
        (":-1", "not '-1'"),
        (":٩٨", "not '٩٨'"),  # Arabic-Indic digits are digits to str.isdigit, not to us
        ("::1:9810", "put an IPv6 address in brackets, [ADDRESS]:PORT"),
        ("[::1]", "give a port after the bracketed IPv6 address"),
        ("[::1:9810", "give a port after the bracketed IPv6 address"),
        ("[::1]9810", "give a port after the bracketed IPv6 address"),
        ("[127.0.0.1]:9810", "'127.0.0.1' is not an IPv6 address"),
        ("[]:9810", "'' is not an IPv6 address"),
        ("300.1.2.3:9810", "'300.1.2.3' is not an IPv4 address"),
        ("bad_host:9810", "'bad_host' is not an address or a host name"),
        ("-x.example:9810", "is not an address or a host name"),
        ("http://127.0.0.1:9810", "give HOST:PORT, not a URL"),
        ("127.0.0.1:9810/metrics", "give HOST:PORT, not a URL"),
    ],
)
def test_parse_listen_refuses_with_one_line(text, why) -> None:
    with pytest.raises(UsageError) as caught:
        parse_listen(text)
    message = str(caught.value)
    assert why in message
    assert message.startswith(f"metrics address {text!r}: ")
    assert "\n" not in message and ":9810 for 127.0.0.1" in message


# --- the HTTP server -----------------------------------------------------------------------


@pytest.fixture
def http():
    with httpx.Client(trust_env=False, timeout=5) as client:  # no proxy from the environment
        yield client


def test_server_answers_metrics_and_404_elsewhere(http) -> None:
    calls = []

    def render() -> str:
        calls.append(1)
        return f"blmonitor_up {len(calls)}\n"

    with serve_metrics("127.0.0.1", 0, render) as server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        first = http.get(server.url)
        second = http.get(server.url + "?name[]=x")  # parameters are ignored
        assert (first.status_code, first.headers["content-type"]) == (200, CONTENT_TYPE)
        assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
        assert (first.text, second.text) == ("blmonitor_up 1\n", "blmonitor_up 2\n")  # per request
        head = http.head(server.url)
        assert (head.status_code, head.content, calls) == (200, b"", [1, 1, 1])
        for path in ("/", "/metrics/", "/favicon.ico", "/metricsx"):
            missing = http.get(f"http://127.0.0.1:{port}{path}")
            assert missing.status_code == 404, path
        assert len(calls) == 3
        refused = http.post(server.url)  # read-only: no write endpoint
        assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
    with pytest.raises(httpx.ConnectError):  # closed: the port is free again
        http.get(server.url)


def test_server_survives_a_broken_renderer(http) -> None:
    def render() -> str:
        raise RuntimeError("boom")

    with serve_metrics("127.0.0.1", 0, render) as server:
        failed = http.get(server.url)
        assert (failed.status_code, failed.text) == (500, "error: boom\n")
        assert http.get(server.url).status_code == 500  # still serving


def test_busy_port_is_one_clear_error() -> None:
    with serve_metrics("127.0.0.1", 0, str) as server:
        port = server.address[1]
        with pytest.raises(UsageError) as caught:
            serve_metrics("127.0.0.1", port, str)
    assert str(caught.value) == (
        f"cannot serve metrics on 127.0.0.1:{port}: Address already in use "
        "(another process listens there: choose another port)"
    )


def test_foreign_address_is_one_clear_error() -> None:
    with pytest.raises(
        UsageError, match=r"^cannot serve metrics on 192\.0\.2\.1:9810: .*\(no interface"
    ):
        # TEST-NET-1: never an address of this machine (with a password: it is not loopback)
        serve_metrics("192.0.2.1", 9810, str, password="secret")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_server_on_ipv6_loopback(http) -> None:
    with serve_metrics("::1", 0, lambda: "x 1\n") as server:
        assert server.url.startswith("http://[::1]:")
        assert http.get(server.url).text == "x 1\n"


# --- scrapes of the history database ---------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "blmonitor.db")
    yield s
    s.close()


def test_store_renderer_reads_the_last_committed_run(store, http) -> None:
    run_series(store, [C, L, L])  # listed from run 1, confirmed at run 2, one notification queued
    render = store_renderer(store.path, clock=lambda: at(4))
    text = render()
    assert_exposition(text)
    assert samples(text) == {
        'blmonitor_listed{target="203.0.113.5",zone="bl.lab.test"}': "1",
        'blmonitor_listed_since_seconds{target="203.0.113.5",zone="bl.lab.test"}': str(int(at(1).timestamp())),
        'blmonitor_zone_usable{zone="bl.lab.test",health="ok"}': "1",
        # the second zone of every test run (tests.test_monitor.report), always clean
        'blmonitor_listed{target="203.0.113.5",zone="strict.lab.test"}': "0",
        'blmonitor_zone_usable{zone="strict.lab.test",health="ok"}': "1",
        "blmonitor_last_run_timestamp_seconds": str(int(at(2).timestamp()) + 2),
        "blmonitor_last_run_age_seconds": str(15 * 60 * 2 - 2),
        "blmonitor_last_run_duration_seconds": "2",
        "blmonitor_last_run_lookups": "2",
        "blmonitor_last_run_errors": "0",
        "blmonitor_last_run_listed": "1",
        "blmonitor_last_run_failed": "0",
        "blmonitor_notifications_pending": "1",
        "blmonitor_checks_failing_runs": "0", "blmonitor_smarthost_routed": "0", "blmonitor_cause_findings": "0",
        "blmonitor_up": "1",
    }  # fmt: skip
    # the daemon keeps writing with its own connection while scrapes read
    [pending] = store.pending_notifications()
    store.mark_notification(pending.id, ok=True, attempts=1, error="", now=at(3))
    with serve_metrics("127.0.0.1", 0, render) as server:
        assert "blmonitor_notifications_pending 0\n" in http.get(server.url).text


def test_store_renderer_after_failed_runs(store) -> None:
    state = MonitorState()
    for run in range(2):
        after, events = monitor.evaluate_failure(state, "no public IP", now=at(run), confirm=2)
        store.record_run(RunRecord(at(run), at(run), None, "no public IP"), state, after, events)
        state = after
    got = samples(store_renderer(store.path, clock=lambda: at(2))())
    assert (got["blmonitor_last_run_failed"], got["blmonitor_checks_failing_runs"]) == ("1", "2")
    assert (got["blmonitor_last_run_lookups"], got["blmonitor_up"]) == ("0", "1")


def test_store_renderer_never_shows_a_dqs_key(store) -> None:
    zone = with_dqs(lab_zone("refusing"), DQS_KEY)
    assert DQS_KEY in zone.queried
    result = Result(IP, zone, Status.LISTED, codes=("127.0.0.2",), meanings=("listed",),
                    severity=Severity.CRITICAL, txt=(f"via {zone.queried}",))  # fmt: skip
    rep = Report(
        (result,), (ZoneHealth(zone, Health.REFUSED, f"{zone.queried} refused"),), Verdict.LISTED
    )
    state = MonitorState()
    for run in range(2):
        after, events = monitor.evaluate(rep, state, now=at(run), confirm=1)
        store.record_run(RunRecord(at(run), at(run), rep), state, after, events)
        state = after
    text = store_renderer(store.path)()  # the real clock: ages are not checked here
    assert DQS_KEY not in text
    assert 'blmonitor_listed{target="203.0.113.5",zone="refusing.lab.test (DQS)"} 1\n' in text
    assert 'blmonitor_zone_usable{zone="refusing.lab.test (DQS)",health="refused"} 0\n' in text


def test_store_renderer_missing_database_is_down_and_not_created(tmp_path) -> None:
    path = tmp_path / "none" / "blmonitor.db"
    text = store_renderer(path)()
    assert text == (
        f"# no history database at {path} yet: no run so far\n"
        "# HELP blmonitor_up 1 if the history database could be read for this scrape.\n"
        "# TYPE blmonitor_up gauge\nblmonitor_up 0\n"
    )
    assert not path.parent.exists()
    assert_exposition(text)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"this is not a database, just some text\n" * 200, "cannot use the history database"),
        (None, "written by a newer blmonitor"),
    ],
)
def test_store_renderer_unreadable_database_is_down(tmp_path, content, why) -> None:
    path = tmp_path / "blmonitor.db"
    if content is None:
        Store(path).close()
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 99")
        conn.close()
    else:
        path.write_bytes(content)
    text = store_renderer(path)()
    comment, *rest = text.splitlines()
    assert comment.startswith("# ") and why in comment
    assert rest[-1] == "blmonitor_up 0"
    assert_exposition(text)


def test_store_renderer_unexpected_error_is_down(store, monkeypatch) -> None:
    run_series(store, [C])

    def broken(self):
        raise ValueError("bad row")

    monkeypatch.setattr(Store, "load_state", broken)
    first = store_renderer(store.path)().splitlines()[0]
    assert first == f"# cannot read the history database {store.path}: ValueError: bad row"


def test_render_is_what_a_real_series_leaves(store) -> None:
    """evaluate → record_run → load_state keeps what render_metrics shows."""
    run_series(store, [L, L, C, C])
    state = store.load_state()
    pair = state.pairs[("203.0.113.5", "bl.lab.test")]
    assert not pair.listed and pair.since == at(2)
    text = render_metrics(state, last_run=store.last_run(), pending_notifications=0, now=at(5))
    assert 'blmonitor_listed{target="203.0.113.5",zone="bl.lab.test"} 0\n' in text
    assert "blmonitor_listed_since_seconds{" not in text


def test_bounce_listings_are_a_family_of_their_own() -> None:
    from datetime import UTC, datetime

    from blmonitor.monitor import metrics
    from blmonitor.monitor.state import BounceListing, MonitorState

    seen = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    listing = BounceListing("203.0.113.5", "microsoft-s3150", "Microsoft", seen, seen, 3)
    state = MonitorState(bounces={(listing.target, listing.list): listing})
    text = metrics.render_metrics(state, last_run=None, pending_notifications=0, now=seen)
    assert 'blmonitor_bounce_listed{target="203.0.113.5",list="microsoft-s3150"} 1\n' in text


def test_store_renderer_shows_the_smart_host_and_the_findings(tmp_path) -> None:
    store = Store(tmp_path / "h.db")
    store.record_smarthost(T0, {"action": "apply", "outcome": "done", "relay": "smtp.isp:587"})
    store.save_causes(
        CauseMemory(messages=("60 of 65 messages are bounces", "sasl user a sent 400"))
    )
    store.close()
    got = samples(store_renderer(tmp_path / "h.db", clock=lambda: T0)())
    assert (got["blmonitor_smarthost_routed"], got["blmonitor_cause_findings"]) == ("1", "2")
