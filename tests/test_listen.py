"""The daemon's listener beyond /metrics (`blmonitor run --listen`): read-only methods, HTTP
basic auth, the loopback rule, and the live routes (/, /healthz, /api/status) over runs of the
real monitor on the loopback lab.
"""

from __future__ import annotations

import contextlib
import subprocess
from datetime import UTC, datetime

import httpx
import pytest

from blmonitor.errors import UsageError
from blmonitor.monitor.metrics import serve_metrics
from blmonitor.monitor.store import Store


@pytest.fixture
def http():
    with httpx.Client(trust_env=False, timeout=5) as client:  # no proxy from the environment
        yield client


# --- the listener: methods, basic auth, the live routes ----------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_every_other_method_is_405(http, method) -> None:
    with serve_metrics("127.0.0.1", 0, lambda: "x 1\n") as server:
        reply = http.request(method, server.url)
    assert (reply.status_code, reply.headers["allow"]) == (405, "GET, HEAD")


def test_basic_auth_guards_every_path(http) -> None:
    with serve_metrics("127.0.0.1", 0, lambda: "x 1\n", password="s3cret pass") as server:
        bare = http.get(server.url)
        assert bare.status_code == 401
        assert bare.headers["www-authenticate"].startswith('Basic realm="blmonitor"')
        assert http.get(server.url, auth=("any", "wrong")).status_code == 401
        assert http.get(server.url, headers={"Authorization": "Basic %%%"}).status_code == 401
        assert http.post(server.url).status_code == 401  # the password first, then the 405
        good = http.get(server.url, auth=("prometheus", "s3cret pass"))
        assert (good.status_code, good.text) == (200, "x 1\n")
        assert http.post(server.url, auth=("p", "s3cret pass")).status_code == 405


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "mx.example"])
def test_an_address_other_than_loopback_needs_a_password(host) -> None:
    with pytest.raises(UsageError, match=r"needs a password: give --listen-password-file"):
        serve_metrics(host, 0, str)


@pytest.mark.parametrize(("content", "error"), [
    ("s3cret\nignored\n", None), ("", "is empty"), ("\nx\n", "is empty"),
])  # fmt: skip
def test_read_password(tmp_path, content, error) -> None:
    from blmonitor.monitor.metrics import read_password

    path = tmp_path / "pw"
    path.write_text(content)
    if error is None:
        assert read_password(path) == "s3cret"
    else:
        with pytest.raises(UsageError, match=error):
            read_password(path)
    with pytest.raises(UsageError, match="no such file"):
        read_password(tmp_path / "missing")


@pytest.mark.parametrize(("row", "age", "why"), [
    (None, 0, "no run recorded yet"),
    ({"finished": "2026-11-01T12:00:00+00:00", "error": ""}, 60, ""),
    ({"finished": "2026-11-01T12:00:00+00:00", "error": ""}, 1900, ""),
    ({"finished": "2026-11-01T12:00:00+00:00", "error": ""}, 1901, "1901 s ago, more than 1900 s"),
    ({"finished": "2026-11-01T12:00:00+00:00", "error": "resolver refuses"}, 60, "blind: resolver refuses"),
    ({"finished": "", "error": ""}, 60, "no finishing time"),
])  # fmt: skip
def test_judge_liveness(row, age, why) -> None:
    from datetime import timedelta

    from blmonitor.monitor.metrics import judge_liveness

    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=age)
    found = judge_liveness(row, now=now, max_age=1900)
    assert (found == "") if not why else (why in found)


