"""notify: rendering tables (pure), then real deliveries to HTTP and SMTP sinks on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import apprise
import pytest

from blmonitor.errors import ConfigError
from blmonitor.models import Event, EventKind, Severity
from blmonitor.monitor.notify import (
    Delivery,
    Message,
    Notifier,
    format_duration,
    format_time,
    render_batch,
    render_findings,
    render_test_message,
)
from tests.conftest import SMTPSink

DEPLOY = Path(__file__).parent.parent / "deploy" / "apprise.yml"
HOST = "mail.example.com"
T0 = datetime(2026, 11, 1, 8, 15, tzinfo=UTC)
LISTED_AT = T0
DELISTED_AT = T0 + timedelta(hours=3, minutes=12, seconds=40)

SBL = Event(
    EventKind.LISTED, Severity.CRITICAL, LISTED_AT, target="203.0.113.5", zone="zen.spamhaus.org",
    codes=("127.0.0.2",), meaning="SBL: Spamhaus Block List, a verified spam source or operation",
    txt=("Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL1",),
    delist_url="https://check.spamhaus.org/",
)  # fmt: skip
PBL = Event(
    EventKind.LISTED, Severity.INFO, LISTED_AT, target="203.0.113.5", zone="zen.spamhaus.org",
    codes=("127.0.0.10",), meaning="PBL (ISP): the IP's owner says it should not send mail directly to MX servers",
    delist_url="https://check.spamhaus.org/results/?query=203.0.113.5",
)  # fmt: skip
DELISTED = Event(
    EventKind.DELISTED, Severity.CRITICAL, DELISTED_AT, target="203.0.113.9", zone="bl.spamcop.net",
    codes=("127.0.0.2",), since=LISTED_AT,
)  # fmt: skip
UNUSABLE = Event(
    EventKind.ZONE_UNUSABLE, Severity.WARNING, T0, zone="bl.spamcop.net",
    detail="answers 127.0.0.2 for every address (lists everything)",
)  # fmt: skip
REFUSED = Event(
    EventKind.RESOLVER_REFUSED, Severity.WARNING, T0, zone="zen.spamhaus.org", codes=("127.255.255.254",),
    meaning="query through a public/open resolver: use a local recursive resolver or a DQS key",
)  # fmt: skip
RECOVERED = Event(
    EventKind.ZONE_RECOVERED, Severity.WARNING, DELISTED_AT, zone="bl.spamcop.net", since=T0
)
MOVED = Event(
    EventKind.ADDRESS_CHANGED, Severity.INFO, T0, target="203.0.113.77", detail="was 203.0.113.5"
)
FAILING = Event(EventKind.CHECKS_FAILING, Severity.WARNING, T0, detail="no resolver answered")
WORKING = Event(EventKind.CHECKS_RECOVERED, Severity.WARNING, DELISTED_AT, since=T0)

LISTED_STEP = (
    "  next step: find the cause first (open relay, compromised account, infected host, NDR "
    "backscatter), fix it, then request delisting at https://check.spamhaus.org/; while listed, "
    "consider relaying through your ISP's smart host"
)


# --- rendering [pure] -------------------------------------------------------------------------


def test_listed_renders_exactly() -> None:
    message = render_batch([SBL], host=HOST)
    assert message == Message(
        title="[blmonitor] mail.example.com: 203.0.113.5 LISTED on zen.spamhaus.org",
        body="\n".join([
            "203.0.113.5 LISTED on zen.spamhaus.org [critical]",
            "  codes: 127.0.0.2 — SBL: Spamhaus Block List, a verified spam source or operation",
            "  since: 2026-11-01T08:15Z",
            "  list says: Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL1",
            "  delist: https://check.spamhaus.org/",
            LISTED_STEP,
            "",
            "-- ",
            "blmonitor on mail.example.com",
        ]),
        severity=Severity.CRITICAL,
        kinds=("listed",),
        payload={
            "server": "mail.example.com", "kinds": ["listed"], "severity": "critical",
            "all_clear": False,
            "events": [{
                "event": "listed", "target": "203.0.113.5", "zone": "zen.spamhaus.org",
                "codes": ["127.0.0.2"], "severity": "critical",
                "meaning": "SBL: Spamhaus Block List, a verified spam source or operation",
                "since": "2026-11-01T08:15:00+00:00", "ended": None,
                "delist_url": "https://check.spamhaus.org/", "detail": None,
                "txt": ["Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL1"],
            }],
        },
    )  # fmt: skip


@pytest.mark.parametrize(
    ("events", "title", "lines"),
    [
        ([DELISTED], "203.0.113.9 delisted from bl.spamcop.net", [
            "203.0.113.9 delisted from bl.spamcop.net [resolved]",
            "  codes: 127.0.0.2",
            "  was listed: 2026-11-01T08:15Z → 2026-11-01T11:27Z (for 3 h 12 min)",
            "  next step: no action; keep watching",
        ]),
        ([UNUSABLE], "zone bl.spamcop.net unusable", [
            "zone bl.spamcop.net unusable [warning]",
            "  since: 2026-11-01T08:15Z",
            "  detail: answers 127.0.0.2 for every address (lists everything)",
            "  next step: its answers are ignored until it recovers; if it is dead, remove it from [monitor] zones",
        ]),
        ([REFUSED], "zen.spamhaus.org refuses our resolver", [
            "zen.spamhaus.org refuses our resolver [warning]",
            "  codes: 127.255.255.254 — query through a public/open resolver: use a local recursive resolver or a DQS key",
            "  next step: use a local recursive resolver (unbound) or a Spamhaus DQS key",
        ]),
        ([PBL], "203.0.113.5 LISTED on zen.spamhaus.org", [
            "203.0.113.5 LISTED on zen.spamhaus.org [info]",
            "  delist: https://check.spamhaus.org/results/?query=203.0.113.5",
            "  next step: this is a policy listing, not a spam report: the address is in a range its owner says should not send mail directly. "
            "Ask your ISP for a static address with matching reverse DNS (rDNS) and to take it out of the policy list "
            "(or remove it yourself at https://check.spamhaus.org/results/?query=203.0.113.5), or relay through your ISP's smart host",
        ]),
        ([RECOVERED], "zone bl.spamcop.net usable again", [
            "  was unusable: 2026-11-01T08:15Z → 2026-11-01T11:27Z (for 3 h 12 min)",
            "  next step: no action; its answers count again",
        ]),
        ([MOVED], "public address changed to 203.0.113.77", [
            "  detail: was 203.0.113.5",
            "  next step: the new address is now monitored; check its reputation before sending",
        ]),
        ([FAILING], "UNKNOWN: nothing checked since 2026-11-01T08:15Z", [
            "  detail: no resolver answered",
            "  next step: until checks work again, listings go unnoticed (none is ended meanwhile): fix what the detail names, and run `blmonitor check` by hand to see it work",
        ]),
        ([WORKING], "checking again", [
            "  were failing: 2026-11-01T08:15Z → 2026-11-01T11:27Z (for 3 h 12 min)",
            "  next step: no action; every zone is checked again",
        ]),
    ],
)  # fmt: skip
def test_render_one_event(events: list[Event], title: str, lines: list[str]) -> None:
    message = render_batch(events, host=HOST)
    assert message.title == f"[blmonitor] {HOST}: {title}"
    body = message.body.splitlines()
    for line in lines:
        assert line in body
    assert message.kinds == (str(events[0].kind),)


def test_mixed_batch_puts_the_worst_first_and_is_one_message() -> None:
    message = render_batch([UNUSABLE, DELISTED, PBL, SBL], host=HOST, title_prefix="[mx1]")
    assert (
        message.title
        == "[mx1] mail.example.com: 203.0.113.5 LISTED on zen.spamhaus.org (+3 more changes)"
    )
    assert message.severity is Severity.CRITICAL
    # critical problems, critical endings, warning, info; each event once
    assert message.kinds == ("listed", "delisted", "zone-unusable")
    headlines = [line for line in message.body.splitlines() if line and not line.startswith(" ")]
    assert headlines == [
        "203.0.113.5 LISTED on zen.spamhaus.org [critical]",
        "203.0.113.9 delisted from bl.spamcop.net [resolved]",
        "zone bl.spamcop.net unusable [warning]",
        "203.0.113.5 LISTED on zen.spamhaus.org [info]",
        "-- ",
        "blmonitor on mail.example.com",
    ]


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        ([Severity.INFO], Severity.INFO),
        ([Severity.INFO, Severity.WARNING], Severity.WARNING),
        ([Severity.WARNING, Severity.CRITICAL, Severity.INFO], Severity.CRITICAL),
    ],
)
def test_message_severity_is_the_highest(severities: list[Severity], expected: Severity) -> None:
    events = [
        Event(EventKind.ZONE_UNUSABLE, s, T0, zone=f"z{i}.test") for i, s in enumerate(severities)
    ]
    message = render_batch(events, host=HOST)
    assert message.severity is expected
    assert message.title.endswith(f"(+{len(events) - 1} more changes)") == (len(events) > 2)


def test_two_events_say_one_more_change() -> None:
    assert render_batch([SBL, DELISTED], host=HOST).title.endswith("(+1 more change)")


def test_spam_plus_policy_codes_is_a_spam_listing() -> None:
    both = Event(EventKind.LISTED, Severity.CRITICAL, T0, target="203.0.113.5", zone="zen.spamhaus.org",
                 codes=("127.0.0.2", "127.0.0.10"), meaning="SBL: spam source; PBL (ISP): no direct mail")  # fmt: skip
    body = render_batch([both], host=HOST).body
    assert "  codes: 127.0.0.2, 127.0.0.10 — SBL: spam source; PBL (ISP): no direct mail" in body
    assert "next step: find the cause first" in body
    assert "delisting at the list's website" in body


def test_ending_without_a_start_says_when_it_ended() -> None:
    event = Event(
        EventKind.DELISTED, Severity.WARNING, DELISTED_AT, target="203.0.113.9", zone="b.test"
    )
    assert "  ended: 2026-11-01T11:27Z" in render_batch([event], host=HOST).body.splitlines()


def test_empty_batch_is_a_bug() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        render_batch([], host=HOST)


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(minutes=12, seconds=59), "12 min"),
        (timedelta(hours=3, minutes=12), "3 h 12 min"),
        (timedelta(hours=1), "1 h 0 min"),
        (timedelta(days=2, hours=4, minutes=59), "2 d 4 h"),
        (timedelta(seconds=-30), "less than a minute"),  # clocks disagree: never negative
    ],
)
def test_format_duration(span: timedelta, text: str) -> None:
    assert format_duration(span) == text


def test_format_time_is_utc_to_the_minute() -> None:
    from datetime import timezone

    cest = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 7, 1, 10, 5, 59, tzinfo=cest)) == "2026-07-01T08:05Z"
    assert format_time(datetime(2026, 7, 1, 10, 5)) == "2026-07-01T10:05Z"  # naive: taken as UTC


def test_render_test_message() -> None:
    message = render_test_message(HOST, "[blmonitor]")
    assert message.title == "[blmonitor] mail.example.com: test notification"
    assert message.severity is Severity.CRITICAL
    assert message.kinds == ("test",)
    assert "test notification from blmonitor on mail.example.com" in message.body


NO_PTR = ("203.0.113.6 has no PTR record (reverse DNS): receivers such as Gmail and Spectrum "
          "refuse mail from an address without forward-confirmed reverse DNS; fix: ask whoever "
          "holds 203.0.113.6 (your ISP or host) to set its PTR to mail.example.com")  # fmt: skip
NO_DMARC = ('nodmarc.example publishes no DMARC record; fix: publish `_dmarc.nodmarc.example. '
            'TXT "v=DMARC1; p=none"`')  # fmt: skip
NDR = ("1,200 of 1,300 messages are bounces (null sender) to 900 external addresses in 40 "
       "domains: NDR attack?")  # fmt: skip
SASL = ("sasl user bob sent 5,000 messages to 300 domains in one hour (2026-12-01 06:00; "
        "median 20/h): a stolen password?")  # fmt: skip


@pytest.mark.parametrize(
    ("findings", "title"),
    [
        ([("posture-no-ptr", NO_PTR)], "new sign of a cause: 203.0.113.6 has no PTR record"),
        ([("posture-no-ptr", NO_PTR), ("posture-no-dmarc", NO_DMARC)],
         "2 new signs of a cause: 203.0.113.6 has no PTR record …"),
        ([("queue-ndr-attack", NDR)],
         "new sign of a cause: 1,200 of 1,300 messages are bounces to 900 …"),
        ([("log-sasl", SASL)],
         "new sign of a cause: sasl user bob sent 5,000 messages to 300 …"),
        ([("log-x", "x" * 120)], "new sign of a cause: " + "x" * 48 + "…"),  # no word to cut at
    ],
)  # fmt: skip
def test_render_findings_titles_each_finding_by_its_gist_within_100_characters(
    findings: list[tuple[str, str]], title: str
) -> None:
    message = render_findings(findings, host=HOST)
    assert message.title == f"[blmonitor] {HOST}: {title}"
    assert len(message.title) <= 100
    assert message.body.splitlines()[: len(findings)] == [f"{k}: {m}" for k, m in findings]
    assert message.payload["findings"] == [{"kind": k, "message": m} for k, m in findings]
    assert message.payload["kinds"] == list(dict.fromkeys(k for k, _ in findings))
    assert message.severity is Severity.WARNING


# --- sinks on 127.0.0.1 -----------------------------------------------------------------------


@dataclass
class HTTPSink:
    base: str  # json://127.0.0.1:PORT
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)  # path → how many 500s first

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.posts if p == path]


@pytest.fixture
def http_sink() -> Iterator[HTTPSink]:
    sink = HTTPSink(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            status = 200
            if sink.fail_first.get(self.path, 0) > 0:
                sink.fail_first[self.path] -= 1
                status = 500
            else:
                sink.posts.append((self.path, json.loads(data)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    sink.base = f"json://127.0.0.1:{server.server_address[1]}"
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- delivery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "notify_type"),
    [
        ([SBL, PBL], "failure"),
        ([UNUSABLE], "warning"),
        ([MOVED], "info"),
        ([DELISTED, RECOVERED], "success"),  # good news only, whatever its severity
    ],
)
def test_json_webhook_receives_title_body_and_type(
    http_sink: HTTPSink, events: list[Event], notify_type: str
) -> None:
    notifier = Notifier(urls=[f"{http_sink.base}/hook/json"], min_severity=Severity.INFO)
    message = render_batch(events, host=HOST)
    assert notifier.send(message) == Delivery(ok=True, attempts=1)
    [body] = http_sink.bodies("/hook/json")
    assert (body["title"], body["message"], body["type"]) == (
        message.title,
        message.body,
        notify_type,
    )


def test_test_message_is_sent_as_info(http_sink: HTTPSink) -> None:
    notifier = Notifier(urls=[f"{http_sink.base}/t"], min_severity=Severity.CRITICAL)
    assert notifier.send(render_test_message(HOST, "[blmonitor]")).ok
    assert [b["type"] for b in http_sink.bodies("/t")] == ["info"]


def test_mail_arrives_with_subject_and_body(smtp_sink: SMTPSink) -> None:
    url = f"mailto://127.0.0.1:{smtp_sink.port}?from=blmonitor@example.com&to=admin@example.com"
    message = render_batch([SBL, DELISTED], host=HOST)
    assert Notifier(urls=[url]).send(message) == Delivery(ok=True, attempts=1)
    [mail] = smtp_sink.messages
    assert smtp_sink.envelopes == [("blmonitor@example.com", ["admin@example.com"])]
    assert mail["Subject"] == message.title
    assert mail["X-Application"] == "blmonitor"
    assert mail.get_content_type() == "text/plain"  # line breaks kept, no HTML rewrite
    assert mail.get_content().replace("\r\n", "\n").rstrip("\n") == message.body


def test_mail_with_smtp_auth_masks_the_password(smtp_sink: SMTPSink) -> None:
    url = f"mailto://alerts:s3cret%20pass@127.0.0.1:{smtp_sink.port}?from=blmonitor@example.com&to=admin@example.com"
    notifier = Notifier(urls=[url])
    assert notifier.targets() == [
        f"mailto://alerts:****@127.0.0.1:{smtp_sink.port}/admin@example.com"
    ]
    assert notifier.send(render_batch([SBL], host=HOST)).ok
    assert smtp_sink.logins == [("alerts", "s3cret pass")]
    assert len(smtp_sink.messages) == 1


def test_closed_port_fails_after_retries_without_raising() -> None:
    sleeps = Sleeps()
    url = f"json://bob:hunter2@127.0.0.1:{free_port()}/hook?+X-Token=t0ps3cr3t"
    notifier = Notifier(urls=[url], retries=4, sleep=sleeps)
    delivery = notifier.send(render_batch([SBL], host=HOST))
    assert delivery.ok is False
    assert delivery.attempts == 4
    assert sleeps == [2.0, 4.0, 8.0]  # exponential backoff, none after the last attempt
    assert re.fullmatch(
        r"json://bob:\*\*\*\*@127\.0\.0\.1:\d+/hook: failed: A Connection error occurred "
        r"sending JSON notification to 127\.0\.0\.1",
        delivery.error,
    )
    assert "hunter2" not in delivery.error and "t0ps3cr3t" not in delivery.error


def test_only_failed_targets_are_retried(http_sink: HTTPSink) -> None:
    http_sink.fail_first["/flaky"] = 2
    sleeps = Sleeps()
    notifier = Notifier(
        urls=[f"{http_sink.base}/steady", f"{http_sink.base}/flaky"],
        retries=3,
        sleep=sleeps,
        backoff=0.5,
    )
    assert notifier.send(render_batch([SBL], host=HOST)) == Delivery(ok=True, attempts=3)
    assert len(http_sink.bodies("/steady")) == 1
    assert len(http_sink.bodies("/flaky")) == 1
    assert sleeps == [0.5, 1.0]


def test_partial_failure_names_only_the_failed_target(http_sink: HTTPSink) -> None:
    dead = f"json://127.0.0.1:{free_port()}/dead"
    notifier = Notifier(urls=[f"{http_sink.base}/ok", dead], retries=2, sleep=Sleeps())
    delivery = notifier.send(render_batch([SBL], host=HOST))
    assert (delivery.ok, delivery.attempts) == (False, 2)
    assert delivery.error.startswith(f"{dead}: failed: A Connection error occurred")
    assert len(http_sink.bodies("/ok")) == 1


def test_an_exception_in_apprise_is_a_failed_delivery(
    http_sink: HTTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("POST https://hooks.example/T0PS3CR3T failed")

    notifier = Notifier(urls=[f"{http_sink.base}/x"], retries=2, sleep=Sleeps())
    monkeypatch.setattr(apprise.Apprise, "notify", explode)
    delivery = notifier.send(render_batch([SBL], host=HOST))
    assert delivery == Delivery(
        ok=False,
        attempts=2,
        error=f"{http_sink.base}/x: failed: apprise raised RuntimeError",
        failed=(f"{http_sink.base}/x",),
    )


@pytest.mark.parametrize(
    ("min_severity", "events", "sent"),
    [
        (Severity.WARNING, [PBL], False),
        (Severity.WARNING, [UNUSABLE], True),
        (Severity.WARNING, [PBL, UNUSABLE], True),  # the batch is sent whole
        (Severity.CRITICAL, [UNUSABLE], False),
        (Severity.CRITICAL, [DELISTED], True),  # an ending keeps the severity of what it ends
        (Severity.INFO, [MOVED], True),
    ],
)
def test_min_severity(
    http_sink: HTTPSink, min_severity: Severity, events: list[Event], sent: bool
) -> None:
    notifier = Notifier(urls=[f"{http_sink.base}/m"], min_severity=min_severity)
    delivery = notifier.send(render_batch(events, host=HOST))
    if sent:
        assert delivery == Delivery(ok=True, attempts=1)
        assert len(http_sink.bodies("/m")) == 1
    else:
        assert delivery == Delivery(ok=True, attempts=0, error="below min_severity")
        assert http_sink.posts == []


@pytest.mark.parametrize(
    ("severity", "paths"),
    [
        (Severity.CRITICAL, ["/critical", "/warning", "/info", "/untagged", "/chat", "/always"]),
        (Severity.WARNING, ["/warning", "/info", "/untagged", "/chat", "/always"]),
        (Severity.INFO, ["/info", "/untagged", "/chat", "/always"]),
    ],
)
def test_severity_tags_name_the_lowest_severity_wanted(
    http_sink: HTTPSink, tmp_path: Path, severity: Severity, paths: list[str]
) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text(
        "version: 1\nurls:\n"
        f"  - {http_sink.base}/critical:\n      - tag: critical, email\n"
        f"  - {http_sink.base}/warning:\n      - tag: warning\n"
        f"  - {http_sink.base}/info:\n      - tag: info\n"
        f"  - {http_sink.base}/untagged\n"
        f"  - {http_sink.base}/chat:\n      - tag: chat\n"
        f"  - {http_sink.base}/always:\n      - tag: always\n"
    )
    notifier = Notifier(apprise_config=config, min_severity=Severity.INFO)
    event = Event(EventKind.ZONE_UNUSABLE, severity, T0, zone="bl.test")
    assert notifier.send(render_batch([event], host=HOST)) == Delivery(ok=True, attempts=1)
    assert sorted(p for p, _ in http_sink.posts) == sorted(paths)


def test_no_target_for_this_severity_is_not_a_failure(http_sink: HTTPSink, tmp_path: Path) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text(f"version: 1\nurls:\n  - {http_sink.base}/pager:\n      - tag: critical\n")
    notifier = Notifier(apprise_config=config, min_severity=Severity.INFO)
    assert notifier.targets() == [f"{http_sink.base}/pager [critical]"]
    delivery = notifier.send(render_batch([UNUSABLE], host=HOST))
    assert delivery == Delivery(ok=True, attempts=0, error="no target takes warning messages")


def test_no_targets_at_all_is_not_delivered() -> None:
    notifier = Notifier()
    assert notifier.targets() == []
    delivery = notifier.send(render_test_message(HOST, "[blmonitor]"))
    assert delivery == Delivery(ok=False, attempts=0, error="no notification targets configured")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "json://bob:hunter2@127.0.0.1:8089/hook?+X-Token=t0ps3cr3t",
            "json://bob:****@127.0.0.1:8089/hook",
        ),
        (
            "jsons://hooks.example.com/hooks/a1b2c3d4e5f6g7h8i9",
            "jsons://hooks.example.com/hooks/a...9",
        ),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "slack://T...2/A...D/T...Q"),
        (
            "ntfys://alice:hunter2@ntfy.example.com/alerts",
            "ntfys://alice:****@ntfy.example.com/alerts",
        ),
    ],
)
def test_targets_mask_secrets(url: str, shown: str) -> None:
    [line] = Notifier(urls=[url]).targets()
    assert line == shown
    for secret in ("hunter2", "t0ps3cr3t", "a1b2c3d4e5f6g7h8i9", "TIiajkdnlazkcOXrIdevi7FQ"):
        assert secret not in line


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (
            {"urls": ["nosuchservice://user:hunter2@example.com"]},
            r"notify URL #1 \(nosuchservice://…\) is not a URL apprise can use",
        ),
        ({"urls": ["just text"]}, r"notify URL #1 \(\?://…\)"),
        ({"apprise_config": Path("/nonexistent/apprise.yml")}, "apprise config file not found"),
        ({"retries": 0}, "at least 1"),
    ],
)
def test_unusable_settings_are_config_errors(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error) as caught:
        Notifier(**kwargs)
    assert "hunter2" not in str(caught.value)


def test_a_broken_config_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text("version: 1\nurls: [\n")
    with pytest.raises(ConfigError, match="no usable notification URL"):
        Notifier(apprise_config=config)


def test_deploy_sample_as_shipped_has_no_target() -> None:
    with pytest.raises(ConfigError, match="no usable notification URL"):
        Notifier(apprise_config=DEPLOY)


def test_deploy_sample_examples_parse(tmp_path: Path) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text(re.sub(r"(?m)^  # ", "  ", DEPLOY.read_text()))
    targets = Notifier(apprise_config=config).targets()
    assert targets == [
        "mailtos://alerts:****@smtp.example.com/postmaster@example.com [warning]",
        "mailto://localhost/postmaster@example.com [info]",
        "slack://T...0/B...0/X...X/#mail-alerts [warning]",
        "matrixs://blmonitor-bot:****@matrix.example.org/#mail-alerts:example.org [warning]",
        "ntfys://ntfy.example.com/blmonitor-3f9c2a [critical]",
        "jsons://blmonitor:****@hooks.example.com/blmonitor [warning]",
    ]
    assert not any(
        s in t for t in targets for s in ("app-password", "bot-password", "webhook-secret")
    )


def test_rendering_does_not_import_apprise() -> None:
    import subprocess
    import sys

    code = "import sys, blmonitor.monitor.notify as n; n.render_batch; assert 'apprise' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_retry_goes_only_to_the_targets_still_owed(http_sink: HTTPSink) -> None:
    dead = "json://127.0.0.1:9/nothing-listens"
    notifier = Notifier(urls=[f"{http_sink.base}/ok", dead], retries=1, sleep=Sleeps())
    message = render_batch([SBL], host=HOST)
    first = notifier.send(message)
    assert (first.ok, first.failed) == (False, (dead,))
    again = notifier.send(message, only=set(first.failed))
    assert (again.ok, again.failed) == (False, (dead,))
    assert len(http_sink.bodies("/ok")) == 1
