"""The report and the live page in a real browser: Debian's headless Chromium renders the file
`blmonitor report --html` writes and the `/` of a `blmonitor run --listen` on 127.0.0.1, both
from the scripted history of tests/test_page.py (listed, delisted, a blind night, a bounce, a
smart-host week, an SNDS block and RED day, a Gmail LOW day, Gmail unreadable), with JavaScript
off. The rendered DOM says the verdict, the zones, the receivers' data and the delist links;
at 1280 and 390 CSS pixels nothing sticks out of the page (only the timelines' own scroll boxes
may be wider than a phone). The measuring is done from outside the page,
through the DevTools protocol on a pipe: the page itself stays script-free.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from blmonitor import cli
from tests.dnsservers import free_port
from tests.test_daemon_process import daemon
from tests.test_page import CHROMIUM_OFFLINE, History, Parsed, png_pixels
from tests.test_page import history as history  # the fixture: the same scripted history

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None,
                       reason="no chromium here (scripts/check --setup installs it)"),
]  # fmt: skip

WIDTHS = (1280, 390)  # a laptop, a phone


def chromium_flags(profile: Path) -> list[str]:
    assert CHROMIUM is not None
    return [CHROMIUM, *CHROMIUM_OFFLINE, "--disable-extensions", "--hide-scrollbars",
            f"--user-data-dir={profile}"]  # fmt: skip


class DevTools:
    """Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, messages ending in
    NUL): one tab, JavaScript off for the page, commands answered in order."""

    def __init__(self, tmp: Path) -> None:
        to_chromium, self._in = os.pipe()
        self._out, from_chromium = os.pipe()
        # the child's ends as fds 3 and 4: dup2 from numbers that cannot be 3 or 4
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chromium, from_chromium)]
        os.close(to_chromium)
        os.close(from_chromium)
        devnull = os.open(os.devnull, os.O_WRONLY)
        self.log = tmp / "chromium.log"
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT, 0o600)
        argv = [*chromium_flags(tmp / "devtools-profile"), "--remote-debugging-pipe"]
        try:
            self.pid = os.posix_spawn(argv[0], argv, {"HOME": str(tmp)}, file_actions=[
                (os.POSIX_SPAWN_DUP2, ends[0], 3), (os.POSIX_SPAWN_DUP2, ends[1], 4),
                (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, log, 2),
            ])  # fmt: skip
        finally:
            for fd in (*ends, devnull, log):
                os.close(fd)
        self._buffer = b""
        self._next = 0
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        attached = self.send("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Page.setLifecycleEventsEnabled", enabled=True, session=True)
        self.send("Emulation.setScriptExecutionDisabled", value=True, session=True)

    def send(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(60)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise AssertionError(f"chromium said nothing:\n{self.log.read_text()}")
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                raise AssertionError(f"chromium went away:\n{self.log.read_text()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def open(self, url: str, width: int) -> None:
        """The page at `url` in a window `width` CSS pixels wide (a phone's, under 600: the
        viewport meta honoured as there), after its load event."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=900,
                  deviceScaleFactor=1, mobile=width < 600, session=True)  # fmt: skip
        self._next += 1
        navigate = {"id": self._next, "method": "Page.navigate", "params": {"url": url},
                    "sessionId": self.session}  # fmt: skip
        os.write(self._in, json.dumps(navigate).encode() + b"\0")
        # the load of this navigation (its loader), not a late one of the page before
        loader, loaded = None, set()
        while loader is None or loader not in loaded:
            message = self._receive(60)
            if message.get("id") == self._next:
                assert "errorText" not in message["result"], message
                loader = message["result"]["loaderId"]
            elif (
                message.get("method") == "Page.lifecycleEvent"
                and message["params"]["name"] == "load"
            ):
                loaded.add(message["params"]["loaderId"])

    def evaluate(self, expression: str) -> Any:
        found = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                          session=True)  # fmt: skip
        assert "exceptionDetails" not in found, found
        return found["result"]["value"]

    def screenshot(self, path: Path) -> None:
        """The whole page, top to bottom, at the window's width."""
        size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", clip=clip,
                         captureBeyondViewport=True, session=True)  # fmt: skip
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(OSError, AssertionError):
            self.send("Browser.close")
        for fd in (self._in, self._out):
            os.close(fd)
        try:
            for _ in range(100):
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
                time.sleep(0.1)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


