"""The report page: its model read from a history the real monitor made on the lab (listed,
delisted, a zone that never answers, a blind night, a bounce, a smart-host week, an SNDS block
with a RED day, a Gmail LOW day and then Gmail unreadable), the SVG's geometry, the HTML parsed,
the `report` command, and a real browser's screenshot.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html.parser import HTMLParser
from pathlib import Path

import dns.name
import dns.rcode
import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import Config, load_config
from blmonitor.models import Verdict
from blmonitor.monitor.page import (
    Page,
    Period,
    Span,
    blind_spans,
    build_timelines,
    read_page,
    receivers,
    smarthost_spans,
)
from blmonitor.monitor.page_html import render_page
from blmonitor.monitor.page_svg import box, x_of
from blmonitor.monitor.run import run_once
from blmonitor.monitor.state import SourceHealth
from blmonitor.monitor.status import Status
from blmonitor.monitor.store import Store
from tests import dnsservers, googlefake, httpservers
from tests.test_daemon import outlook_s3150_bounce
from tests.test_gmail import write_credentials
from tests.test_snds import DAILY, KEY, STATUS

LISTING, UNUSABLE, BLIND, SMARTHOST = Period

T = datetime(2026, 11, 1, tzinfo=UTC)


# --- geometry and periods (pure) -------------------------------------------------------------


def test_three_days_in_thirty_is_a_tenth_of_the_lane() -> None:
    span = Span(T + timedelta(days=6), T + timedelta(days=9), LISTING, severity="critical")
    x, width = box(span, T, T + timedelta(days=30), 500)
    assert x == pytest.approx(100.0) and width == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [(T - timedelta(days=1), 0.0), (T, 0.0), (T + timedelta(days=15), 150.0),
     (T + timedelta(days=30), 300.0), (T + timedelta(days=99), 300.0)],
)  # fmt: skip
def test_x_of_is_clamped_to_the_window(moment, expected) -> None:
    assert x_of(moment, T, T + timedelta(days=30), 300) == pytest.approx(expected)


def test_a_very_short_period_still_shows() -> None:
    span = Span(T, T + timedelta(seconds=1), BLIND)
    assert box(span, T, T + timedelta(days=365), 800)[1] == 1.0


def run_row(day: float, error: str = "") -> dict[str, object]:
    moment = (T + timedelta(days=day)).isoformat()
    return {"started": moment, "finished": moment, "error": error}


def test_blind_runs_in_a_row_are_one_period_until_the_next_good_run() -> None:
    runs = [run_row(0), run_row(1, "refused"), run_row(1.5, "refused"), run_row(2), run_row(5, "x")]
    window = (T, T + timedelta(days=10))
    assert blind_spans(runs, window) == [
        Span(T + timedelta(days=1), T + timedelta(days=2), BLIND, detail="refused"),
        Span(T + timedelta(days=5), T + timedelta(days=10), BLIND, detail="x", open=True),
    ]


def test_smart_host_periods_run_from_apply_to_revert_and_ignore_failures() -> None:
    def action(i: int, day: int, what: str, outcome: str = "done") -> dict[str, object]:
        return {"id": i, "at": (T + timedelta(days=day)).isoformat(), "action": what,
                "outcome": outcome, "relay": "smtp.isp.example:587"}  # fmt: skip

    actions = [action(1, 1, "apply", "failed"), action(2, 2, "apply"), action(3, 9, "revert"),
               action(4, 20, "apply")]  # fmt: skip
    spans = smarthost_spans(actions, (T, T + timedelta(days=25)))
    assert [(s.start.day, s.end.day, s.open) for s in spans] == [(3, 10, False), (21, 26, True)]
    assert {s.kind for s in spans} == {SMARTHOST}


# --- a history made by the real monitor on the lab --------------------------------------------


@dataclass
class History:
    config: Config
    path: Path
    end: datetime


def write_config(
    tmp: Path,
    port: int,
    lab,
    maildir: Path,
    snds: str = "",
    google: googlefake.FakeGoogle | None = None,
) -> Path:
    """Two targets on three zones (one that flips, one that lists both, one that never
    answers), through the resolver at `port`, bounces read from `maildir`; with SNDS played at
    `snds` and Gmail Postmaster by `google`, polled every 2 hours (at every run of the history,
    not at the live page's first run, within the hour after its last)."""
    sections: dict[str, dict[str, object]] = {
        "monitor": {"targets": ["203.0.113.5", "203.0.113.7"], "zones": ["flip", "bl", "dead"],
                    "lists": str(lab.catalog_path), "interval": "15m", "confirm": 1,
                    "min_answered": 0.3, "database": str(tmp / "blmonitor.db")},
        "dns": {"resolver": [f"127.0.0.1:{port}"], "timeout": 0.4},
        "notify": {"server_name": "mx.example.net"},
        "bounces": {"watch": [str(maildir)], "expire": "7d"},
    }  # fmt: skip
    if snds:
        key_file = tmp / "snds.key"
        key_file.write_text(KEY + "\n")
        key_file.chmod(0o600)
        sections["snds"] = {"key_file": str(key_file), "base_url": f"{snds}/snds/",
                            "interval": "2h", "timeout": 2}  # fmt: skip
    if google is not None:
        credentials = write_credentials(tmp / "gmail.json")
        sections["gmail_postmaster"] = {
            "domains": ["example.net"], "base_url": google.base_url,
            "token_url": google.token_url, "interval": "2h", "timeout": 2,
            "credentials_file": str(credentials),
        }  # fmt: skip
    path = tmp / "config.toml"
    path.write_text("".join(f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n"
                                                   for key, value in keys.items())
                            for name, keys in sections.items()))  # fmt: skip
    return path


