"""Extraction: returned messages and MTA log lines → BounceRecords.

The message table uses copies of real bounces from sisimai/set-of-emails (tests/data/bounces/,
BSD-2-Clause, see PROVENANCE.md there); the log samples in tests/data/logs/ are our own lines in
each MTA's documented format.
"""

from __future__ import annotations

import base64
import io
import logging
import random
import sys
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from blmonitor.bounces.extract import extract_records, parse_message
from blmonitor.bounces.logs import parse_log_line
from blmonitor.bounces.mailbox import parse_mbox, read_path

DATA = Path(__file__).parent / "data"
BOUNCES = DATA / "bounces"
LOGS = DATA / "logs"
CORPUS = Path(__file__).parents[2] / "shared" / "corpus" / "sisimai-set-of-emails"

# (file, [(recipient, action, status, reply_code, remote_mta, diagnostic starts with, command,
#   message_id), ...]) — one row per failed or delayed recipient; [] for what is not a bounce.
# The table is data: tests/data/bounce_records.toml, each sample with what it shows.
MESSAGES = [
    (message["file"], [tuple(record) for record in message["records"]])
    for message in tomllib.loads((DATA / "bounce_records.toml").read_text("utf-8"))["message"]
]


@pytest.mark.parametrize(("name", "expected"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_parse_message(name: str, expected: list[tuple[str, ...]]) -> None:
    records = parse_message((BOUNCES / name).read_bytes(), source=name)
    got = [
        (
            r.recipient,
            r.action,
            r.status,
            r.reply_code,
            r.remote_mta,
            r.diagnostic[:40],
            r.command,
            r.message_id,
        )
        for r in records
    ]
    assert got == expected
    assert all(r.source == name and r.format for r in records)


def test_table_covers_formats_and_line_endings() -> None:
    formats = {
        r.format for name, _ in MESSAGES for r in parse_message((BOUNCES / name).read_bytes())
    }
    assert formats >= {
        "rfc3464",
        "exim",
        "text",
        "gmail",
        "dragonfly",
        "exchange",
        "exchange2003",
        "sendmail",
        "opensmtpd",
        "googlegroups",
        "zoho",
        "mfilter",
        "imailserver",
        "nemesis",
        "x1",
        "x3",
        "mxlogic",
        "notes",
        "kddi",
        "trendmicro",
        "activehunter",
        "biglobe",
        "domino",
        "amazonses",
        "x6",
        "mailfoundry",
        "mimecast",
        "messagelabs",
        "mailmarshal",
        "apachejames",
        "ezweb",
        "x2",
        "unabletodeliver",
    }
    folders = {name.split("/")[0] for name, _ in MESSAGES}
    assert folders == {"bsd", "mac", "dos", "err", "not"}
    assert len(MESSAGES) >= 25


def test_line_endings_do_not_matter() -> None:
    lf = (BOUNCES / "mac/lhost-exim-01.eml").read_bytes().replace(b"\r", b"\n")
    for data in (lf, lf.replace(b"\n", b"\r\n"), lf.replace(b"\n", b"\r")):
        [record] = parse_message(data)
        assert record.recipient == "kijitora@example.ed.jp"
        assert record.diagnostic.endswith("Please use the smtp server of your ISP.")


def test_dsn_fields_dates_and_unfolding() -> None:
    [record] = parse_message((BOUNCES / "bsd/lhost-postfix-80.eml").read_bytes())
    assert record.format == "rfc3464"
    assert "\n" not in record.diagnostic and not record.diagnostic.lower().startswith("smtp;")
    assert "550 5.1.0" not in record.diagnostic  # continuation prefixes of the reply are dropped
    assert isinstance(record.date, datetime)


def test_base64_delivery_status_and_encoded_text() -> None:
    dsn = (
        "Reporting-MTA: dns; mx.example.org\n\n"
        "Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.7.1\n"
        "Remote-MTA: dns; mx.example.com\n"
        "Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; Client host [203.0.113.5]\n"
        " blocked using zen.spamhaus.org\n"
        "Last-Attempt-Date: Tue, 5 Nov 2024 10:15:02 +0000\n"
    )
    message = (
        "From: MAILER-DAEMON@example.org\nSubject: Undelivered\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode("Zustellung fehlgeschlagen – ärgerlich".encode()).decode()
        + "\n--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode(dsn.encode()).decode()
        + "\n--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <abc@example.org>\nSubject: hi\n\n--b--\n"
    )
    [record] = parse_message(message.encode())
    assert record.recipient == "user@example.com"
    assert record.diagnostic == (
        "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org"
    )
    assert (record.status, record.reply_code, record.remote_mta) == (
        "5.7.1",
        "554",
        "mx.example.com",
    )
    assert record.message_id == "<abc@example.org>"
    assert record.date == datetime.fromisoformat("2024-11-05T10:15:02+00:00")


def test_delivered_and_relayed_recipients_are_not_records() -> None:
    message = (
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; a.example\n\n"
        "Final-Recipient: rfc822; ok@example.com\nAction: delivered\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; later@example.com\nAction: delayed\nStatus: 4.4.1\n\n--b--\n"
    )
    assert [(r.recipient, r.action) for r in parse_message(message.encode())] == [
        ("later@example.com", "delayed")
    ]


# ----------------------------------------------------------------------------- robustness


def mutations(seed: int) -> list[bytes]:
    """Hostile and broken messages (bench/bounces.py times them too)."""
    rng = random.Random(seed)
    samples = sorted(p for p in BOUNCES.rglob("*.eml"))
    out: list[bytes] = [b"", b"\n", b"\r", b"From \n", b"Content-Type: multipart/mixed\n\n--"]
    for _ in range(60):
        out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))))
    for path in samples:
        data = path.read_bytes()
        cut = rng.randrange(len(data))
        out.append(data[:cut])  # truncated
        out.append(data.replace(b"boundary=", b"boundary=x", 1))  # boundaries that never come
        out.append(data.replace(b"--", b"", 3))  # broken boundary lines
        out.append(data.replace(b"\n", b"", rng.randrange(1, 20)))  # headers run together
        noisy = bytearray(data)
        for _ in range(20):
            noisy[rng.randrange(len(noisy))] = rng.randrange(256)
        out.append(bytes(noisy))
    out.append(
        b"Content-Type: multipart/mixed; boundary=a\n\n"
        + b"--a\nContent-Type: multipart/mixed; boundary=a\n\n" * 200
    )
    out.append(
        b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!notbase64"
    )
    out.append(
        b"Subject: =?utf-8?B?broken?=\nContent-Type: text/plain; charset=x-no-such-charset\n\n<a@b.example>: 550 no\n"
    )
    out.append(b"The following address(es) failed:\n\n  " + b"a" * 100_000 + b"\n")
    out.append(b"<a@b.example>: " + b"550 " * 50_000 + b"\n")
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_never_raises(seed: int) -> None:
    # `extract_records` is `parse_message` without the net that logs and swallows an exception:
    # any exception here is a parsing bug. (The time each input takes is bench/bounces.py's.)
    for data in mutations(seed):
        records = extract_records(data)
        assert isinstance(records, list)
        assert parse_message(data) == records