# Run from outside the page (DevTools), with the page's own scripts off: every element whose
# box leaves the window, unless a box that scrolls or clips holds it; and the boxes that scroll.
MEASURE = r"""(() => {
  const width = document.documentElement.clientWidth;
  const held = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(p).overflowX)) return p;
    }
    return null;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className ? "." + el.className.split(" ").join(".") : "");
  const out = [], scrolling = new Set();
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right <= width + 0.5 && box.left >= -0.5) continue;
    const holder = held(el);
    if (holder) { if (holder.scrollWidth > holder.clientWidth) scrolling.add(name(holder)); }
    else out.push(name(el) + " " + Math.round(box.left) + ".." + Math.round(box.right));
  }
  // Squeezed tables: a cell taller than 12 lines, a word of a cell broken across lines.
  const tall = [], broken = [];
  for (const cell of document.querySelectorAll("td, th")) {
    const line = parseFloat(getComputedStyle(cell).lineHeight);
    if (cell.getBoundingClientRect().height > 12 * line) tall.push(cell.textContent.slice(0, 40));
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      for (const word of text.data.matchAll(/[^\s\-\/?=&.,;:()\[\]]+/g)) {
        const range = document.createRange();
        range.setStart(text, word.index);
        range.setEnd(text, word.index + word[0].length);
        if (new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1) {
          broken.push(word[0]);
        }
      }
    }
  }
  return {width, innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
          bodyWidth: document.body.scrollWidth, overflowing: out.slice(0, 20),
          scrolling: [...scrolling], tall: tall.slice(0, 10), broken: broken.slice(0, 20)};
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[DevTools]:
    tools = DevTools(tmp_path_factory.mktemp("chromium"))
    try:
        yield tools
    finally:
        tools.close()


@pytest.fixture(scope="module")
def report_url(history: History, tmp_path_factory) -> str:
    """The file of `blmonitor report --html`, as a browser opens it from disk."""
    out: Path = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(cli.main, ["report", "--html", str(out), "--since", "30d",
                                           "-c", str(history.config.source)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out.as_uri()


@pytest.fixture(scope="module")
def live_url(history: History, tmp_path_factory) -> Iterator[str]:
    """`/` of a `blmonitor run --listen` on 127.0.0.1 over the same history (its own first
    run adds one more, which the lab answers as the last one of the history did)."""
    port = free_port()
    log = tmp_path_factory.mktemp("live") / "daemon.log"
    base = f"http://127.0.0.1:{port}/"
    with daemon(Path(history.config.source), log, "--listen", f"127.0.0.1:{port}") as proc:
        deadline = time.monotonic() + 30
        while "next run at" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with httpx.Client(trust_env=False, timeout=5) as client:
            assert client.get(base).status_code == 200
        yield base


@pytest.fixture(params=["report", "live"])
def url(request) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def dump_dom(url: str, tmp: Path) -> str:
    """The DOM as Chromium rendered it (`--dump-dom`, which needs scripts on to serialise it;
    the page has none: the test below and DevTools' run with them off show it)."""
    done = subprocess.run(
        [*chromium_flags(tmp / "dump-profile"), "--dump-dom", url],
        capture_output=True, text=True, timeout=120, env={"HOME": str(tmp)}, check=True,
    )  # fmt: skip
    return done.stdout


def test_chromium_shows_the_verdict_zones_and_delist_links(url, tmp_path) -> None:
    parsed = Parsed(dump_dom(url, tmp_path))
    words = parsed.words()
    assert "mx.example.net" in words and "LISTED" in words
    for zone in ("bl.lab.test", "flip.lab.test", "dead.lab.test", "microsoft-s3150 (bounce)"):
        assert zone in words, zone
    for needed in ("Zone health", "Listings in force", "blind: nothing checked",
                   "mail through the smart host", "a bounce named it", "Recent events",
                   # the receivers' own data: one source read, one UNKNOWN, the bad days
                   "Receivers' own data", "SNDS: read", "Gmail Postmaster: UNKNOWN since",
                   "the refresh token was refused", "bad RED SNDS 203.0.113.5",
                   "poor LOW Gmail Postmaster 203.0.113.5",
                   "203.0.113.5 on microsoft-snds (SNDS)"):  # fmt: skip
        assert needed in words, needed
    assert set(parsed.links()) == {
        "https://bl.lab.test/remove?ip=203.0.113.5",
        "https://bl.lab.test/pbl?ip=203.0.113.7",
        "https://olcsupport.office.com/",
    }
    assert not any(tag == "script" for tag, _ in parsed.tags)
    assert [a.get("role") for tag, a in parsed.tags if tag == "svg" and "role" in a] == ["img"] * 2


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_overflows(browser: DevTools, url, width, tmp_path) -> None:
    browser.open(url, width)
    found = browser.evaluate(MEASURE)
    assert (found["width"], found["innerWidth"]) == (width, width), found
    assert found["overflowing"] == [], found
    assert found["scrollWidth"] <= width and found["bodyWidth"] <= width, found
    assert (found["tall"], found["broken"]) == ([], []), found  # tables not squeezed
    # the timelines (at least 640 px) scroll in their own box on a phone, and only they
    assert set(found["scrolling"]) <= {"div.scroll"}, found
    assert bool(found["scrolling"]) == (width < 640), found
    shot = tmp_path / f"page-{width}.png"
    browser.screenshot(shot)
    shot_width, shot_height, colours = png_pixels(shot)
    assert shot_width == width and shot_height > 900 and len(colours) > 20


def test_an_overflow_would_be_seen(browser: DevTools, tmp_path) -> None:
    """The measure above can fail: a table wider than the phone, outside any scroll box."""
    page = tmp_path / "wide.html"
    page.write_text('<!DOCTYPE html><meta name="viewport" content="width=device-width">'
                    '<body><table style="width:600px"><tr><td>x</td></tr></table></body>')  # fmt: skip
    browser.open(page.as_uri(), 390)
    found = browser.evaluate(MEASURE)
    assert found["overflowing"] and found["overflowing"][0].startswith("table ")
    assert found["scrollWidth"] > 390
