"""heartbeat: which URL a run pings (a table), then real pings to an HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest

from blmonitor.monitor.heartbeat import ping, ping_url
from tests import httpservers
from tests.dnsservers import free_port

WHY = "resolver 127.0.0.1:5999 is unreachable"


@pytest.mark.parametrize(
    ("url", "blind", "expected"),
    [
        # a run that saw: the URL as written, whatever the service
        ("https://hc-ping.com/0f6c7e1a-2b3c-4d5e-8f90-123456789abc", "",
         "https://hc-ping.com/0f6c7e1a-2b3c-4d5e-8f90-123456789abc"),
        ("https://kuma.example/api/push/Tk3n?status=up&msg=OK&ping=", "",
         "https://kuma.example/api/push/Tk3n?status=up&msg=OK&ping="),
        ("https://example.org/alive", "", "https://example.org/alive"),
        # a blind run: healthchecks.io's /fail (hosted, with a slug, or self-hosted /ping/)
        ("https://hc-ping.com/0f6c7e1a-2b3c-4d5e-8f90-123456789abc", WHY,
         "https://hc-ping.com/0f6c7e1a-2b3c-4d5e-8f90-123456789abc/fail"),
        ("https://hc-ping.com/pingkey/mx1-blmonitor/", WHY,
         "https://hc-ping.com/pingkey/mx1-blmonitor/fail"),
        ("http://hc.example:8000/ping/0f6c7e1a", WHY, "http://hc.example:8000/ping/0f6c7e1a/fail"),
        # Uptime Kuma's push: status=down with the reason
        ("https://kuma.example/api/push/Tk3n?status=up&msg=OK&ping=", WHY,
         "https://kuma.example/api/push/Tk3n?ping=&status=down&msg=resolver+127.0.0.1%3A5999+is+unreachable"),
        # any other service: no ping, its grace time tells
        ("https://example.org/alive", WHY, None),
    ],
)  # fmt: skip
def test_ping_url(url: str, blind: str, expected: str | None) -> None:
    assert ping_url(url, blind=blind) == expected


def test_a_long_reason_is_cut_for_uptime_kuma() -> None:
    url = ping_url("https://kuma.example/api/push/Tk3n", blind="x" * 500)
    assert url is not None and url.endswith("&msg=" + "x" * 200)


def test_ping_gets_the_url_and_reports_what_went_wrong() -> None:
    got: list[str] = []
    routes = {"/ping/abc": (200, "OK"), "/ping/abc/fail": (500, "oops")}
    with httpservers.serve(routes, got=got) as base:
        assert ping(f"{base}/ping/abc") == ""
        assert ping(f"{base}/ping/abc/fail") == "HTTP 500 Internal Server Error"
        assert ping(f"{base}/nothing") == "HTTP 404 Not Found"
    assert got == ["/ping/abc", "/ping/abc/fail", "/nothing"]


def test_a_closed_port_is_an_error_that_never_quotes_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/ping/s3cr3t-uuid"
    problem = ping(url, timeout=2.0)
    assert problem.startswith("ConnectError: ")
    assert "s3cr3t" not in problem