def snds_csv(day: datetime, colour: str, traps: int = 0) -> str:
    """data.aspx: one row for 203.0.113.5, the day before `day` rated `colour`."""
    when = (day - timedelta(days=1)).strftime("%-m/%-d/%Y")
    return (f"203.0.113.5,{when} 12:00 AM,{when} 11:00 PM,9120,9120,9005,{colour},0.2%,,,"
            f"{traps},mx.example.net,news@example.net,\n")  # fmt: skip


def gmail_stats(day: datetime, ip: str, domain: str) -> tuple[str, tuple[int, object]]:
    """Postmaster Tools' TrafficStats of example.net for the day before `day`."""
    name = f"domains/example.net/trafficStats/{(day - timedelta(days=1)):%Y%m%d}"
    return f"v1/{name}", (200, {
        "name": name, "userReportedSpamRatio": 0.004, "domainReputation": domain,
        "ipReputations": [{"reputation": ip, "ipCount": "1", "sampleIps": ["203.0.113.5"]}],
        "spfSuccessRatio": 1, "dkimSuccessRatio": 1, "dmarcSuccessRatio": 1,
    })  # fmt: skip


BLOCKED = (
    "203.0.113.5,203.0.113.5,Yes,Junked due to user complaints or other evidence of spamming\n"
)


