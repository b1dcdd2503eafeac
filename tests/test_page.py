"""The report page: its model read from a history the real monitor made on the lab (listed,
delisted, a zone that never answers, a blind night, a bounce, a smart-host week), the SVG's
geometry, the HTML parsed, the `report` command, and a real browser's screenshot.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
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
from blmonitor.monitor.page import (
    Page,
    Period,
    Span,
    blind_spans,
    build_timelines,
    read_page,
    smarthost_spans,
)
from blmonitor.monitor.page_html import render_page
from blmonitor.monitor.page_svg import box, x_of
from blmonitor.monitor.run import run_once
from blmonitor.monitor.store import Store
from tests import dnsservers
from tests.test_daemon import outlook_s3150_bounce

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


def write_config(tmp: Path, port: int, lab, maildir: Path) -> Path:
    """Two targets on three zones (one that flips, one that lists both, one that never
    answers), through the resolver at `port`, bounces read from `maildir`."""
    sections: dict[str, dict[str, object]] = {
        "monitor": {"targets": ["203.0.113.5", "203.0.113.7"], "zones": ["flip", "bl", "dead"],
                    "lists": str(lab.catalog_path), "interval": "15m", "confirm": 1,
                    "min_answered": 0.3, "database": str(tmp / "blmonitor.db")},
        "dns": {"resolver": [f"127.0.0.1:{port}"], "timeout": 0.4},
        "notify": {"server_name": "mx.example.net"},
        "bounces": {"watch": [str(maildir)], "expire": "7d"},
    }  # fmt: skip
    path = tmp / "config.toml"
    path.write_text("".join(f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n"
                                                   for key, value in keys.items())
                            for name, keys in sections.items()))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def history(lab, tmp_path_factory) -> Iterator[History]:
    """Three weeks, ending at the hour before now (so the CLI's real clock sees it all)."""
    tmp = tmp_path_factory.mktemp("page")
    maildir = tmp / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    proxy = dnsservers.FakeResolver(upstream=lab.rbldnsd_port)
    proxy.add("flip.lab.test", lab.flip)
    config = load_config(write_config(tmp, proxy.port, lab, maildir))
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=21)
    now = start

    def run(day: float) -> None:
        nonlocal now
        now = start + timedelta(days=day)
        store = Store(config.monitor.database)
        try:
            run_once(config, store, None, clock=lambda: now, host="mx.example.net")
        finally:
            store.close()

    try:
        lab.flip.listed = set()
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
        run(10)
        proxy.rules.insert(0, (dns.name.root, dnsservers.rcode(dns.rcode.REFUSED)))
        run(13)
        run(13.3)
        proxy.rules.pop(0)
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


@pytest.fixture(scope="module")
def page(history) -> Page:
    return read_page(history.config, now=history.end, since=history.end - timedelta(days=30))


def test_the_page_model_holds_what_the_runs_recorded(page: Page) -> None:
    assert (page.server, page.verdict, page.headline) == ("mx.example.net", "listed", "LISTED")
    assert [t.target for t in page.timelines] == ["203.0.113.5", "203.0.113.7"]
    five = page.timelines[0]
    lanes = {lane.name: lane for lane in five.lanes}
    assert set(lanes) == {"bl.lab.test", "flip.lab.test", "dead.lab.test",
                          "microsoft-s3150 (bounce)"}  # fmt: skip
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
                      ("203.0.113.5", "microsoft-s3150 (bounce)")}  # fmt: skip
    policy = next(i for i in page.listings if i.target == "203.0.113.7")
    assert (policy.severity, policy.codes) == ("info", ("127.0.0.10",))
    assert policy.delist_url == "https://bl.lab.test/pbl?ip=203.0.113.7"
    assert "policy listing" in policy.next_step
    assert [z.label for z in page.zones if not z.usable] == ["dead.lab.test"]
    assert {e.kind for e in page.events} >= {"listed", "delisted", "checks-failing"}


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


def test_the_lists_own_words_are_escaped(page: Page) -> None:
    from dataclasses import replace

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
