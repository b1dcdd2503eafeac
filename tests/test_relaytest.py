"""The open-relay probe: the attempts table, aiosmtpd relays (open, closed, unruly) and scripted
servers on 127.0.0.1, and — when tests/postfixlab.py is there — a real Postfix, open and closed.
Every server records each command it receives, so each test also proves DATA never arrives."""

from __future__ import annotations

import json
import re
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from blmonitor.causes.relaytest import (
    Attempt,
    Outcome,
    RelayVerdict,
    build_attempts,
    probe,
    render_report,
    report_json,
)
from tests import dnsservers
from tests.postfixlab import PostfixLab, postfix_instance, postfix_missing

SAFE_VERBS = {"EHLO", "HELO", "MAIL", "RCPT", "RSET", "QUIT"}

# --- the attempts (pure) ----------------------------------------------------------------------

NAMED = build_attempts("mx.example.com", local_domain="example.com", target_ip="192.0.2.25")
BY_NAME = {a.name: a for a in NAMED}


@pytest.mark.parametrize(
    ("name", "mail_from", "rcpt_to"),
    [
        ("external-sender", "relaytest@sender.invalid", "relaytest@relaytest.invalid"),
        ("null-sender", "", "relaytest@relaytest.invalid"),
        ("unqualified-sender", "relaytest", "relaytest@relaytest.invalid"),
        ("local-sender", "relaytest@example.com", "relaytest@relaytest.invalid"),
        ("host-sender", "relaytest@mx.example.com", "relaytest@relaytest.invalid"),
        ("ip-sender", "relaytest@[192.0.2.25]", "relaytest@relaytest.invalid"),
        ("trailing-dot", "relaytest@sender.invalid", "relaytest@relaytest.invalid."),
        ("percent-hack", "relaytest@sender.invalid", "relaytest%relaytest.invalid@example.com"),
        ("percent-hack-ip", "relaytest@sender.invalid", "relaytest%relaytest.invalid@[192.0.2.25]"),
        ("bang-path", "relaytest@sender.invalid", "relaytest.invalid!relaytest@example.com"),
        ("bang-path-bare", "relaytest@sender.invalid", "relaytest.invalid!relaytest"),
        ("quoted-at", "relaytest@sender.invalid", '"relaytest@relaytest.invalid"@example.com'),
        ("quoted-at-bare", "relaytest@sender.invalid", '"relaytest@relaytest.invalid"'),
        ("source-route", "relaytest@sender.invalid", "@example.com:relaytest@relaytest.invalid"),
    ],
)
def test_attempts_for_a_named_host(name, mail_from, rcpt_to):
    assert (BY_NAME[name].mail_from, BY_NAME[name].rcpt_to) == (mail_from, rcpt_to)


def test_attempts_are_all_listed_above_and_unique():
    assert len(NAMED) == 14 == len(BY_NAME)
    assert all("relaytest.invalid" in a.rcpt_to for a in NAMED)  # every recipient is outside


@pytest.mark.parametrize(
    ("target", "kwargs", "local", "absent"),
    [
        ("192.0.2.25", {}, "[192.0.2.25]", {"host-sender", "ip-sender", "percent-hack-ip"}),
        (
            "2001:db8::25",
            {},
            "[IPv6:2001:db8::25]",
            {"host-sender", "ip-sender", "percent-hack-ip"},
        ),
        ("MX.Example.COM.", {}, "mx.example.com", {"host-sender", "ip-sender", "percent-hack-ip"}),
        (
            "mx.example.com",
            {"local_domain": "example.com"},
            "example.com",
            {"ip-sender", "percent-hack-ip"},
        ),
        ("192.0.2.25", {"local_domain": "example.com"}, "example.com", {"host-sender"}),
    ],
)
def test_local_domain_stands_in(target, kwargs, local, absent):
    attempts = build_attempts(target, **kwargs)
    names = {a.name for a in attempts}
    assert not names & absent
    assert {a.name: a for a in attempts}[
        "percent-hack"
    ].rcpt_to == f"relaytest%relaytest.invalid@{local}"