@pytest.fixture(scope="module")
def history(lab, tmp_path_factory) -> Iterator[History]:
    """Three weeks, ending at the hour before now (so the CLI's real clock sees it all)."""
    tmp = tmp_path_factory.mktemp("page")
    maildir = tmp / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    proxy = dnsservers.FakeResolver(upstream=lab.rbldnsd_port)
    proxy.add("flip.lab.test", lab.flip)
    servers = contextlib.ExitStack()
    routes: dict[str, tuple[int, str]] = {}
    snds = servers.enter_context(httpservers.serve(routes))
    google = servers.enter_context(googlefake.serve())
    config = load_config(write_config(tmp, proxy.port, lab, maildir, snds, google))
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=21)
    now = start

    def run(day: float, colour: str = "GREEN", ip: str = "HIGH", domain: str = "HIGH") -> None:
        """One run on day `day`: SNDS rates yesterday `colour`, Gmail `ip` and `domain`."""
        nonlocal now
        now = start + timedelta(days=day)
        rated = start + timedelta(days=int(day))  # both rate the day before this one
        routes[DAILY] = (200, snds_csv(rated, colour, traps=3 if colour == "RED" else 0))
        google.api.update([gmail_stats(rated, ip, domain)])
        store = Store(config.monitor.database)
        try:
            run_once(config, store, None, clock=lambda: now, host="mx.example.net")
        finally:
            store.close()

    try:
        lab.flip.listed = set()
        routes[STATUS] = (200, "")  # nothing blocked
        run(0)
        lab.flip.listed = {"203.0.113.5"}
        run(3)
        run(4)
        store = Store(config.monitor.database)
        store.record_smarthost(
            start + timedelta(days=4, hours=1),
            {"action": "apply", "outcome": "done", "relay": "smtp.isp.example"},
        )
        store.record_smarthost(
            start + timedelta(days=11),
            {"action": "revert", "outcome": "done", "relay": "smtp.isp.example"},
        )
        store.close()  # fmt: skip
        lab.flip.listed = set()
        routes[STATUS] = (200, BLOCKED)  # Outlook.com blocks .5 from day 10 on
        run(10, "RED", ip="LOW", domain="MEDIUM")
        proxy.rules.insert(0, (dns.name.root, dnsservers.rcode(dns.rcode.REFUSED)))
        run(13, "YELLOW", ip="MEDIUM")
        run(13.3, "YELLOW", ip="MEDIUM")
        proxy.rules.pop(0)
        google.refresh = (400, {"error": "invalid_grant", "error_description": "Bad Request"})
        bounced = format_datetime(start + timedelta(days=14, hours=20))
        mail = re.sub(rb"Sun, 01 Nov 2026 12:\d\d:\d\d \+0000", bounced.encode(),
                      outlook_s3150_bounce("p1@example.net"))  # fmt: skip
        (maildir / "new" / "1.eml").write_bytes(mail)
        run(15)
        run(21)
        yield History(config, config.monitor.database, now)
    finally:
        lab.flip.listed = set()
        proxy.close()
        servers.close()


@pytest.fixture(scope="module")
def page(history) -> Page:
    return read_page(history.config, now=history.end, since=history.end - timedelta(days=30))


def test_the_page_model_holds_what_the_runs_recorded(page: Page, history: History) -> None:
    assert (page.server, page.verdict, page.headline) == ("mx.example.net", "listed", "LISTED")
    assert [t.target for t in page.timelines] == ["203.0.113.5", "203.0.113.7"]
    five = page.timelines[0]
    lanes = {lane.name: lane for lane in five.lanes}
    assert set(lanes) == {"bl.lab.test", "flip.lab.test", "dead.lab.test",
                          "microsoft-s3150 (bounce)", "microsoft-snds (SNDS)"}  # fmt: skip
    [snds] = lanes["microsoft-snds (SNDS)"].spans  # the block, from day 10 on
    assert (snds.kind, snds.severity, snds.open) == (LISTING, "critical", True)
    assert snds.start == history.end - timedelta(days=11)
    [flip] = lanes["flip.lab.test"].spans
    assert (flip.kind, flip.severity, flip.open) == (LISTING, "critical", False)
    assert (flip.end - flip.start) == timedelta(days=7)
    [dead] = lanes["dead.lab.test"].spans  # it listed nothing: the lane of zones unusable
    assert dead.kind is UNUSABLE and dead.detail.startswith(
        "dead.lab.test: dead: the listed test point"
    )
    assert len(lanes["microsoft-s3150 (bounce)"].marks) == 1
    [blind] = five.blind
    assert (blind.end - blind.start) == timedelta(days=2) and "refuses" in blind.detail
    [routed] = five.smarthost
    assert (routed.end - routed.start) == timedelta(days=6, hours=23)
    listed = {(item.target, item.zone) for item in page.listings}
    assert listed == {("203.0.113.5", "bl.lab.test"), ("203.0.113.7", "bl.lab.test"),
                      ("203.0.113.5", "microsoft-s3150 (bounce)"),
                      ("203.0.113.5", "microsoft-snds (SNDS)")}  # fmt: skip
    policy = next(i for i in page.listings if i.target == "203.0.113.7")
    assert (policy.severity, policy.codes) == ("info", ("127.0.0.10",))
    assert policy.delist_url == "https://bl.lab.test/pbl?ip=203.0.113.7"
    assert "policy listing" in policy.next_step
    assert [z.label for z in page.zones if not z.usable] == ["dead.lab.test"]
    assert {e.kind for e in page.events} >= {"listed", "delisted", "checks-failing"}