# ----------------------------------------------------------------------------- mbox, files


def test_parse_mbox_splits_and_unescapes() -> None:
    mbox = (
        b"From MAILER-DAEMON Tue Nov  5 10:15:02 2024\r\nSubject: one\r\n\r\n>From here\r\n\r\n"
        b"From MAILER-DAEMON Tue Nov  5 10:15:03 2024\r\nSubject: two\r\n\r\nbody\r\nFrom the middle\r\n"
    )
    parts = list(parse_mbox(mbox))
    assert [n for n, _ in parts] == [1, 2]
    assert parts[0][1] == b"Subject: one\n\nFrom here\n\n"
    assert parts[1][1].endswith(b"From the middle\n")  # not after a blank line: no separator
    assert list(parse_mbox(b"")) == []
    assert list(parse_mbox(b"Subject: x\n\nbody\n")) == [(1, b"Subject: x\n\nbody\n")]


def test_read_mbox_file() -> None:
    records = list(read_path(BOUNCES / "mbox-1"))
    assert records and all(r.source == f"{BOUNCES / 'mbox-1'}:1" for r in records)


def test_read_maildir_directory_and_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes((BOUNCES / "bsd/lhost-exim-02.eml").read_bytes())
    (maildir / "cur" / "2:2,S").write_bytes((BOUNCES / "dos/lhost-gmail-01.eml").read_bytes())
    (maildir / "tmp" / "3").write_bytes((BOUNCES / "bsd/lhost-qmail-19.eml").read_bytes())
    got = sorted(r.recipient for r in read_path(maildir))
    assert got == ["kijitora@example.jp", "sabatora@example.jp", "userunknown@example.jp"]

    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "x.eml").write_bytes((BOUNCES / "mac/lhost-qmail-01.eml").read_bytes())
    (tree / "mbox").write_bytes(b"From x\n" + (BOUNCES / "bsd/lhost-yahoo-01.eml").read_bytes())
    (tree / "unreadable.eml").symlink_to(tmp_path / "missing")
    with caplog.at_level(logging.WARNING, logger="blmonitor.bounces.mailbox"):
        got = sorted(r.recipient for r in read_path(tree))
    assert got == ["kijitora@example.ne.jp", "kijitora@example.org"]
    assert "unreadable.eml" in caplog.text
    assert list(read_path(tmp_path / "nope.eml")) == []