def test_outside_domains_and_user_are_the_callers():
    attempts = build_attempts(
        "mx.example.com", external_domain="ext.test", sender_domain="from.test", user="probe"
    )
    first = attempts[0]
    assert (first.mail_from, first.rcpt_to) == ("probe@from.test", "probe@ext.test")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: build_attempts(""), "need a target"),
        (lambda: Attempt("x", "", "a@b\r\nDATA", "c@d"), "cannot go into an SMTP command"),
        (lambda: Attempt("x", "", "a@b", "<c@d>"), "cannot go into an SMTP command"),
        (lambda: Attempt("x", "", " a@b", "c@d"), "cannot go into an SMTP command"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- aiosmtpd relays that record every command ------------------------------------------------


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP, noting every command verb it reads — known or not — before dispatch."""

    def __init__(self, handler: Any, *, transcript: list[str], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        methods = self._smtp_methods

        class Noting(
            dict[str, Any]
        ):  # every command line goes through this .get, DATA and BDAT too
            def get(self, command, default=None):
                transcript.append(command)
                return super().get(command, default)

        self._smtp_methods = Noting(methods)


class RecordingController(Controller):
    def __init__(self, handler: Any, transcript: list[str], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.transcript = transcript

    def factory(self) -> SMTP:
        return RecordingSMTP(self.handler, transcript=self.transcript, **self.SMTP_kwargs)


@dataclass
class Relay:
    """Accepts every recipient (open), or only plain ones at its own domain (closed)."""

    open: bool
    local: str = "lab.test"
    rcpt_limit: int = 0  # per session; 0: none. Past it: 421 (as Postfix after too many errors)
    refuse_mail: str = ""  # a reply to every MAIL FROM
    data_seen: list[bytes] = field(default_factory=list)
    sessions: int = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        session.rcpts = count = getattr(session, "rcpts", 0) + 1
        if self.rcpt_limit and count > self.rcpt_limit:
            return "421 4.7.0 Error: too many errors"
        local_part, _, domain = address.rpartition("@")
        plain = not any(c in local_part for c in '%!@:"')
        if self.open or (domain == self.local and plain):
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 Ok"
        return f"554 5.7.1 <{address}>: Relay access denied"

    async def handle_DATA(self, server, session, envelope):
        self.data_seen.append(envelope.content)
        return "250 2.0.0 queued"


@contextmanager
def relay(handler: Relay) -> Iterator[tuple[int, list[str]]]:
    transcript: list[str] = []
    port = dnsservers.free_port()
    controller = RecordingController(
        handler, transcript, hostname="127.0.0.1", port=port, server_hostname="relay.lab.test"
    )
    controller.start()
    try:
        yield port, transcript
    finally:
        controller.stop()


ATTEMPTS = build_attempts("127.0.0.1", local_domain="lab.test")


def assert_no_data(transcript: list[str], handler: Relay | None = None) -> None:
    assert transcript, "the server saw no command at all"
    assert set(transcript) <= SAFE_VERBS, transcript
    assert "DATA" not in transcript and "BDAT" not in transcript
    if handler is not None:
        assert handler.data_seen == []


def test_open_relay_is_reported_open_and_never_gets_data():
    handler = Relay(open=True)
    with relay(handler) as (port, transcript):
        report = probe("127.0.0.1", port, ATTEMPTS, timeout=5)
    assert_no_data(transcript, handler)
    assert report.verdict is RelayVerdict.OPEN and report.open
    accepted = {r.attempt.name for r in report.accepted}
    assert {
        "external-sender",
        "null-sender",
        "local-sender",
        "percent-hack",
        "bang-path",
    } <= accepted
    assert all(r.outcome is not Outcome.ERROR for r in report.results)
    assert transcript.count("MAIL") == len(ATTEMPTS)
    assert transcript.count("RSET") == len(ATTEMPTS)  # each attempt ends with RSET
    assert report.banner  # aiosmtpd's greeting


def test_closed_relay_is_reported_closed():
    handler = Relay(open=False)
    with relay(handler) as (port, transcript):
        report = probe("127.0.0.1", port, ATTEMPTS, timeout=5)
    assert_no_data(transcript, handler)
    assert report.verdict is RelayVerdict.CLOSED and not report.open
    assert {r.stage for r in report.results} == {"RCPT"}
    assert all(r.code >= 500 for r in report.results)
    assert "Relay access denied" in report.results[0].reply


def test_one_trick_is_enough_to_be_open():
    """A relay that only plain external recipients are kept from: the percent hack gets through."""

    class Sloppy(Relay):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.endswith("@lab.test"):
                return "250 2.1.5 Ok"
            return "554 5.7.1 Relay access denied"

    with relay(Sloppy(open=False)) as (port, transcript):
        report = probe("127.0.0.1", port, ATTEMPTS, timeout=5)
    assert_no_data(transcript)
    assert {r.attempt.name for r in report.accepted} == {"percent-hack", "bang-path", "quoted-at"}
    text = render_report(report)
    assert text.splitlines()[-1] == (
        f"OPEN RELAY: 127.0.0.1:{port} accepted 3 of {len(ATTEMPTS)} relay attempts"
        " (percent-hack, bang-path, quoted-at): close the relay before you ask for delisting"
    )


def sessions_of(transcript: list[str]) -> list[list[str]]:
    sessions: list[list[str]] = []
    for verb in transcript:
        if verb in ("EHLO", "HELO") and (not sessions or "QUIT" in sessions[-1]):
            sessions.append([])
        sessions[-1].append(verb)
    return sessions


def test_attempts_are_split_over_sessions():
    handler = Relay(open=False)
    with relay(handler) as (port, transcript):
        report = probe("127.0.0.1", port, ATTEMPTS, timeout=5, per_session=5)
    assert report.verdict is RelayVerdict.CLOSED
    assert [s.count("MAIL") for s in sessions_of(transcript)] == [5, 5, 3]


def test_a_421_after_progress_gets_a_new_session():
    handler = Relay(open=False, rcpt_limit=3)  # 421 at the fourth RCPT of every session
    with relay(handler) as (port, transcript):
        report = probe("127.0.0.1", port, ATTEMPTS, timeout=5, per_session=5)
    assert_no_data(transcript, handler)
    assert report.verdict is RelayVerdict.CLOSED
    assert [r.attempt.name for r in report.results] == [a.name for a in ATTEMPTS]
    sessions = sessions_of(transcript)
    assert len(sessions) == handler.sessions >= 4
    assert sum(s.count("MAIL") for s in sessions) > len(ATTEMPTS)  # the 421'd ones again


def test_refused_mail_from_is_a_refusal_at_mail():
    handler = Relay(open=True, refuse_mail="550 5.7.1 Sender rejected")
    with relay(handler) as (port, transcript):
        report = probe("127.0.0.1", port, ATTEMPTS[:3], timeout=5)
    assert_no_data(transcript, handler)
    assert "RCPT" not in transcript
    assert [(r.outcome, r.stage, r.code) for r in report.results] == [
        (Outcome.REFUSED, "MAIL", 550)
    ] * 3


def test_421_on_a_fresh_session_stops_the_probe():
    handler = Relay(open=True, refuse_mail="421 4.3.2 Service shutting down")
    with relay(handler) as (port, transcript):
        report = probe("127.0.0.1", port, ATTEMPTS[:3], timeout=5)
    assert_no_data(transcript, handler)
    assert report.verdict is RelayVerdict.UNKNOWN
    assert report.error == f"127.0.0.1:{port} answered MAIL with 421 4.3.2 Service shutting down"
    assert [r.outcome for r in report.results] == [Outcome.ERROR] * 3
    assert report.results[1].reply == f"not tried: {report.error}"


# --- scripted servers for what aiosmtpd will not do ------------------------------------------

Script = Callable[[Callable[[str], None], Callable[[], str]], None]


@contextmanager
def scripted(script: Script) -> Iterator[tuple[int, list[str]]]:
    """A TCP server on 127.0.0.1 running `script(send, receive)` per connection; lines kept."""
    lines: list[str] = []

    class Handle(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            def send(text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

            def receive() -> str:
                line = self.rfile.readline().decode().rstrip("\r\n")
                if line:
                    lines.append(line)
                return line

            with suppress(OSError):
                script(send, receive)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], lines
    finally:
        server.shutdown()
        server.server_close()


def greet_then(replies: dict[str, str], *, after: int = 99) -> Script:
    """A server that answers each verb from `replies` ("" = hang up) and hangs up after N lines."""

    def script(send: Callable[[str], None], receive: Callable[[], str]) -> None:
        send("220 scripted.test ESMTP")
        for _ in range(after):
            line = receive()
            if not line:
                return
            reply = replies.get(line.split(" ", 1)[0].split(":", 1)[0].upper(), "250 Ok")
            if not reply:
                return
            send(reply)

    return script


def test_a_server_that_accepts_everything_is_never_sent_data():
    """Even a server that would take DATA (354) gets none: only the allowed verbs are written."""
    with scripted(
        greet_then({"DATA": "354 go ahead", "EHLO": "250-scripted.test\r\n250 8BITMIME"})
    ) as (port, lines):
        report = probe("127.0.0.1", port, ATTEMPTS, timeout=5)
    assert report.verdict is RelayVerdict.OPEN and len(report.accepted) == len(ATTEMPTS)
    verbs = [line.split(" ", 1)[0].split(":", 1)[0].upper() for line in lines]
    assert set(verbs) <= SAFE_VERBS, lines
    assert f"RCPT TO:<{ATTEMPTS[0].rcpt_to}>" in lines  # the address goes out exactly as built
    assert "RCPT TO:<@lab.test:relaytest@relaytest.invalid>" in lines
    assert "MAIL FROM:<>" in lines


def test_helo_fallback_when_ehlo_is_refused():
    with scripted(greet_then({"EHLO": "502 5.5.2 Error: command not recognized"})) as (port, lines):
        report = probe("127.0.0.1", port, ATTEMPTS[:1], timeout=5, helo="probe.test")
    assert [line.upper() for line in lines[:2]] == ["EHLO PROBE.TEST", "HELO PROBE.TEST"]
    assert report.verdict is RelayVerdict.OPEN


def silent(send: Callable[[str], None], receive: Callable[[], str]) -> None:
    receive()  # no banner: wait for the client to give up


def refused_port() -> int:
    return dnsservers.free_port()  # nothing listens there


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (lambda send, receive: None, "{where} closed the connection at connect"),
        (
            lambda send, receive: send("554 5.7.1 No SMTP service here"),
            "{where} greeted us with 554 5.7.1 No SMTP service here: it refuses our connections",
        ),
        (
            lambda send, receive: send("421 4.7.0 Try again later"),
            "{where} greeted us with 421 4.7.0 Try again later: it refuses our connections",
        ),
        (silent, "{where}: no answer to connect within 0.5 s"),
        (
            greet_then({"EHLO": "421 4.7.0 Too busy"}),
            "{where} answered EHLO with 421 4.7.0 Too busy",
        ),
        (
            greet_then({"EHLO": "502 no", "HELO": "501 no"}),
            "{where} refused both EHLO and HELO: 501 no",
        ),
        (greet_then({"EHLO": ""}), "{where} closed the connection at EHLO"),
        (greet_then({"MAIL": ""}), "{where} closed the connection at MAIL"),
        (greet_then({"RCPT": "XYZ what"}), "{where}: unreadable reply to RCPT: {reply}"),
        (
            greet_then({"MAIL": "250 " + "x" * 9000}),
            "{where}: unreadable reply to MAIL: 500 Line too long.",
        ),
        (None, "{where}: connection refused (is an SMTP server listening there?)"),
    ],
    ids=[
        "drop",
        "banner-554",
        "banner-421",
        "timeout",
        "ehlo-421",
        "helo-refused",
        "drop-at-ehlo",
        "drop-at-mail",
        "garbled",
        "long-line",
        "refused",
    ],
)
def test_session_problems_are_one_clear_line(script, error):
    if script is None:
        port = refused_port()
        report = probe("127.0.0.1", port, ATTEMPTS[:2], timeout=0.5)
    else:
        with scripted(script) as (port, _):
            report = probe("127.0.0.1", port, ATTEMPTS[:2], timeout=0.5)
    expected = error.format(
        where=f"127.0.0.1:{port}", reply="500 Syntax error, command unrecognized"
    )
    assert report.verdict is RelayVerdict.UNKNOWN
    if "{reply}" in error:  # smtplib's text for a garbled line
        assert report.error.startswith(f"127.0.0.1:{port}: unreadable reply to RCPT")
    else:
        assert report.error == expected
    assert len(report.results) == 2 and all(r.outcome is Outcome.ERROR for r in report.results)
    assert (
        render_report(report).splitlines()[-1]
        == f"UNKNOWN: 127.0.0.1:{port} could not be tested to the end: {report.error}"
    )
    assert "\n" not in report.error


def test_a_drop_after_progress_retries_on_a_new_session():
    sessions: list[int] = []

    def flaky(send, receive):
        sessions.append(0)
        send("220 scripted.test ESMTP")
        while line := receive():
            verb = line[:4].upper()
            if verb == "MAIL" and len(sessions) == 1 and "<>" in line:
                return  # the first session dies at the second attempt's MAIL
            send("550 5.7.1 Relay access denied" if verb == "RCPT" else "250 Ok")

    with scripted(flaky) as (port, lines):
        report = probe("127.0.0.1", port, ATTEMPTS[:3], timeout=5)
    assert report.verdict is RelayVerdict.CLOSED, report
    assert len(sessions) == 2
    assert lines.count("MAIL FROM:<>") == 2  # tried again on the new session


def test_a_hang_up_at_rset_keeps_the_answer():
    with scripted(greet_then({"RCPT": "554 5.7.1 Relay access denied", "RSET": ""})) as (
        port,
        lines,
    ):
        report = probe("127.0.0.1", port, ATTEMPTS[:3], timeout=5)
    assert report.verdict is RelayVerdict.CLOSED
    assert sum(line.upper().startswith("EHLO") for line in lines) == 3  # a session per attempt


def test_an_unexpected_reply_is_an_error_of_that_attempt():
    with scripted(greet_then({"RCPT": "354 what now"})) as (port, _):
        report = probe("127.0.0.1", port, ATTEMPTS[:1], timeout=5)
    assert [(r.outcome, r.stage, r.code, r.reply) for r in report.results] == [
        (Outcome.ERROR, "RCPT", 354, "unexpected reply: what now")
    ]
    assert report.verdict is RelayVerdict.UNKNOWN and report.error == ""
    assert (
        render_report(report).splitlines()[-1]
        == f"UNKNOWN: 127.0.0.1:{port} could not be tested to the end: external-sender: unexpected reply: what now"
    )


# --- rendering ---------------------------------------------------------------------------------


def test_text_and_json_reports():
    handler = Relay(open=False)
    with relay(handler) as (port, _):
        report = probe("127.0.0.1", port, ATTEMPTS[:2], timeout=5)
    text = render_report(report)
    assert text.splitlines()[0].split() == [
        "attempt",
        "MAIL",
        "FROM",
        "RCPT",
        "TO",
        "result",
        "reply",
    ]
    assert (
        "  external-sender  <relaytest@sender.invalid>  <relaytest@relaytest.invalid>  refused  RCPT 554 5.7.1"
        in text
    )
    assert text.splitlines()[-1] == f"CLOSED: 127.0.0.1:{port} refused all 2 relay attempts"
    data = report_json(report)
    assert json.loads(json.dumps(data)) == data
    assert data["verdict"] == "closed" and data["open"] is False and data["error"] is None
    assert data["attempts"][1] == {
        "name": "null-sender",
        "description": "the null sender <> (a bounce) to an outside recipient",
        "mail_from": "",
        "rcpt_to": "relaytest@relaytest.invalid",
        "result": "refused",
        "stage": "RCPT",
        "code": 554,
        "reply": "5.7.1 <relaytest@relaytest.invalid>: Relay access denied",
    }


# --- a real Postfix -----------------------------------------------------------------------------


def postfix(settings: dict[str, str]) -> AbstractContextManager[PostfixLab]:
    """tests/postfixlab's throwaway Postfix with `settings` applied before it starts."""
    return postfix_instance(settings=settings)


# 127.0.0.1 is the outsider here: in mynetworks (the classic mistake) the relay is open.
REAL = {
    "open": {"mynetworks": "0.0.0.0/0", "mydestination": "blmtest.example"},
    "closed": {"mynetworks": "192.0.2.1/32", "mydestination": "blmtest.example"},
}


@pytest.mark.slow
@pytest.mark.skipif(bool(postfix_missing()), reason=postfix_missing() or "ok")
@pytest.mark.parametrize("case", ["open", "closed"])
def test_real_postfix(case):
    with postfix(REAL[case]) as lab:
        attempts = build_attempts("127.0.0.1", local_domain="blmtest.example")
        report = probe("127.0.0.1", lab.smtpd_port, attempts, timeout=10)
        log = lab.wait_log(r"(?s)(disconnect from [^\n]* mail=.*){2}")  # 13 attempts: 8 + 5
        queued = lab.queue_ids()
    text = render_report(report)
    if case == "open":
        assert report.verdict is RelayVerdict.OPEN, text
        assert {"external-sender", "null-sender", "local-sender"} <= {
            r.attempt.name for r in report.accepted
        }, text
    else:
        assert report.verdict is RelayVerdict.CLOSED, text
        assert "Relay access denied" in report.results[0].reply, text
    assert queued == []  # nothing was ever queued: DATA was never sent
    disconnects = re.findall(r"disconnect from .* mail=.*", log)
    assert len(disconnects) == 2 and all("rset=" in d and "data=" not in d for d in disconnects), (
        log
    )


def test_hostname_lookups_are_not_needed(resolver_guard):
    """The probe never asks the resolver for our own name (smtplib would, without local_hostname)."""
    asked = len(resolver_guard.fqdn_calls)  # the fixture's stand-in for socket.getfqdn counts
    with relay(Relay(open=False)) as (port, _):
        probe("127.0.0.1", port, ATTEMPTS[:1], timeout=5)
    assert resolver_guard.fqdn_calls[asked:] == []