def day(history: History, days: float) -> str:
    """The day SNDS and Gmail rate in the run of day `days` of the history: the one before."""
    return (history.end - timedelta(days=21 - int(days) + 1)).date().isoformat()


def test_the_page_model_holds_the_receivers_data(page: Page, history: History) -> None:
    gmail, snds = page.receivers
    # Gmail: unreadable since day 15 — UNKNOWN with its error, its last word kept as such
    assert (gmail.label, gmail.read) == ("Gmail Postmaster", False)
    assert gmail.since == history.end - timedelta(days=6)
    assert "refresh token was refused" in gmail.error
    assert gmail.ok_at == history.end - timedelta(days=21 - 13.3)
    assert [(r.subject, r.rating, r.raw, r.day) for r in gmail.readings] == [
        ("203.0.113.5", "fair", "MEDIUM", day(history, 13)),  # worst first
        ("example.net", "good", "HIGH", day(history, 13)),
    ]
    assert (snds.label, snds.read, snds.error, snds.since) == ("SNDS", True, "", None)
    assert [(r.subject, r.rating, r.raw, r.day) for r in snds.readings] == [
        ("203.0.113.5", "good", "GREEN", day(history, 21)),
    ]
    assert snds.unknown == ("203.0.113.7",)  # SNDS has no row for it
    assert page.unread == (gmail,)
    # the poor and bad days of the window, newest first
    assert [(d.day, d.source, d.subject, d.rating, d.raw) for d in page.poor_days] == [
        (day(history, 13), "SNDS", "203.0.113.5", "poor", "YELLOW"),
        (day(history, 10), "Gmail Postmaster", "203.0.113.5", "poor", "LOW"),
        (day(history, 10), "SNDS", "203.0.113.5", "bad", "RED"),
    ]