def test_the_live_routes_on_the_lab(lab, tmp_path, http) -> None:
    """/, /healthz, /api/status from runs of the real monitor; /healthz turns 503 when the
    resolver goes away (the run is blind) and when the daemon stops (the last run is stale)."""
    import json

    import dns.name
    import dns.rcode

    from blmonitor.config import load_config
    from blmonitor.monitor import page as page_module
    from blmonitor.monitor.metrics import live_routes
    from blmonitor.monitor.run import run_once
    from blmonitor.monitor.status import read_status, status_json
    from tests import dnsservers
    from tests.test_daemon import Clock
    from tests.test_page import write_config

    proxy = dnsservers.FakeResolver(upstream=lab.rbldnsd_port)
    (tmp_path / "Maildir").mkdir()
    path = write_config(tmp_path, proxy.port, lab, tmp_path / "Maildir")  # interval 15m
    config, clock = load_config(path), Clock()
    reads = []
    real_read = page_module.read_page

    def counted(*args, **kwargs):
        reads.append(1)
        return real_read(*args, **kwargs)

    def run() -> None:
        with contextlib.closing(Store(config.monitor.database)) as store:
            run_once(config, store, None, clock=clock)

    routes = live_routes(lambda: config, clock=clock)
    try:
        with serve_metrics("127.0.0.1", 0, str, routes=routes) as server:
            base = server.base
            assert http.get(f"{base}/healthz").status_code == 503  # no run yet
            assert "no run recorded yet" in http.get(f"{base}/healthz").text
            run()
            ok = http.get(f"{base}/healthz")
            assert (ok.status_code, ok.text) == (200, "ok\n")
            page_module.read_page = counted
            first, again = http.get(f"{base}/"), http.get(f"{base}/")
            assert (first.status_code, first.headers["content-type"]) == (
                200,
                "text/html; charset=utf-8",
            )
            assert '<meta http-equiv="refresh" content="60">' in first.text
            assert "LISTED" in first.text and "bl.lab.test" in first.text
            assert "mx.example.net" in first.text
            assert again.text == first.text and len(reads) == 1  # once per run
            status = http.get(f"{base}/api/status")
            assert status.headers["content-type"] == "application/json"
            document = json.loads(status.text)
            assert document == json.loads(json.dumps(status_json(read_status(config))))
            assert (document["verdict"], document["headline"]) == ("listed", "LISTED")
            clock.tick(32)  # past 2 × 15 min + 90 s of jitter (a tenth): stale
            stale = http.get(f"{base}/healthz")
            assert stale.status_code == 503 and "more than 1890 s" in stale.text
            proxy.rules.insert(0, (dns.name.root, dnsservers.rcode(dns.rcode.REFUSED)))
            run()
            blind = http.get(f"{base}/healthz")
            assert blind.status_code == 503 and "the last run was blind" in blind.text
            assert "refuses our queries" in blind.text
            assert "UNKNOWN" in http.get(f"{base}/").text and len(reads) == 2  # a new run
            assert json.loads(http.get(f"{base}/api/status").text)["verdict"] == "unknown"
            head = http.head(f"{base}/healthz")
            assert (head.status_code, head.content) == (503, b"")
    finally:
        page_module.read_page = real_read
        proxy.close()


@pytest.mark.slow
def test_run_listen_serves_the_live_page_behind_a_password(lab, tmp_path, http) -> None:
    """`blmonitor run --listen` as a process: the page, /healthz and /metrics, basic auth from
    --listen-password-file; a missing password file is one line and exit 2."""
    import signal
    import time

    from tests.dnsservers import free_port
    from tests.test_daemon_process import command, daemon, write_config

    port = free_port()
    config = write_config(tmp_path, lab, zones=("bl",))
    secret = tmp_path / "listen.pw"
    secret.write_text("s3cret\n")
    log = tmp_path / "daemon.log"
    args = ("--listen", f"127.0.0.1:{port}", "--listen-password-file", str(secret))
    with daemon(config, log, *args) as proc:
        deadline = time.monotonic() + 30
        while "next run at" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        assert http.get(f"{base}/").status_code == 401
        page = http.get(f"{base}/", auth=("admin", "s3cret"))
        health = http.get(f"{base}/healthz", auth=("admin", "s3cret"))
        metrics = http.get(f"{base}/metrics", auth=("admin", "s3cret"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert page.status_code == 200 and "bl.lab.test" in page.text and "LISTED" in page.text
    assert (health.status_code, health.text) == (200, "ok\n")
    assert "blmonitor_up 1" in metrics.text
    assert f"live page on {base}/" in log.read_text()
    missing = subprocess.run(command(config, "--listen", ":9", "--listen-password-file",
                                     str(tmp_path / "none")),
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert missing.returncode == 2
    assert "listen password file" in missing.stderr and "no such file" in missing.stderr