def test_read_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (BOUNCES / "bsd/lhost-exim-05.eml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    [record] = read_path(Path("-"))
    assert (record.recipient, record.source) == ("kijitora@neko.example.co.jp", "-")


# ----------------------------------------------------------------------------- whole corpus


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
def test_whole_shared_corpus() -> None:
    files = sorted(p for p in (CORPUS / "maildir").rglob("*.eml"))
    found = 0
    for path in files:
        records = extract_records(path.read_bytes(), source=str(path))
        found += bool(records)
        if path.parent.name == "not":
            assert records == [], path
    assert found >= 600
    assert sum(1 for _ in read_path(CORPUS / "mailbox")) >= 30


# ----------------------------------------------------------------------------- log lines

# (file, line number, recipient, action, status, reply_code, remote_mta, diagnostic contains, command)
LOG_LINES = [
    (
        "postfix.log",
        1,
        "alice@outlook.com",
        "failed",
        "5.7.1",
        "550",
        "outlook-com.olc.protection.outlook.com",
        "block list (S3150)",
        "MAIL",
    ),
    (
        "postfix.log",
        2,
        "bob@example.net",
        "failed",
        "5.7.1",
        "554",
        "mx.example.net",
        "blocked using zen.spamhaus.org",
        "RCPT",
    ),
    (
        "postfix.log",
        3,
        "carol@gmail.com",
        "delayed",
        "4.7.0",
        "421",
        "gmail-smtp-in.l.google.com",
        "low reputation",
        "DATA",
    ),
    (
        "postfix.log",
        4,
        "dave@example.org",
        "failed",
        "5.1.1",
        "550",
        "mail.example.org",
        "User unknown",
        "RCPT",
    ),
    (
        "postfix.log",
        5,
        "erin@example.com",
        "delayed",
        "4.4.1",
        "",
        "",
        "Connection timed out",
        "CONN",
    ),
    (
        "postfix.log",
        8,
        "grace@yahoo.com",
        "delayed",
        "4.7.0",
        "421",
        "mta7.am0.yahoodns.net",
        "[TSS04]",
        "MAIL",
    ),
    (
        "exim_mainlog",
        2,
        "alice@outlook.com",
        "failed",
        "5.7.1",
        "550",
        "outlook-com.olc.protection.outlook.com",
        "(S3150)",
        "MAIL",
    ),
    (
        "exim_mainlog",
        3,
        "bob@example.net",
        "failed",
        "5.7.1",
        "554",
        "mx.example.net",
        "zen.spamhaus.org",
        "RCPT",
    ),
    (
        "exim_mainlog",
        4,
        "carol@gmail.com",
        "delayed",
        "4.7.0",
        "421",
        "gmail-smtp-in.l.google.com",
        "low reputation",
        "DATA",
    ),
    (
        "exim_mainlog",
        5,
        "dave@example.org",
        "failed",
        "5.1.1",
        "550",
        "mail.example.org",
        "User unknown",
        "RCPT",
    ),
    ("exim_mainlog", 6, "erin@example.com", "delayed", "", "", "", "Connection timed out", ""),
    (
        "sendmail.log",
        1,
        "alice@outlook.com",
        "failed",
        "5.7.1",
        "",
        "outlook-com.olc.protection.outlook.com",
        "Service unavailable",
        "",
    ),
    (
        "sendmail.log",
        2,
        "bob@example.net",
        "failed",
        "5.7.1",
        "554",
        "mx.example.net",
        "zen.spamhaus.org",
        "",
    ),
    (
        "sendmail.log",
        3,
        "carol@gmail.com",
        "delayed",
        "4.7.0",
        "421",
        "gmail-smtp-in.l.google.com",
        "low reputation",
        "",
    ),
    (
        "sendmail.log",
        4,
        "dave@example.org",
        "failed",
        "5.1.1",
        "",
        "mail.example.org",
        "User unknown",
        "",
    ),
]
NOT_BOUNCES = [
    ("postfix.log", 6),
    ("postfix.log", 7),
    ("exim_mainlog", 1),
    ("exim_mainlog", 7),
    ("exim_mainlog", 8),
    ("sendmail.log", 5),
]


def _line(name: str, number: int) -> str:
    return (LOGS / name).read_text().splitlines()[number - 1]


@pytest.mark.parametrize(
    ("name", "number", "rcpt", "action", "status", "code", "remote", "diag", "command"), LOG_LINES
)
def test_parse_log_line(
    name: str,
    number: int,
    rcpt: str,
    action: str,
    status: str,
    code: str,
    remote: str,
    diag: str,
    command: str,
) -> None:
    record = parse_log_line(_line(name, number), source=f"{name}:{number}")
    assert record is not None
    assert (
        record.recipient,
        record.action,
        record.status,
        record.reply_code,
        record.remote_mta,
        record.command,
    ) == (rcpt, action, status, code, remote, command)
    assert diag in record.diagnostic
    assert "(in reply to" not in record.diagnostic
    assert record.source == f"{name}:{number}" and record.format.endswith("-log")


@pytest.mark.parametrize(("name", "number"), NOT_BOUNCES)
def test_log_lines_that_are_not_bounces(name: str, number: int) -> None:
    assert parse_log_line(_line(name, number)) is None


def test_log_dates() -> None:
    syslog = _line("postfix.log", 2)
    assert parse_log_line(syslog) is not None
    assert parse_log_line(syslog).date is None  # type: ignore[union-attr]  # no year: no guess
    assert parse_log_line(syslog, year=2024).date == datetime(2024, 11, 5, 10, 16, 40)  # type: ignore[union-attr]
    iso = parse_log_line(_line("postfix.log", 8))
    assert iso is not None and iso.date == datetime.fromisoformat(
        "2024-11-05T10:20:44.123456+01:00"
    )
    exim = parse_log_line(_line("exim_mainlog", 2))
    assert exim is not None and exim.date == datetime(2024, 11, 5, 10, 15, 3)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "x" * 20_000,
        "postfix/smtp[1]: A: to=<, status=bounced (",
        "** ==",
        "stat= dsn=",
    ],
)
def test_log_garbage(line: str) -> None:
    assert parse_log_line(line) is None