class Parsed(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        self.text.append(data)

    def links(self) -> list[str]:
        return [v for _, a in self.tags for k, v in a.items() if k in ("src", "href") and v]

    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def test_the_html_is_self_contained_and_says_it_all(page: Page) -> None:
    html = render_page(page)
    parsed = Parsed(html)
    # the only URLs: the delist links, each where its listing is
    delist = {item.delist_url for item in page.listings if item.delist_url}
    assert delist >= {
        "https://bl.lab.test/remove?ip=203.0.113.5",
        "https://bl.lab.test/pbl?ip=203.0.113.7",
        "https://olcsupport.office.com/",
    }
    assert set(parsed.links()) == delist  # fmt: skip
    assert not any(tag in ("script", "link", "img", "iframe") for tag, _ in parsed.tags)
    words = parsed.words()
    for needed in ("mx.example.net", "LISTED", "bl.lab.test", "dead.lab.test", "Spam sent from",
                   "policy: should not send direct", "blind: nothing checked",
                   "mail through the smart host", "a bounce named it", "Zone health",
                   "Recent events", "Next step"):  # fmt: skip
        assert needed in words, needed
    svgs = [a for tag, a in parsed.tags if tag == "svg" and a.get("role") == "img"]
    assert len(svgs) == 2 and all(a.get("aria-labelledby") for a in svgs)
    assert [t for t, _ in parsed.tags].count("desc") == 2
    assert "http-equiv" not in html  # only the live page reloads
    assert 'http-equiv="refresh" content="60"' in render_page(page, refresh=60)


def test_the_html_shows_the_receivers_data(page: Page, history: History) -> None:
    parsed = Parsed(render_page(page))
    words = parsed.words()
    rated = {n: day(history, n) for n in (10, 13, 21)}
    for needed in (
        # in the header, beside the listings in force
        "Receivers' data Gmail Postmaster: UNKNOWN ; SNDS: read",
        "Receivers' own data",
        # Gmail: UNKNOWN since day 15, its error, what it said when last read, never "clean"
        f"Gmail Postmaster: UNKNOWN since {(history.end - timedelta(days=6)):%Y-%m-%d %H:%M}",
        "the refresh token was refused (invalid_grant): run `blmonitor gmail-postmaster login`",
        "what it said then is below, and may no longer hold",
        f"203.0.113.5 fair MEDIUM {rated[13]} example.net good HIGH {rated[13]}",
        # SNDS: read at the last run, the latest rating in the source's own word and its day
        f"SNDS: read {history.end:%Y-%m-%d %H:%M}",
        f"203.0.113.5 good GREEN {rated[21]}",
        "No data for 203.0.113.7: register it with SNDS",
        # the poor and bad days of the window, from the reputation table
        "Poor or bad reputation days in the window",
        f"{rated[13]} poor YELLOW SNDS 203.0.113.5",
        f"{rated[10]} poor LOW Gmail Postmaster 203.0.113.5",
        f"{rated[10]} bad RED SNDS 203.0.113.5",
        # the block, a listing in force like any other, with Microsoft's way out
        "203.0.113.5 on microsoft-snds (SNDS) critical",
        "Outlook.com blocks it (SNDS)",
    ):  # fmt: skip
        assert needed in words, needed
    sections = [
        a for tag, a in parsed.tags if tag == "section" and "source" in (a.get("class") or "")
    ]
    assert [a["class"] for a in sections] == ["source unread", "source read"]
    assert "Gmail Postmaster: read" not in words
    snds_only = Parsed(render_page(replace(page, receivers=page.receivers[1:]))).words()
    assert "Receivers' data SNDS: read Timeline" in snds_only


def test_a_source_unread_with_nothing_listed_is_unknown_and_says_why(page: Page) -> None:
    """Clean on the DNS lists, Gmail unreadable: the headline and the verdict are the status'
    (UNKNOWN, naming the source), and the page says it is no clean bill."""
    gmail = SourceHealth("gmail", "Gmail Postmaster", error="Gmail Postmaster: HTTP 500",
                         since=T, polled=T + timedelta(hours=2))  # fmt: skip
    status = Status(listed=(), pending=(), bounced=(), sick=(), routing=None, findings=(),
                    last_run={"id": 9, "finished": T.isoformat(), "error": ""},
                    next_run=None, confirm=1, database=Path("x.db"), sources=(gmail,))  # fmt: skip
    assert status.verdict is Verdict.UNKNOWN
    quiet = replace(page, headline=status.headline, verdict=str(status.verdict), listings=(),
                    receivers=receivers(status.sources), poor_days=())  # fmt: skip
    parsed = Parsed(render_page(quiet))
    words = parsed.words()
    assert ("header", {"class": "verdict unknown"}) in parsed.tags
    assert "UNKNOWN: cannot read Gmail Postmaster since 2026-11-01T00:00" in words
    assert ("None on the DNS lists — but Gmail Postmaster could not be read, so this is not a "
            "clean bill") in words  # fmt: skip
    assert "Gmail Postmaster: UNKNOWN since 2026-11-01 00:00 UTC HTTP 500" in words
    assert "Never read yet: nothing is known from it" in words
    assert "Receivers' data Gmail Postmaster: UNKNOWN Timeline" in words
    assert parsed.links() == []
    assert "CLEAN" not in words


def test_the_lists_own_words_are_escaped(page: Page) -> None:

    hostile = replace(page.listings[0], txt=('<script>alert(1)</script> "x" & y',))
    html = render_page(replace(page, listings=(hostile,)))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_zones_unusable_that_listed_nothing_share_one_lane() -> None:
    def outage(zone: str, day: int) -> dict[str, object]:
        return {"zone": zone, "health": "dead", "detail": "dead: no answer",
                "first_seen": (T + timedelta(days=day)).isoformat(),
                "ended": (T + timedelta(days=day + 1)).isoformat()}  # fmt: skip

    listed = {"target": "203.0.113.5", "zone": "a.example", "codes": ["127.0.0.2"],
              "severity": 3, "first_seen": T.isoformat(), "ended": None}  # fmt: skip
    [timeline] = build_timelines(
        targets=["203.0.113.5"], episodes=[listed],
        zone_episodes=[outage("a.example", 2), outage("b.example", 3), outage("c.example", 4)],
        runs=[], bounces=[], actions=[], window=(T, T + timedelta(days=10)),
    )  # fmt: skip
    lanes = {lane.name: [s.detail for s in lane.spans] for lane in timeline.lanes}
    assert lanes == {
        "a.example": ["127.0.0.2", "dead: no answer"],
        "other zones: unusable": ["b.example: dead: no answer", "c.example: dead: no answer"],
    }


def test_an_empty_history_is_an_unknown_page(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n'
                      '[notify]\nserver_name = "mx.example"\n')  # fmt: skip
    page = read_page(load_config(config), now=T)
    assert page.headline.startswith("UNKNOWN") and page.timelines == ()
    assert "No history yet" in render_page(page)
    assert not (tmp_path / "none.db").exists()


# --- the command and a real browser ----------------------------------------------------------


def test_report_command_writes_the_file(history, tmp_path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli.main, ["report", "--html", str(out), "--since", "30d",
                                           "-c", str(history.config.source)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: LISTED, 2 target(s), ")
    assert "flip.lab.test" in out.read_text() and not list(tmp_path.glob(".*partial"))


def test_report_command_bad_since_is_a_usage_error(history, tmp_path) -> None:
    result = CliRunner().invoke(cli.main, ["report", "--html", str(tmp_path / "r.html"),
                                           "--since", "soon", "-c", str(history.config.source)])  # fmt: skip
    assert result.exit_code == 2 and "--since 'soon'" in result.output


def png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """A tiny PNG reader (8-bit RGB or RGBA, as Chromium writes): width, height, colours."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + size
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * step
    colours: set[bytes] = set()
    previous = bytearray(stride)
    for row in range(height):
        kind, line = (
            raw[row * (stride + 1)],
            bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                best = min(
                    (abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner)
                )
                line[i] = (line[i] + best[2]) & 0xFF
        if row % 4 == 0:  # every fourth row is plenty to tell a page from a blank
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, step * 4))
        previous = line
    return width, height, colours


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own traffic (updates, metrics, sync, safe browsing) off, and every host name but
# the loopback ones unresolvable: the browser tests stay on 127.0.0.1 too.
CHROMIUM_OFFLINE = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--metrics-recording-only",
    "--no-pings", "--disable-breakpad",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (scripts/check --setup installs it)")
def test_chromium_renders_the_report(page: Page, tmp_path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render_page(page))
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    subprocess.run(
        [CHROMIUM, *CHROMIUM_OFFLINE,
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", report.as_uri()],
        check=True, capture_output=True, timeout=120, env={"HOME": str(tmp_path)},
    )  # fmt: skip
    width, height, colours = png_pixels(shot)
    assert (width, height) == (1200, 1600)
    assert len(colours) > 20, "a blank page"


def test_report_command_unwritable_file_is_one_line(history, tmp_path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "r.html"
    result = CliRunner().invoke(cli.main, ["report", "--html", str(out),
                                           "-c", str(history.config.source)])  # fmt: skip
    assert result.exit_code == 2
    assert result.output == f"blmonitor: error: cannot write {out}: No such file or directory\n"
